"""The load generator: one utterance straight to Bodhi (the simulator), or through the bridge.

Both paths send the same audio with the same timing, and both return the latency of the
final transcript: milliseconds from the end of the client's audio to the final result.

* Direct: our own Bodhi client (``BodhiStream``) with the bridge's ``FrameStream``/``Pacer`` logic
  (100 ms frames, 1.0 s lead, a queue feeding a paced sender, the connection opened while the
  audio is already queueing). The frames are converted once, up front; in real time each frame
  is queued at the instant the bridge would have had it. The audio has ended when the last
  frame and the end-of-audio mark are queued; the final result is Bodhi's eos result.
* Bridge: a Wyoming client (``AsyncTcpClient``) sends ``transcribe``, ``audio-start``, 20 ms
  ``audio-chunk`` events and ``audio-stop``, pre-encoded once. The audio has ended right after
  ``audio-stop`` is written; the final result is the ``transcript`` event.

Real time sends each 20 ms chunk when a microphone would have it (absolute schedule, no
drift); burst sends everything at once (the bridge then paces it out, 1.0 s ahead of real
time, exactly as for the direct path).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from wyoming_bodhi.engines.bodhi.client import BodhiCredentials, BodhiStream
from wyoming_bodhi.engines.bodhi.protocol import SAMPLE_RATE as BODHI_RATE
from wyoming_bodhi.engines.bodhi.protocol import BodhiConfig
from wyoming_bodhi.pipeline.audio import FrameStream, Pacer, frame_bytes_for

from . import signals
from .servers import API_KEY, HOST
from .wire import encode_event

RATE = 16000
CHUNK_SECONDS = 0.02
CHUNK_MS = 100
LEAD_SECONDS = 1.0
MODEL = "hi-general-v2-8khz"
LANGUAGE = "hi"
UTTERANCE_TIMEOUT = 15.0
"""Per utterance, on top of its audio: any longer and it counts as an error."""

_END_OF_AUDIO = b""


@dataclass(frozen=True, slots=True)
class Workload:
    """One utterance, prepared once and replayed by every stream."""

    duration: float
    chunk_seconds: float
    request: bytes
    """``transcribe`` and ``audio-start``, as Wyoming wire bytes."""
    chunks: tuple[bytes, ...]
    """One ``audio-chunk`` event per ``chunk_seconds``, as Wyoming wire bytes."""
    stop: bytes
    frames: tuple[bytes, ...]
    """The 8 kHz Bodhi frames the bridge makes of this audio."""
    frame_ready: tuple[float, ...]
    """Seconds after the start at which the bridge has each frame (in real time)."""


def make_workload(rate: int = RATE, chunk_seconds: float = CHUNK_SECONDS) -> Workload:
    audio = signals.pcm16(signals.speech_like(rate))
    pieces = signals.split(audio, rate, 1, chunk_seconds)
    frames, ready = _bridge_frames(pieces, rate)
    return Workload(
        duration=len(audio) / (2 * rate),
        chunk_seconds=chunk_seconds,
        request=encode_event(Transcribe(language=LANGUAGE).event())
        + encode_event(AudioStart(rate, 2, 1).event()),
        chunks=tuple(encode_event(AudioChunk(rate, 2, 1, piece).event()) for piece in pieces),
        stop=encode_event(AudioStop().event()),
        frames=tuple(frames),
        frame_ready=tuple(ready),
    )


def describe_workload(workload: Workload) -> dict[str, Any]:
    return {
        "signal": "speech-like: 0.2 s silence, 0.5 s of 300+700 Hz, 0.6 s gap, 0.5 s, 0.2 s",
        "rate": RATE,
        "audio_seconds": workload.duration,
        "client_chunk_ms": round(workload.chunk_seconds * 1000),
        "bodhi_frame_ms": CHUNK_MS,
        "bodhi_frames": len(workload.frames),
        "lead_seconds": LEAD_SECONDS,
        "model": MODEL,
    }


def _bridge_frames(pieces: list[bytes], rate: int) -> tuple[list[bytes], list[float]]:
    """Replay the bridge's conversion chunk by chunk: each frame, and when it would exist."""
    frames, released = replay_bridge_audio(pieces, rate, CHUNK_MS)
    ends = list(itertools.accumulate(len(piece) / (2 * rate) for piece in pieces))
    return frames, [ends[index] for index in released]


def replay_bridge_audio(
    pieces: list[bytes], rate: int, frame_ms: int
) -> tuple[list[bytes], list[int]]:
    """The bridge's own audio code (conversion, framing) fed 16-bit mono ``pieces`` one by one.

    Returns every frame, the last one padded as at ``audio-stop``, and for each the index of
    the piece whose arrival released it (``len(pieces) - 1`` for the ones only the end
    releases).
    """
    stream = FrameStream(BODHI_RATE, frame_bytes_for(frame_ms, BODHI_RATE))
    frames: list[bytes] = []
    released: list[int] = []
    for index, piece in enumerate(pieces):
        new = stream.push(piece, rate, 2, 1)
        frames += new
        released += [index] * len(new)
    tail = stream.flush()
    return frames + tail, released + [len(pieces) - 1] * len(tail)


class UtteranceFailed(RuntimeError):
    """The utterance ended without a final transcript."""


async def _sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


# -- direct: our Bodhi client, framed and paced as the bridge does --------------------------


@dataclass(frozen=True, slots=True)
class DirectTarget:
    http: aiohttp.ClientSession
    url: str
    credentials: BodhiCredentials = field(default_factory=lambda: BodhiCredentials(API_KEY))


