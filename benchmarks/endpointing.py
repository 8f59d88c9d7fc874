"""Endpointing: how soon the transcript follows the moment Bodhi has the endpoint silence.

Two measurements, both against the bundled simulator over loopback, in real time, with the
simulator, the bridge and the client in this one process (one command at a time):

**Latency and its breakdown** (section f of ``python -m benchmarks``). With ``--endpointing``
the microphone keeps streaming and the transcript goes out as soon as Bodhi completes the
phrase after its endpoint silence (0.44 s). The client sends Home Assistant's 10 ms chunks
(16 kHz s16 mono) when a microphone would have them: "speech" (300 + 700 Hz) for a length
drawn uniformly from 1.0-1.5 s, so that its end falls at every phase of the frame grid, then
silence. E is the instant at which the endpoint silence is complete in an ideal 8 kHz copy of
that audio (every second sample: the "speech" has nothing above 700 Hz, so the copy is exact
and delays nothing), judged by the simulator's own segmenter: the moment an ideal,
zero-buffering bridge would have given Bodhi the endpoint. Latency = the client has the
``transcript`` − E. Its parts:

* *framing*: from E to the end of the frame that completes the endpoint (a frame cannot
  leave before it is full);
* *resampler*: from the end of that frame to the arrival of the client chunk that lets the
  bridge's converter release it (a filter's look-ahead, or soxr's block-wise output);
* *pacing*: what the bridge's ``Pacer`` holds that frame back (nothing, for live audio);
* *to Bodhi*: from then to the frame's arrival at the simulator — the client's write, the
  bridge's conversion and send, loopback both ways;
* *back*: from that arrival to the ``transcript`` at the client — the simulator's result,
  the bridge's transcript events, loopback.

Framing, resampler and pacing come from replaying the bridge's own audio code on the same
chunks (they are deterministic in audio time); the other two are measured (the simulator
records each frame's arrival). The parts add up to the measured total.

**Home Assistant's VAD vs ``--endpointing``** (``--compare``): end of speech → transcript
when Home Assistant's VAD waits for its silence (0.25 s aggressive, 0.7 s default, 1.25 s
relaxed) and sends audio-stop, versus Bodhi's endpoint (0.44 s aggressive and default, 1.2 s
relaxed) with ``--endpointing``.

Run: python -m benchmarks.endpointing [--repeat N] [--chunk-ms MS] [--json PATH] [--compare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.server import AsyncTcpServer

from wyoming_bodhi.engines.bodhi.engine import AUDIO as BODHI_AUDIO
from wyoming_bodhi.pipeline.audio import Pacer
from wyoming_bodhi.pipeline.bridge import Bridge
from wyoming_bodhi.server.handler import BridgeEventHandler
from wyoming_bodhi.server.info import info_event
from wyoming_bodhi.settings import Settings, validate
from wyoming_bodhi.simulators.bodhi import BodhiSimulator, SimulatorOptions
from wyoming_bodhi.simulators.segmenter import (
    DEFAULT_ENDPOINT_SECONDS,
    EnergySegmenter,
    SegmentComplete,
)

from .stats import summarize
from .streams import replay_bridge_audio

RATE = 16000
HOME_ASSISTANT_CHUNK_MS = 10
SPEECH_SECONDS = (1.0, 1.5)
SEED = 7
TRANSCRIPT_TIMEOUT = 10.0
MAX_SILENCE_SECONDS = 3.0
"""Silence streamed after the speech before a command counts as failed."""

TARGET_P50_MS = 40.0
TARGET_P95_MS = 60.0

# (sensitivity, Home Assistant's VAD silence, Bodhi's endpoint silence for that setting)
SENSITIVITIES = [("aggressive", 0.25, 0.44), ("default", 0.7, 0.44), ("relaxed", 1.25, 1.2)]

PARTS = ("framing", "resampler", "pacing", "to_bodhi", "back")


def speech(seconds: float) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    signal = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 700 * t)
    return (signal * 32767).astype("<i2").tobytes()


def bridge_settings(bodhi_url: str, **settings: Any) -> Settings:
    return validate(
        {
            "api_key": "benchmark-key",
            "customer_id": str(uuid.uuid4()),
            "bodhi_url": bodhi_url,
            "uri": "tcp://127.0.0.1:0",
            **settings,
        }
    )


def frame_ms_of(settings: Settings) -> int:
    """The frame length the bridge sends Bodhi with these settings."""
    return settings.frame_ms(BODHI_AUDIO.frame_ms)


async def start_bridge(
    bodhi_url: str, http: aiohttp.ClientSession, **settings: Any
) -> tuple[AsyncTcpServer, int]:
    server = AsyncTcpServer("127.0.0.1", 0)
    bridge = Bridge(bridge_settings(bodhi_url, **settings), http)
    await server.start(partial(BridgeEventHandler, bridge=bridge, info=info_event(bridge)))
    assert server._server is not None
    return server, server._server.sockets[0].getsockname()[1]


def completing_piece(pieces: list[bytes]) -> int | None:
    """Index of the piece of 8 kHz s16 audio whose arrival completes the first phrase, fed to
    the simulator's own segmenter piece by piece (as the simulator feeds it frames)."""
    segmenter = EnergySegmenter(8000, DEFAULT_ENDPOINT_SECONDS)
    for index, piece in enumerate(pieces):
        if any(isinstance(event, SegmentComplete) for event in segmenter.feed(piece)):
            return index
    return None


