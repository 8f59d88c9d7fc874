"""The bridge against an engine that sends whatever it likes: codes, repeats, floods.

What an engine sends ends up in error codes (and so in ``/metrics`` labels and the status
page's counts) and in log lines; neither may grow with what it sends. Each test runs the real
bridge against a hostile WebSocket server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from wyoming.audio import AudioStop
from wyoming.event import Event, async_read_event

from .harness import running_bridge, running_status_page, serving
from .test_promises import raw_connection, send, start_events

Session = Callable[[web.Request, web.WebSocketResponse, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def hostile_engine(session: Session, refuse: Callable[[int], int | None] | None = None,
                         ) -> AsyncIterator[str]:  # fmt: skip
    """A WebSocket server that runs ``session(request, ws, n)`` for its n-th connection
    (from 0), once the config has arrived; ``refuse(n)`` may refuse the upgrade instead, with
    the HTTP status it returns."""
    counter = itertools.count()

    async def handle(request: web.Request) -> web.StreamResponse:
        n = next(counter)
        status = refuse(n) if refuse is not None else None
        if status is not None:
            return web.Response(status=status, text="no")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the config
        await session(request, ws, n)
        return ws

    app = web.Application()
    app.router.add_get("/", handle)
    async with serving(app) as port:
        yield f"ws://127.0.0.1:{port}/"


def error_with_code(code: Callable[[int], object]) -> Session:
    async def session(_request: web.Request, ws: web.WebSocketResponse, n: int) -> None:
        await ws.send_str(json.dumps({"error": "trouble", "code": code(n)}))
        await ws.close()

    return session


def no_audio_request() -> list[Event]:
    """A request that ends at once: the engine's session opens as it starts."""
    return [*start_events(), AudioStop().event()]


async def answers(port: int, requests: int) -> list[Event]:
    """``requests`` requests pipelined on one connection; their final events."""
    async with raw_connection(port) as (reader, writer):
        await send(writer, *[event for _ in range(requests) for event in no_audio_request()])
        finals: list[Event] = []
        while len(finals) < requests:
            event = await asyncio.wait_for(async_read_event(reader), 5.0)
            assert event is not None, f"{len(finals)} of {requests} answered"
            if event.type in ("transcript", "error"):
                finals.append(event)
    return finals


@pytest.mark.parametrize("code", ["\u00b2", "7" * 5000, 7 * 10**3000, -3, [401]])
async def test_an_odd_code_in_the_socket_is_an_engine_error_not_an_internal_one(
    code: object, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        hostile_engine(error_with_code(lambda _n: code)) as url,
        running_bridge(url, retries=0) as bridge,
    ):
        (final,) = await answers(bridge.port, 1)
    assert final.type == "error"
    assert final.data["code"] == "bodhi-error", final.data
    assert "trouble" in final.data["text"] and len(final.data["text"]) < 300
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def series(metrics: str, name: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith(name + "{")]


async def test_400_distinct_upstream_codes_make_a_fixed_number_of_metrics_series() -> None:
    # Every other connection is refused at the handshake with a status of 400-599; the rest
    # are accepted and then ended by an in-socket error whose code is new each time (1000 on,
    # and one of 4000 digits).
    def code(n: int) -> object:
        return "9" * 4000 if n == 1 else 1000 + n

    def refuse(n: int) -> int | None:
        return 400 + (n // 2) % 200 if n % 2 == 0 else None

    async with (
        hostile_engine(error_with_code(code), refuse) as url,
        running_bridge(url, retries=0, http_uri="tcp://127.0.0.1:0", max_sessions=400) as running,
        running_status_page(running) as status,
        aiohttp.ClientSession() as http,
    ):
        metrics_url = f"http://127.0.0.1:{status.port}/metrics"

        async def metrics() -> str:
            async with http.get(metrics_url) as response:
                return await response.text()

        await answers(running.port, 10)
        early = await metrics()
        # 390 more, on 10 connections at once.
        finals = [f for fs in await asyncio.gather(*(answers(running.port, 39) for _ in range(10)))
                  for f in fs]  # fmt: skip
        late = await metrics()
        counts = status.monitor.counts()
    assert len(finals) == 390 and all(f.type == "error" for f in finals)
    # Bodhi's own codes (400-403, 500, 503) and one for everything else, whatever was sent:
    # here each of them but 400 (which only an in-socket error without a code gives).
    closed = {"400", "401", "402", "403", "500", "503", "error"}
    for name, label in (("wyoming_bodhi_requests_total", "result"),
                        ("wyoming_bodhi_engine_handshake_failures_total", "status")):  # fmt: skip
        values = set(re.findall(rf'{label}="(?:bodhi-)?([^"]*)"', "\n".join(series(late, name))))
        assert values == closed - {"400"}, (name, values)
    assert len(late) < len(early) + 1000, (len(early), len(late))
    # The page counts each request once, in the same closed set: of the 200 refused at the
    # handshake, one each with 401, 402, 403, 500 and 503, the rest (and every in-socket
    # code, all new) as "error".
    own = {"401": 1, "402": 1, "403": 1, "500": 1, "503": 1}
    assert counts["results"] == {
        **{f"bodhi-{code}": n for code, n in own.items()}, "bodhi-error": 395,
    }, counts  # fmt: skip
    assert counts["handshake_failures"] == {
        **{f"bodhi {code}": n for code, n in own.items()}, "bodhi error": 195,
    }, counts  # fmt: skip


# -- what an engine can make the log say -----------------------------------------------------------


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines a server at its default level (INFO) would have written."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def flooding(*messages: str, times: int) -> Session:
    """Sends ``messages`` ``times`` times over, then a final complete with eos."""

    async def session(_request: web.Request, ws: web.WebSocketResponse, _n: int) -> None:
        for _ in range(times):
            for message in messages:
                await ws.send_str(message)
        await ws.send_str(json.dumps({"type": "complete", "text": "", "eos": True}))
        async for _message in ws:
            pass

    return session


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param(
            [json.dumps({"type": "complete", "text": "batti", "segment_id": "s" * 200_000})],
            id="a repeated complete with a long segment id",
        ),
        pytest.param(
            [json.dumps({"type": "complete", "text": "batti", "segment_id": 7})],
            id="a repeated complete",
        ),
        pytest.param([json.dumps({"type": "t" * 900_000, "text": "x"})], id="a 900 kB type"),
        pytest.param(
            [json.dumps({"type": "partial", "text": "x", "segment_meta": "m" * 900_000}), "{"],
            id="garbage after a large message",
        ),
    ],
)
async def test_an_engines_flood_is_a_few_short_lines_per_request(
    messages: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    times = 2000 if len(messages[0]) < 1000 else 20
    async with (
        hostile_engine(flooding(*messages, times=times)) as url,
        running_bridge(url, retries=0) as bridge,
    ):
        (final,) = await answers(bridge.port, 1)
    lines = logged(caplog)
    assert final.type == "transcript", final
    assert len(lines) <= 4, lines[:6]
    assert all(len(line) <= 1000 for line in lines), [len(line) for line in lines]
    # A summary says how many there were.
    counts = {str(total - n) for total in (times, times * len(messages)) for n in range(3)}
    assert any(re.search(rf"\b({'|'.join(counts)})\b", line) for line in lines), lines
