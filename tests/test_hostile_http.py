"""The HTTP side (the status page and the metrics listener) against one hostile peer, over
real sockets: what it can make the log say, and that it cannot take either listener from the
health checks and the other peers.

The hostile peer is 127.0.0.1; the others (a kubelet, a balancer, Prometheus) connect from
127.0.0.2, another address of this machine's loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from wyoming_bodhi.web import probes
from wyoming_bodhi.web import server as web_server
from wyoming_bodhi.web.server import MetricsServer, StatusServer

from .harness import Rig, settled

HOSTILE, OTHER = "127.0.0.1", "127.0.0.2"
MALFORMED = [
    # A byte not allowed in a path, a request line over 8190 bytes, a bad chunk size, and
    # garbage after a request on the same connection: aiohttp cannot read them.
    b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\x01GARBAGE /\r\n\r\n",
]
FLOOD = 200

Listener = StatusServer | MetricsServer
Start = Callable[..., Awaitable[Listener]]


@pytest.fixture
def start(rig: Rig) -> Start:
    """``await start("page" | "metrics", **settings)``: that listener of a bridge of its
    own (against an engine nobody reaches: nothing here gets that far)."""

    async def start(which: str, **settings: object) -> Listener:
        if which == "page":
            running = await rig.bridge("ws://127.0.0.1:9", http_uri="tcp://127.0.0.1:0", **settings)
            return await rig.status_page(running)
        running = await rig.bridge("ws://127.0.0.1:9", metrics_uri="tcp://127.0.0.1:0", **settings)
        return await rig.metrics_listener(running)

    return start


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What a server at its default level (INFO) would have written."""
    return [record for record in caplog.records if record.levelno >= logging.INFO]


async def exchange(port: int, request: bytes, source: str = HOSTILE) -> bytes:
    """``request`` on a connection of its own; what came back before the server closed it
    (or 5 s passed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(request)
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(5):
                return await reader.read()
        return b""
    finally:
        writer.close()


async def probe(port: int, source: str = OTHER, path: str = "/healthz") -> int:
    """A health check as a kubelet sends one (1 s to answer): its status, 0 for none."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        async with asyncio.timeout(1):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            try:
                writer.write(request)
                head = await reader.readline()
            finally:
                writer.close()
    except (TimeoutError, OSError):
        return 0
    parts = head.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def hold_open(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, half_header: bool
) -> None:
    """Send nothing, or a request line and then a header every 0.1 s, never finishing (a
    slowloris), until the server closes the connection."""
    if half_header:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    while not reader.at_eof():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.1):
                await reader.read(1000)
        if half_header and not reader.at_eof():
            writer.write(b"X-Slow: 1\r\n")


@contextlib.asynccontextmanager
async def holding(port: int, count: int, source: str = HOSTILE) -> AsyncIterator[None]:
    """``count`` connections from ``source`` kept open for as long as the block runs, each
    opened again the moment it is closed: half idle, half half a header
    (:func:`hold_open`)."""

    async def hold(half_header: bool) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(source, 0)
                )
            except OSError:
                await asyncio.sleep(0.01)
                continue
            try:
                await hold_open(reader, writer, half_header)
            except ConnectionError:
                pass
            finally:
                writer.close()

    holders = [asyncio.create_task(hold(n % 2 == 1)) for n in range(count)]
    try:
        yield
    finally:
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


# -- what a peer can make the log say ---------------------------------------------------------


@pytest.mark.parametrize("which", ["page", "metrics"])
async def test_requests_aiohttp_cannot_read_are_a_line_per_interval_without_traceback(
    which: str, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = await start(which)
    caplog.clear()
    answers = [await exchange(listener.port, MALFORMED[n % len(MALFORMED)]) for n in range(FLOOD)]
    # Every one of them told what was wrong.
    assert all(b" 400 Bad Request\r\n" in answer for answer in answers), {a[:40] for a in answers}
    lines = logged(caplog)
    assert 1 <= len(lines) <= 2, [r.getMessage()[:200] for r in lines[:5]]
    assert all(record.exc_info is None for record in lines)
    assert all(len(record.getMessage()) <= 600 for record in lines)
    assert "Bad HTTP request to the " in lines[0].getMessage()


async def test_a_bug_of_ours_is_one_traceback_per_interval(
    monkeypatch: pytest.MonkeyPatch, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    def broken(_bridge: object) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(probes, "state", broken)
    listener = await start("metrics")
    caplog.clear()
    statuses = [await probe(listener.port, HOSTILE) for _ in range(50)]
    assert statuses == [500] * 50
    (line,) = logged(caplog)
    assert line.levelno == logging.ERROR and line.exc_info is not None
    assert "Internal error serving the metrics listener" in line.getMessage()


# -- one peer cannot take a listener -------------------------------------------------------


@pytest.mark.parametrize("which", ["page", "metrics"])
async def test_health_checks_are_answered_while_one_peer_holds_the_listener(
    which: str, start: Start
) -> None:
    listener = await start(which)
    # Three times the connections the listener serves, idle and half a header each.
    async with holding(listener.port, 3 * listener.max_connections):
        assert await settled(lambda: listener.connections >= listener.per_peer)
        statuses = []
        for _ in range(5):
            statuses.append(await probe(listener.port))
            statuses.append(await probe(listener.port, path="/readyz"))
        held = listener.connections
    assert statuses == [200] * 10
    assert held <= listener.per_peer < listener.max_connections


async def test_a_peer_http_allow_refuses_takes_no_place(start: Start) -> None:
    page = await start("page", http_allow=[OTHER])
    refused = await exchange(page.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    async with holding(page.port, 3 * page.max_connections):
        statuses = [await probe(page.port) for _ in range(5)]
        served_meanwhile = page.connections
    assert statuses == [200] * 5
    assert served_meanwhile == 0
    assert refused.startswith(b"HTTP/1.1 403 ")
    assert refused.endswith(b"\r\n\r\nnot allowed from this address\n")


@pytest.mark.parametrize("which", ["page", "metrics"])
async def test_a_connection_must_send_its_first_head_soon(
    which: str, monkeypatch: pytest.MonkeyPatch, start: Start
) -> None:
    # Far sooner than the keep-alive timeout (10 s, 20 s), which is left as it is.
    monkeypatch.setattr(web_server, "HEAD_TIMEOUT", 0.5)
    listener = await start(which)
    loop = asyncio.get_running_loop()

    async def closed_after(half_header: bool) -> float:
        began = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        async with asyncio.timeout(5):
            await hold_open(reader, writer, half_header)
        writer.close()
        return loop.time() - began

    idle, slow = await asyncio.gather(closed_after(False), closed_after(True))
    # A request whose head came in time is not cut off at HEAD_TIMEOUT: the connection
    # rests between requests for as long as the keep-alive allows.
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    writer.write(request)
    first = await asyncio.wait_for(reader.readuntil(b"}"), 3)
    await asyncio.sleep(1.0)  # past HEAD_TIMEOUT, idle, within the keep-alive
    writer.write(request)
    second = await asyncio.wait_for(reader.readuntil(b"}"), 3)
    writer.close()
    assert idle < 1.5 and slow < 1.5, (idle, slow)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 ")
