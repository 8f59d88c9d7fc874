"""Soak: hundreds of utterances, tens at once, faults mixed in; every request ends, nothing leaks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from typing import Any

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart

from .harness import RunningBridge, running_bridge, running_simulator, transcribe
from .signals import encode, utterances

UTTERANCES = 300
CONCURRENT = 30
AUDIO = encode(utterances(16000, count=1, burst=0.4))

# One simulator and bridge per behaviour; requests are spread over all of them.
PROFILES: dict[str, dict[str, Any]] = {
    "healthy": {"texts": ["batti jalao"]},
    "flaky handshake": {"texts": ["batti jalao"], "refuse_status": 503, "refuse_count": 20},
    "drops": {"drop_after_frames": 2},
    "errors": {"error_after_frames": 3},
    "malformed": {"texts": ["batti jalao"], "malformed_results": True},
    "silent": {"silent_after_eof": True},
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


async def one_request(bridge: RunningBridge, vanish: bool) -> str:
    async with bridge.client() as client:
        if vanish:
            await client.write_event(Transcribe(language="hi").event())
            await client.write_event(AudioStart(16000, 2, 1).event())
            await client.write_event(AudioChunk(16000, 2, 1, AUDIO[:4000]).event())
            return "vanished"
        exchange = await transcribe(client, AUDIO)
    final = exchange.events[-1]
    return "transcript" if final.type == "transcript-stop" else str(final.data["code"])


async def test_soak() -> None:
    rng = random.Random(1)
    async with contextlib.AsyncExitStack() as stack:
        bridges: list[RunningBridge] = []
        simulators = []
        for options in PROFILES.values():
            simulator = await stack.enter_async_context(running_simulator(**options))
            simulators.append(simulator)
            bridges.append(
                await stack.enter_async_context(
                    running_bridge(simulator.url, lead=30, response_timeout=0.5, max_sessions=100)
                )
            )
        fds, tasks = open_fds(), len(asyncio.all_tasks())

        slots = asyncio.Semaphore(CONCURRENT)

        async def limited(index: int) -> str:
            async with slots:
                return await one_request(bridges[index % len(bridges)], vanish=rng.random() < 0.1)

        outcomes = Counter(
            await asyncio.wait_for(asyncio.gather(*(limited(i) for i in range(UTTERANCES))), 120)
        )

        # Every request ended: a transcript or an error event (or its client left).
        assert sum(outcomes.values()) == UTTERANCES
        assert set(outcomes) <= {
            "transcript", "vanished", "bodhi-connection-lost", "bodhi-500", "bodhi-timeout",
            "bodhi-503",
        }  # fmt: skip
        assert outcomes["transcript"] >= UTTERANCES // 3
        assert outcomes["vanished"] > 0 and outcomes["bodhi-timeout"] > 0

        # And everything returns to where it started.
        assert await settle(lambda: all(bridge.server.connections == 0 for bridge in bridges))
        assert all(bridge.bridge.active_utterances == 0 for bridge in bridges)
        for simulator in simulators:
            for record in simulator.connections:
                await asyncio.wait_for(record.closed.wait(), 5)
        assert await settle(lambda: len(asyncio.all_tasks()) <= tasks), asyncio.all_tasks()
        assert await settle(lambda: open_fds() <= fds), (open_fds(), fds)
