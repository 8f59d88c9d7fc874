"""End of speech → transcript: Bodhi ending the command (--endpointing) vs Home Assistant's path.

Home Assistant's own path: its VAD waits for a stretch of silence (0.25 s aggressive,
0.7 s default, 1.25 s relaxed), sends audio-stop, the bridge sends eof and waits for
Bodhi's final result. With --endpointing the microphone keeps streaming and the transcript
goes out as soon as Bodhi completes the phrase after its own endpoint silence (0.44 s
aggressive and default, 1.2 s relaxed). Both are measured here against the bundled
simulator over loopback, in real time, from the last sample of speech to the transcript.

Run: python benchmarks/endpointing.py [--repeat N] [--chunk-ms MS] [--json PATH]

Medians of end-of-speech → transcript; "saved" is positive where endpointing is faster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.server import AsyncTcpServer

from wyoming_bodhi.pipeline.bridge import Bridge
from wyoming_bodhi.server.handler import BodhiEventHandler
from wyoming_bodhi.settings import validate
from wyoming_bodhi.simulators.bodhi import BodhiSimulator, SimulatorOptions

RATE = 16000
CHUNK = 0.02  # what a microphone satellite sends: 20 ms chunks
SPEECH = 1.2

# (sensitivity, Home Assistant's VAD silence, Bodhi's endpoint silence for that setting)
SENSITIVITIES = [("aggressive", 0.25, 0.44), ("default", 0.7, 0.44), ("relaxed", 1.25, 1.2)]


def speech(seconds: float) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    signal = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 700 * t)
    return (signal * 32767).astype("<i2").tobytes()


async def start_bridge(
    bodhi_url: str, http: aiohttp.ClientSession, **settings: Any
) -> tuple[AsyncTcpServer, int]:
    raw = {"api_key": "benchmark-key", "customer_id": str(uuid.uuid4()), "bodhi_url": bodhi_url,
           "uri": "tcp://127.0.0.1:0", **settings}  # fmt: skip
    server = AsyncTcpServer("127.0.0.1", 0)
    await server.start(partial(BodhiEventHandler, bridge=Bridge(validate(raw), http)))
    assert server._server is not None
    return server, server._server.sockets[0].getsockname()[1]


async def one_command(port: int, sensitivity: str, trailing_silence: float | None) -> float:
    """Seconds from the end of speech to the transcript.

    ``trailing_silence`` None: keep streaming silence until the transcript (endpointing);
    otherwise send that much silence, then audio-stop (Home Assistant's VAD).
    """
    step = int(RATE * CHUNK) * 2
    audio = speech(SPEECH)
    silence_chunk = bytes(step)
    got_transcript = asyncio.Event()
    async with AsyncTcpClient("127.0.0.1", port) as client:

        async def read() -> None:
            while (event := await client.read_event()) is not None:
                if event.type == "transcript":
                    got_transcript.set()
                    return

        reader = asyncio.create_task(read())
        await client.write_event(Transcribe(language="hi", vad_sensitivity=sensitivity).event())
        await client.write_event(AudioStart(RATE, 2, 1).event())
        started = time.monotonic()
        sent = 0.0
        for offset in range(0, len(audio), step):
            await client.write_event(AudioChunk(RATE, 2, 1, audio[offset : offset + step]).event())
            sent += CHUNK
            await asyncio.sleep(max(0.0, started + sent - time.monotonic()))
        end_of_speech = time.monotonic()
        silence_sent = 0.0
        while not got_transcript.is_set():
            if trailing_silence is not None and silence_sent >= trailing_silence:
                await client.write_event(AudioStop().event())
                break
            await client.write_event(AudioChunk(RATE, 2, 1, silence_chunk).event())
            silence_sent += CHUNK
            sent += CHUNK
            await asyncio.sleep(max(0.0, started + sent - time.monotonic()))
        await asyncio.wait_for(got_transcript.wait(), 10)
        reader.cancel()
    return time.monotonic() - end_of_speech


async def measure(repeat: int, chunk_ms: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with BodhiSimulator(SimulatorOptions()) as simulator, aiohttp.ClientSession() as http:
        ha_server, ha_port = await start_bridge(simulator.url, http, chunk_ms=chunk_ms)
        ep_server, ep_port = await start_bridge(
            simulator.url, http, chunk_ms=chunk_ms, endpointing=True
        )
        try:
            for sensitivity, vad_silence, _ in SENSITIVITIES:
                home_assistant = [
                    await one_command(ha_port, sensitivity, vad_silence) for _ in range(repeat)
                ]
                endpointing = [await one_command(ep_port, sensitivity, None) for _ in range(repeat)]
                results[sensitivity] = {
                    "home_assistant_vad_ms": [round(s * 1000, 1) for s in home_assistant],
                    "endpointing_ms": [round(s * 1000, 1) for s in endpointing],
                }
        finally:
            await ha_server.stop()
            await ep_server.stop()
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        "| vad_sensitivity | Home Assistant's VAD, then audio-stop | --endpointing | saved |",
        "|---|---|---|---|",
    ]
    for sensitivity, vad_silence, bodhi_silence in SENSITIVITIES:
        ha = statistics.median(results[sensitivity]["home_assistant_vad_ms"])
        ep = statistics.median(results[sensitivity]["endpointing_ms"])
        rows.append(
            f"| {sensitivity} | {ha:.0f} ms ({vad_silence:g} s silence) | "
            f"{ep:.0f} ms ({bodhi_silence:g} s endpoint) | {ha - ep:+.0f} ms |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk-ms", type=int, default=100, help="the bridge's frame length")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw samples here")
    args = parser.parse_args()
    results = asyncio.run(measure(args.repeat, args.chunk_ms))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
