"""Soak: hundreds of utterances, tens at once, faults and attacks mixed in; every request ends,
nothing leaks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import async_write_event

from wyoming_bodhi.pipeline.activity import GONE

from .harness import (
    Recorder,
    RunningBridge,
    running_bridge,
    running_simulator,
    running_status_page,
    settled,
    transcribe,
)
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


settle = functools.partial(settled, within=5.0)
"""Resources close asynchronously, and after a soak there are many."""


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
        recorders: dict[str, Recorder] = {}
        for name, profile in PROFILES.items():
            simulator = await stack.enter_async_context(running_simulator(**profile.simulator))
            simulators.append(simulator)
            settings = {"lead": 30, "response_timeout": 0.5, "max_sessions": 100, **profile.bridge}
            bridge = await stack.enter_async_context(running_bridge(simulator.url, **settings))
            bridges.append((bridge, profile))
            bridge.bridge.activity.add(recorders.setdefault(name, Recorder()))
        fds, tasks = open_fds(), len(asyncio.all_tasks())

        slots = asyncio.Semaphore(CONCURRENT)

        async def limited(index: int) -> tuple[str, str]:
            bridge, profile = bridges[index % len(bridges)]
            behaviour = "vanish" if rng.random() < 0.1 else profile.client
            name = next(name for name, known in PROFILES.items() if known is profile)
            async with slots:
                if behaviour == "trickle":
                    return name, await trickle(bridge)
                return name, await one_request(bridge, behaviour)

        results = await asyncio.wait_for(
            asyncio.gather(*(limited(i) for i in range(UTTERANCES))), 120
        )
        outcomes = Counter(outcome for _profile, outcome in results)

        # Every request ended as its Bodhi behaved: a transcript, an error event, or its
        # client left.
        healthy = Counter(outcome for profile, outcome in results if profile == "healthy")
        assert set(healthy) <= {"transcript", "vanished"} and healthy["transcript"] > 0, healthy
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
        # The server accounted for every request once, as its client saw it end; one whose
        # client left as "client-gone" (or as its engine's error, had that come first).
        for name, recorder in recorders.items():
            seen = Counter(outcome for profile, outcome in results if profile == name)
            answered = Counter({o: n for o, n in seen.items() if o != "vanished"})
            recorded = recorder.results
            assert recorded.total() == seen.total() and answered <= recorded, (name, recorded)
            assert set(recorded - answered) <= {GONE} | set(outcomes), (name, recorded)
        for name in ("healthy", "vanishing mid-queue"):
            seen = Counter(outcome for profile, outcome in results if profile == name)
            assert recorders[name].results[GONE] == seen["vanished"] > 0, name
        for simulator in simulators:
            for record in simulator.connections:
                await asyncio.wait_for(record.closed.wait(), 5)
        assert await settle(lambda: len(asyncio.all_tasks()) <= tasks), asyncio.all_tasks()
        assert await settle(lambda: open_fds() <= fds), (open_fds(), fds)


# -- the status page beside Wyoming load ------------------------------------------------------

PAGE_UTTERANCES = 80
MICROPHONES = 12
SPEECH = encode(utterances(16000, count=1, burst=0.4))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def live_page(
    http: aiohttp.ClientSession, base: str, updates: int, until: asyncio.Event | None = None
) -> int:
    """A live page: reads its snapshot and ``updates`` - 1 updates, then leaves (or, with
    ``until``, reads nothing more until then). How many it read."""
    read = 0
    async with http.ws_connect(f"{base}/api/live", headers={"Origin": base}) as ws:
        while read < updates:
            message = await ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            read += 1
        if until is not None:
            await until.wait()
    return read


async def microphone(http: aiohttp.ClientSession, base: str, behaviour: str) -> str:
    async with http.ws_connect(f"{base}/api/microphone", headers={"Origin": base}) as ws:
        await ws.send_json({"language": "hi", "model": None, "rate": 16000})
        started = await ws.receive_json(timeout=10)
        if started["type"] != "started":
            return str(started["code"])
        for offset in range(0, len(SPEECH), 3200):
            await ws.send_bytes(SPEECH[offset : offset + 3200])
            if behaviour == "leaves" and offset >= 6400:
                return "left"
        await ws.send_json({"type": "stop"})
        while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
            answer = json.loads(message.data)
            if answer["type"] in ("transcript", "error"):
                return str(answer.get("code") or answer["type"])
    return "closed"


async def checks(http: aiohttp.ClientSession, base: str, until: asyncio.Event) -> list[Any]:
    """The check button, pressed again and again: the answers."""
    answers = []
    while not until.is_set():
        async with http.post(f"{base}/api/check/bodhi", headers={"Origin": base}) as response:
            answers.append((response.status, await response.json()))
        await asyncio.sleep(0.05)
    return answers


async def test_soak_with_the_status_page() -> None:
    """Wyoming requests while live pages come and go (one stops reading), the check is
    pressed over and over, and microphone tests run, end or are left mid-way; then every
    connection, task, descriptor and engine session is gone, and memory is back."""
    rng = random.Random(2)
    async with (
        running_simulator(texts=["batti jalao"]) as simulator,
        running_bridge(
            simulator.url, http_uri="tcp://127.0.0.1:0", lead=30, max_sessions=100
        ) as bridge,
        running_status_page(bridge) as status,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{status.port}"
        # A first round, so that what stays allocated for good is in the baseline.
        await one_request(bridge, "normal")
        await microphone(http, base, "speaks")
        await live_page(http, base, 1)
        assert await settle(lambda: status.connections == 0)
        fds, tasks, rss = open_fds(), len(asyncio.all_tasks()), rss_mb()
        counts_before = Counter(status.monitor.counts()["results"])
        sessions_before = simulator.connection_count
        started = asyncio.get_running_loop().time()

        slots = asyncio.Semaphore(10)
        wyoming_done = asyncio.Event()

        async def wyoming(index: int) -> str:
            await asyncio.sleep(index * 0.05)  # spread over 4 s, while the pages come and go
            async with slots:
                return await one_request(bridge, "vanish" if index % 8 == 0 else "normal")

        async def page(index: int) -> str:
            await asyncio.sleep(rng.random())
            if index % 3 == 0:
                # One page stays open without reading, until the Wyoming load is over.
                if index == 0:
                    return str(await live_page(http, base, 1, until=wyoming_done))
                return str(await live_page(http, base, 5))
            return await microphone(http, base, "leaves" if index % 4 == 1 else "speaks")

        async def all_wyoming() -> list[str]:
            try:
                return await asyncio.gather(*(wyoming(i) for i in range(PAGE_UTTERANCES)))
            finally:
                wyoming_done.set()

        stop_checking = asyncio.Event()
        checking = asyncio.create_task(checks(http, base, stop_checking))
        wyoming_outcomes, page_outcomes = await asyncio.wait_for(
            asyncio.gather(all_wyoming(), asyncio.gather(*(page(i) for i in range(18)))), 60
        )
        stop_checking.set()
        answers = await checking
        elapsed = asyncio.get_running_loop().time() - started

        # Each request ended as its client behaved, and the page counted each once.
        vanished = PAGE_UTTERANCES // 8
        assert Counter(wyoming_outcomes) == {
            "transcript": PAGE_UTTERANCES - vanished,
            "vanished": vanished,
        }
        assert Counter(o for o in page_outcomes if not o.isdigit()) == {
            "transcript": 8, "left": 4,
        }, page_outcomes  # fmt: skip
        assert [int(o) for o in page_outcomes if o.isdigit()] == [1, 5, 5, 5, 5, 5]
        assert await settle(lambda: bridge.bridge.active_utterances == 0)
        counted = Counter(status.monitor.counts()["results"]) - counts_before
        assert counted == {
            "transcript": PAGE_UTTERANCES - vanished + 8, "client-gone": vanished + 4,
        }, counted  # fmt: skip
        # The check ran as often as its rate allows, and no more.
        ran = {body["checked_at"] for code, body in answers if code == 200}
        assert {code for code, _body in answers} == {200, 429}
        assert 1 <= len(ran) <= 3 + elapsed // 20, (ran, elapsed)
        sessions = simulator.connection_count - sessions_before
        wanted = PAGE_UTTERANCES - vanished + 12 + len(ran)
        assert wanted <= sessions <= wanted + vanished, sessions

        # And everything is back where it started (once the pages' browser has closed its
        # keep-alive connections).
        await http.close()
        assert await settle(lambda: status.connections == 0), status.connections
        assert await settle(lambda: bridge.server.connections == 0)
        for record in simulator.connections:
            await asyncio.wait_for(record.closed.wait(), 5)
        assert await settle(lambda: len(asyncio.all_tasks()) <= tasks), asyncio.all_tasks()
        assert await settle(lambda: open_fds() <= fds), (open_fds(), fds)
        assert rss_mb() - rss < 10, (rss_mb(), rss)
