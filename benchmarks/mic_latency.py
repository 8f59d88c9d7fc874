"""End of speech → phrase printed, for ``wyoming-bodhi-mic``, through the bridge and direct.

A private PulseAudio (the test suite's capture rig, ``tests/capture.py``) plays one spoken
command (a 0.8 s speech-like burst) into the default microphone; the client, a separate
process, captures it with PyAudio and streams it through the bridge to the Bodhi simulator,
or straight to the simulator with ``--direct``. Measured: from the moment the burst's last
sample was due at the microphone (when ``pacat`` was started + where the burst ends in the
recording) to the moment the client printed the completed phrase. PulseAudio's own start-up
latency is included, so the figures slightly overstate ours.

The floor is Bodhi's: a phrase is complete after ``endpoint_silence_duration`` (0.44 s at
least) of trailing silence. The simulator keeps that rule, so both paths carry it; the
difference between them is the bridge.

    python -m benchmarks.mic_latency [--runs 8]

Needs what the capture tests need (Debian: pulseaudio pulseaudio-utils libasound2-plugins)
and the mic extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from benchmarks.stats import summarize
from tests import capture, signals
from tests.harness import API_KEY, CUSTOMER_ID, running_bridge, running_simulator

RATE = 16000
EDGE = 0.3
BURST = 0.8
TAIL = 2.0
ENDPOINT = 0.44


async def one_run(path: str, simulator_url: str, bridge_port: int | None) -> float:
    """Seconds from the end of speech to the phrase on the client's output."""
    audio = signals.encode(signals.utterances(RATE, count=1, burst=BURST, edge=EDGE))
    audio += bytes(2 * round(RATE * TAIL))
    if path == "direct":
        args = ["--direct"]
        env = {
            "BODHI_URL": simulator_url,
            "BODHI_API_KEY": API_KEY,
            "BODHI_CUSTOMER_ID": CUSTOMER_ID,
        }
        marker = "phrase"
    else:
        args = ["--uri", f"tcp://127.0.0.1:{bridge_port}"]
        env = {}
        marker = "… phrase"
    with capture.pulse_microphone(audio) as microphone:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wyoming_bodhi.mic", *args,
            env={**microphone.env, **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        while b"listening" not in await proc.stderr.readline():
            pass
        microphone.play()
        speech_end = microphone.played_at[-1] + EDGE + BURST
        stream = proc.stdout if path == "direct" else proc.stderr
        try:
            async with asyncio.timeout(15):
                while line := (await stream.readline()).decode():
                    if line.strip().startswith(marker):
                        return time.monotonic() - speech_end
        finally:
            proc.kill()
            await proc.wait()
    raise RuntimeError(f"{path}: no phrase printed")


async def measure(runs: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {"bridge": [], "direct": []}
    async with (
        running_simulator(texts=["phrase"]) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        for _ in range(runs):
            for path in results:
                results[path].append(await one_run(path, simulator.url, bridge.port))
    summary: dict[str, Any] = {
        path: summarize([value * 1000 for value in values]) for path, values in results.items()
    }
    summary["endpoint_silence_ms"] = round(ENDPOINT * 1000)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    if reason := capture.capture_missing():
        sys.exit(f"cannot capture here: {reason}")
    print(json.dumps(asyncio.run(measure(args.runs)), indent=2))


if __name__ == "__main__":
    main()