def ideal_endpoint(audio: bytes) -> float:
    """E: seconds into 16 kHz ``audio`` at which its ideal 8 kHz copy completes the phrase
    (judged per 10 ms window, the segmenter's own resolution)."""
    ideal = np.frombuffer(audio, "<i2")[::2].tobytes()
    window = 160  # bytes: 10 ms at 8 kHz
    index = completing_piece([ideal[i : i + window] for i in range(0, len(ideal), window)])
    assert index is not None, "the ideal copy never completes the phrase"
    return (index + 1) * window / 16000


@dataclass(frozen=True, slots=True)
class Plan:
    """One command, worked out in audio time before it is sent."""

    chunks: list[bytes]
    chunk_seconds: float
    ideal_endpoint: float
    """E: audio seconds at which an ideal 8 kHz copy completes the endpoint."""
    frame: int
    """Index of the bridge's frame that completes it."""
    frame_end: float
    released: float
    """Audio seconds at which the client chunk that releases that frame is complete."""
    pacing: float


def plan_command(speech_seconds: float, chunk_ms: int, frame_ms: int, lead: float) -> Plan:
    audio = speech(speech_seconds) + bytes(int(RATE * MAX_SILENCE_SECONDS) * 2)
    step = RATE * chunk_ms // 1000 * 2
    chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
    frames, released_by = replay_bridge_audio(chunks, RATE, frame_ms)
    frame = completing_piece(frames)
    assert frame is not None, "the bridge's frames never complete the phrase"
    frame_seconds = frame_ms / 1000
    chunk_seconds = chunk_ms / 1000
    release_times = [(index + 1) * chunk_seconds for index in released_by]
    # The bridge's pacer, run on audio time: each frame offered when released.
    pacer = Pacer(frame_seconds, lead, clock=lambda: 0.0)
    pacer.start(release_times[0])
    now = 0.0
    waits = []
    for at in release_times[: frame + 1]:
        now = max(now, at)
        wait = pacer.delay(now)
        waits.append(wait)
        now += wait
        pacer.sent()
    return Plan(
        chunks=chunks,
        chunk_seconds=chunk_seconds,
        ideal_endpoint=ideal_endpoint(audio),
        frame=frame,
        frame_end=(frame + 1) * frame_seconds,
        released=release_times[frame],
        pacing=waits[frame],
    )


async def stream_until_transcript(
    port: int, chunks: list[bytes], chunk_seconds: float, transcribe: Transcribe
) -> tuple[float, float]:
    """Send ``chunks`` when a microphone would have them until the transcript arrives.

    Returns (the monotonic time of audio instant 0, when the transcript arrived).
    """
    got: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    async with AsyncTcpClient("127.0.0.1", port) as client:

        async def read() -> None:
            while (event := await client.read_event()) is not None:
                if event.type == "transcript":
                    got.set_result(time.monotonic())
                    return
            got.set_exception(ConnectionError("the bridge closed the connection"))

        reader = asyncio.create_task(read())
        try:
            await client.write_event(transcribe.event())
            await client.write_event(AudioStart(RATE, 2, 1).event())
            started = time.monotonic()
            for index, chunk in enumerate(chunks, start=1):
                await asyncio.sleep(max(0.0, started + index * chunk_seconds - time.monotonic()))
                if got.done():
                    break
                await client.write_event(AudioChunk(RATE, 2, 1, chunk).event())
            arrived = await asyncio.wait_for(asyncio.shield(got), TRANSCRIPT_TIMEOUT)
        finally:
            reader.cancel()
    return started, arrived