async def direct_utterance(target: DirectTarget, workload: Workload, realtime: bool) -> float:
    """One utterance straight to Bodhi; returns ms from the end of the audio to eos."""
    async with asyncio.timeout(workload.duration + UTTERANCE_TIMEOUT):
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        pacer = Pacer(CHUNK_MS / 1000, LEAD_SECONDS)
        producer = asyncio.create_task(_queue_frames(workload, queue, pacer, realtime))
        try:
            stream = await BodhiStream.connect(
                target.http, target.url, target.credentials, BodhiConfig(model=MODEL)
            )
            async with stream:
                final_at = await _send_and_receive(stream, queue, pacer)
            audio_ended_at = await producer
        finally:
            producer.cancel()
    return (final_at - audio_ended_at) * 1000


async def _queue_frames(
    workload: Workload, queue: asyncio.Queue[bytes], pacer: Pacer, realtime: bool
) -> float:
    """Queue each frame when the bridge would have it; returns when the audio ended."""
    start = asyncio.get_running_loop().time()
    for frame, ready in zip(workload.frames, workload.frame_ready, strict=True):
        if realtime:
            await _sleep_until(start + ready)
        pacer.start()
        queue.put_nowait(frame)
    queue.put_nowait(_END_OF_AUDIO)
    return time.perf_counter()


async def _send_and_receive(
    stream: BodhiStream, queue: asyncio.Queue[bytes], pacer: Pacer
) -> float:
    sender = asyncio.create_task(_send_paced(stream, queue, pacer))
    try:
        async for result in stream.results():
            if result.eos:
                return time.perf_counter()
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    raise UtteranceFailed("Bodhi closed the stream without an eos result")


async def _send_paced(stream: BodhiStream, queue: asyncio.Queue[bytes], pacer: Pacer) -> None:
    """The bridge's sender loop (``Utterance._send``), minus its bookkeeping."""
    while True:
        frame = await queue.get()
        if frame == _END_OF_AUDIO:
            await stream.send_eof()
            return
        delay = pacer.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        await stream.send_audio(frame)
        pacer.sent()


# -- through the bridge: a Wyoming client ------------------------------------------------


class BenchClient(AsyncTcpClient):
    """AsyncTcpClient that can also write pre-encoded events."""

    async def write_raw(self, *events: bytes) -> None:
        self.write_nowait(*events)
        assert self._writer is not None
        await self._writer.drain()

    def write_nowait(self, *events: bytes) -> int:
        """Write without waiting for the socket; returns the bytes still queued to send."""
        if self._writer is None:
            raise ConnectionError("not connected")
        self._writer.writelines(events)
        return self._writer.transport.get_write_buffer_size()


async def bridge_utterance(port: int, workload: Workload, realtime: bool) -> float:
    """One utterance through the bridge; returns ms from audio-stop to the transcript."""
    async with asyncio.timeout(workload.duration + UTTERANCE_TIMEOUT):
        client = BenchClient(HOST, port)
        await client.connect()
        reader = asyncio.create_task(read_transcript(client))
        try:
            await _send_audio(client, workload, realtime)
            audio_ended_at = time.perf_counter()
            transcript_at = await reader
        finally:
            reader.cancel()
            await client.disconnect()
    return (transcript_at - audio_ended_at) * 1000


async def _send_audio(client: BenchClient, workload: Workload, realtime: bool) -> None:
    start = asyncio.get_running_loop().time()
    await client.write_raw(workload.request)
    if realtime:
        for index, chunk in enumerate(workload.chunks, start=1):
            await _sleep_until(start + index * workload.chunk_seconds)
            await client.write_raw(chunk)
    else:
        await client.write_raw(*workload.chunks)
    await client.write_raw(workload.stop)


async def read_transcript(client: BenchClient) -> float:
    """When the ``transcript`` event arrived; reads on to ``transcript-stop``."""
    transcript_at: float | None = None
    while True:
        event = await client.read_event()
        if event is None:
            raise UtteranceFailed("the bridge closed the connection")
        if event.type == "transcript":
            transcript_at = time.perf_counter()
        elif event.type == "transcript-stop" and transcript_at is not None:
            return transcript_at
        elif event.type == "error":
            raise UtteranceFailed(f"bridge error {event.data.get('code')}: {event.data}")


# -- running many ---------------------------------------------------------------------------

Utterance = Callable[[], Awaitable[float]]


@dataclass
class Samples:
    """Latencies (ms) of the utterances that finished, and why the others did not."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, outcome: float | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self.errors.append(f"{outcome.__class__.__name__}: {outcome}")
        else:
            self.latencies_ms.append(outcome)

    def extend(self, other: Samples) -> None:
        self.latencies_ms += other.latencies_ms
        self.errors += other.errors


async def concurrently(utterance: Utterance, streams: int, stagger: float = 1.0) -> Samples:
    """``streams`` utterances at once, their starts spread evenly over ``stagger`` seconds."""

    async def one(index: int) -> float:
        await asyncio.sleep(stagger * index / streams)
        return await utterance()

    outcomes = await asyncio.gather(*(one(i) for i in range(streams)), return_exceptions=True)
    samples = Samples()
    for outcome in outcomes:
        samples.add(outcome)
    return samples


async def once(utterance: Utterance) -> float | BaseException:
    try:
        return await utterance()
    except (Exception, TimeoutError) as err:
        return err
