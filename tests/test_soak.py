"""Soak: hundreds of utterances, tens at once, faults and attacks mixed in; every request ends,
nothing leaks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import async_write_event

from .harness import RunningBridge, running_bridge, running_simulator, transcribe
from .signals import encode, silence, utterances

UTTERANCES = 300
CONCURRENT = 30
AUDIO = encode(utterances(16000, count=1, burst=0.4))
# Home Assistant's STT HTTP API: a whole file with trailing silence, in one go.
FILE = AUDIO + encode(silence(16000, 5.0))
NESTED = "[" * 50_000 + "]" * 50_000
SURROGATE = (
    '{"call_id": "c", "segment_id": 0, "eos": false, "type": "complete", '
    '"text": "batti \\ud800 jalao", "language_code": "hi\\udfff"}'
)


@dataclass(frozen=True)
class Profile:
    """One simulator and bridge, and how its clients behave."""

    simulator: dict[str, Any] = field(default_factory=dict)
    bridge: dict[str, Any] = field(default_factory=dict)
    client: str = "normal"


PROFILES: dict[str, Profile] = {
    "healthy": Profile({"texts": ["batti jalao"]}),
    "flaky handshake": Profile(
        {"texts": ["batti jalao"], "refuse_status": 503, "refuse_count": 20}
    ),
    "drops": Profile({"drop_after_frames": 2}),
    "errors": Profile({"error_after_frames": 3}),
    "malformed": Profile({"texts": ["batti jalao"], "malformed_results": True}),
    "silent": Profile({"silent_after_eof": True}),
    "endpointed burst": Profile({"texts": ["batti jalao"]}, {"endpointing": True}, "file"),
    "hostile upstream": Profile(
        {"texts": ["batti jalao"], "raw_before_results": [NESTED, SURROGATE, "x" * 512]}
    ),
    "vanishing mid-queue": Profile({"texts": ["batti jalao"]}, client="vanish far ahead"),
    "trickling": Profile({"texts": ["batti jalao"]}, {"max_command": 1.0}, "trickle"),
}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle(condition: Any, within: float = 5.0) -> bool:
    """Poll a condition until it holds or the deadline passes (resources close asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def one_request(bridge: RunningBridge, behaviour: str) -> str:
    if behaviour == "vanish far ahead":
        # Twenty seconds of audio at once, then gone without audio-stop.
        _reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        for event in (Transcribe(language="hi").event(), AudioStart(16000, 2, 1).event()):
            await async_write_event(event, writer)
        for _ in range(25):
            await async_write_event(AudioChunk(16000, 2, 1, AUDIO).event(), writer)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        return "vanished"
    async with bridge.client() as client:
        if behaviour == "vanish":
            await client.write_event(Transcribe(language="hi").event())
            await client.write_event(AudioStart(16000, 2, 1).event())
            await client.write_event(AudioChunk(16000, 2, 1, AUDIO[:4000]).event())
            return "vanished"
        if behaviour == "file":
            exchange = await transcribe(client, FILE, chunk_seconds=4096 / 32000)
        else:
            exchange = await transcribe(client, AUDIO)
    final = exchange.events[-1]
    return "transcript" if final.type == "transcript-stop" else str(final.data["code"])


async def trickle(bridge: RunningBridge) -> str:
    """10 ms every 0.1 s, never audio-stop: the bridge ends it once it falls behind."""
    async with bridge.client() as client:
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        await client.write_event(AudioChunk(16000, 2, 1, AUDIO).event())
        reading = asyncio.create_task(_final(client))
        while not reading.done():
            await client.write_event(AudioChunk(16000, 2, 1, bytes(320)).event())
            await asyncio.wait({reading}, timeout=0.1)
        final = reading.result()
    return "transcript" if final == "transcript-stop" else final


async def _final(client: Any) -> str:
    while True:
        event = await client.read_event()
        if event is None:
            return "closed"
        if event.type == "transcript-stop":
            return event.type
        if event.type == "error":
            return str(event.data["code"])


async def test_soak() -> None:
    rng = random.Random(1)
    async with contextlib.AsyncExitStack() as stack:
        bridges: list[tuple[RunningBridge, Profile]] = []
        simulators = []
        for profile in PROFILES.values():
            simulator = await stack.enter_async_context(running_simulator(**profile.simulator))
            simulators.append(simulator)
            settings = {"lead": 30, "response_timeout": 0.5, "max_sessions": 100, **profile.bridge}
            bridge = await stack.enter_async_context(running_bridge(simulator.url, **settings))
            bridges.append((bridge, profile))
        fds, tasks = open_fds(), len(asyncio.all_tasks())

        slots = asyncio.Semaphore(CONCURRENT)

        async def limited(index: int) -> str:
            bridge, profile = bridges[index % len(bridges)]
            behaviour = "vanish" if rng.random() < 0.1 else profile.client
            async with slots:
                if behaviour == "trickle":
                    return await trickle(bridge)
                return await one_request(bridge, behaviour)

        outcomes = Counter(
            await asyncio.wait_for(asyncio.gather(*(limited(i) for i in range(UTTERANCES))), 120)
        )

        # Every request ended: a transcript or an error event (or its client left).
        assert sum(outcomes.values()) == UTTERANCES
        assert set(outcomes) <= {
            "transcript", "vanished", "bodhi-connection-lost", "bodhi-500", "bodhi-timeout",
            "bodhi-503",
        }, outcomes  # fmt: skip
        assert outcomes["transcript"] >= UTTERANCES // 3
        assert outcomes["vanished"] > 0 and outcomes["bodhi-timeout"] > 0

        # And everything returns to where it started: no session is held for a client that
        # left, a trickling one, or one answered early.
        assert await settle(lambda: all(bridge.server.connections == 0 for bridge, _ in bridges))
        assert await settle(lambda: all(b.bridge.active_utterances == 0 for b, _ in bridges))
        for simulator in simulators:
            for record in simulator.connections:
                await asyncio.wait_for(record.closed.wait(), 5)
        assert await settle(lambda: len(asyncio.all_tasks()) <= tasks), asyncio.all_tasks()
        assert await settle(lambda: open_fds() <= fds), (open_fds(), fds)