async def latency(repeat: int, chunk_ms: int = HOME_ASSISTANT_CHUNK_MS) -> dict[str, Any]:
    """Section f: ``repeat`` commands with ``--endpointing``; latency and its parts (ms)."""
    lengths = np.random.default_rng(SEED).uniform(*SPEECH_SECONDS, repeat)
    samples: dict[str, list[float]] = {"total": [], **{part: [] for part in PARTS}}
    async with BodhiSimulator(SimulatorOptions()) as simulator, aiohttp.ClientSession() as http:
        settings = bridge_settings(simulator.url, endpointing=True)
        frame_ms = frame_ms_of(settings)
        server, port = await start_bridge(simulator.url, http, endpointing=True)
        try:
            for seconds in lengths:
                plan = plan_command(float(seconds), chunk_ms, frame_ms, settings.lead)
                started, arrived = await stream_until_transcript(
                    port, plan.chunks, plan.chunk_seconds, Transcribe(language="hi")
                )
                record = simulator.connections[-1]
                at_bodhi = record.frames[plan.frame].at
                released_at = started + plan.released + plan.pacing
                parts = {
                    "framing": plan.frame_end - plan.ideal_endpoint,
                    "resampler": plan.released - plan.frame_end,
                    "pacing": plan.pacing,
                    "to_bodhi": at_bodhi - released_at,
                    "back": arrived - at_bodhi,
                }
                samples["total"].append(round((arrived - started - plan.ideal_endpoint) * 1000, 3))
                for part, value in parts.items():
                    samples[part].append(round(value * 1000, 3))
                await asyncio.sleep(0.05)
        finally:
            await server.stop()
    return {
        "client_chunk_ms": chunk_ms,
        "frame_ms": frame_ms,
        "speech_seconds": list(SPEECH_SECONDS),
        "endpoint_seconds": DEFAULT_ENDPOINT_SECONDS,
        "lead_seconds": settings.lead,
        "targets": {"p50_ms_max": TARGET_P50_MS, "p95_ms_max": TARGET_P95_MS},
        "total": summarize(samples["total"]),
        "parts": {part: summarize(samples[part]) for part in PARTS},
    }


# -- Home Assistant's VAD vs --endpointing ---------------------------------------------------


async def one_command(
    port: int, sensitivity: str, trailing_silence: float | None, chunk_ms: int
) -> float:
    """Seconds from the end of speech to the transcript.

    ``trailing_silence`` None: keep streaming silence until the transcript (endpointing);
    otherwise send that much silence, then audio-stop (Home Assistant's VAD).
    """
    chunk = chunk_ms / 1000
    step = RATE * chunk_ms // 1000 * 2
    audio = speech(1.2)
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
            sent += chunk
            await asyncio.sleep(max(0.0, started + sent - time.monotonic()))
            await client.write_event(AudioChunk(RATE, 2, 1, audio[offset : offset + step]).event())
        end_of_speech = time.monotonic()
        silence_sent = 0.0
        while not got_transcript.is_set():
            if trailing_silence is not None and silence_sent >= trailing_silence:
                await client.write_event(AudioStop().event())
                break
            sent += chunk
            await asyncio.sleep(max(0.0, started + sent - time.monotonic()))
            await client.write_event(AudioChunk(RATE, 2, 1, bytes(step)).event())
            silence_sent += chunk
        await asyncio.wait_for(got_transcript.wait(), TRANSCRIPT_TIMEOUT)
        reader.cancel()
    return time.monotonic() - end_of_speech


async def compare(repeat: int, chunk_ms: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with BodhiSimulator(SimulatorOptions()) as simulator, aiohttp.ClientSession() as http:
        ha_server, ha_port = await start_bridge(simulator.url, http)
        ep_server, ep_port = await start_bridge(simulator.url, http, endpointing=True)
        try:
            for sensitivity, vad_silence, _ in SENSITIVITIES:
                home_assistant = [
                    await one_command(ha_port, sensitivity, vad_silence, chunk_ms)
                    for _ in range(repeat)
                ]
                endpointing = [
                    await one_command(ep_port, sensitivity, None, chunk_ms) for _ in range(repeat)
                ]
                results[sensitivity] = {
                    "home_assistant_vad_ms": [round(s * 1000, 1) for s in home_assistant],
                    "endpointing_ms": [round(s * 1000, 1) for s in endpointing],
                }
        finally:
            await ha_server.stop()
            await ep_server.stop()
    return results


def compare_table(results: dict[str, Any]) -> str:
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
    parser.add_argument("--repeat", type=int, default=40, help="commands (default: %(default)s)")
    parser.add_argument(
        "--chunk-ms", type=int, default=HOME_ASSISTANT_CHUNK_MS, help="the client's chunks, ms"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--compare", action="store_true", help="Home Assistant's VAD vs --endpointing instead"
    )
    args = parser.parse_args()
    if args.compare:
        results = asyncio.run(compare(args.repeat, args.chunk_ms))
        text = compare_table(results)
    else:
        from .report import endpointing_lines

        results = asyncio.run(latency(args.repeat, args.chunk_ms))
        text = "\n".join(endpointing_lines(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
