"""Serving the HTTP side beside the Wyoming server, on ``http_uri``, within bounds of its own.

At most ``http_max_connections`` connections at once, live pages and microphone tests
included (a WebSocket keeps its connection). Connections are accepted one at a time, only
while there is room: one more is answered ``503`` and closed (a few at a time), and beyond
those, connections wait in the kernel's queue. So the page never holds more than
:func:`open_files` descriptors, on asyncio's loop or uvloop alike, and with the open-file
budget (:func:`..server.listener.raise_open_file_limit`) nothing done to it can take those
the Wyoming side needs. A connection that sends no request, or rests between requests, is
closed after ``KEEPALIVE_TIMEOUT`` (aiohttp's own default is an hour).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from typing import cast

from aiohttp import web

from ..addresses import tcp_host_port
from ..pipeline.activity import safely
from ..pipeline.bridge import Bridge
from ..server.listener import Throttled
from .app import build_app
from .monitor import Monitor

_LOGGER = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT = 20.0
"""Seconds a connection may go without a request (its first included) before it is closed.
Browsers reconnect as they need; above the 15 s for which aiohttp's client pool (Home
Assistant's ingress proxy) keeps a connection, so that it never reuses one as it closes."""
TURNING_AWAY = 4
"""Connections being answered 503 at once; more wait in the kernel's queue meanwhile."""
TURN_AWAY_LINGER = 1.0
"""Seconds a turned-away connection may take to read its 503 and hang up. What it sent is
read meanwhile: closing with it unread would reset the connection before the answer."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def open_files(max_connections: int) -> int:
    """Descriptors the page holds at most with ``max_connections``."""
    return max_connections + TURNING_AWAY


def page_connections(files: int) -> int:
    """The connections the page may serve with ``files`` descriptors (at least one)."""
    return max(1, files - TURNING_AWAY)


class StatusServer:
    """``await start()``; ``await stop()``. Observes the bridge from construction on."""

    def __init__(
        self,
        bridge: Bridge,
        connections: Callable[[], int],
        *,
        max_connections: int | None = None,
    ) -> None:
        settings = bridge.settings
        uri = settings.http_uri
        assert uri is not None
        host_port = tcp_host_port(uri)
        assert host_port is not None
        # No host given (tcp://:10301) is this machine only: the page has no password.
        # Every interface is asked for by name (0.0.0.0 or ::).
        self.host, self.port = host_port[0] or "127.0.0.1", host_port[1]
        self.max_connections = max_connections or settings.http_max_connections
        if self.max_connections < settings.http_max_connections:
            _LOGGER.warning(
                "The status page serves %d connections at once, not %d (http_max_connections), "
                "so that the Wyoming side keeps the open files it needs",
                self.max_connections,
                settings.http_max_connections,
            )
        self.connections = 0
        """Connections served now."""
        self._turning_away = 0
        self._room = asyncio.Event()
        self._room.set()
        self.monitor = Monitor(lambda: bridge.active_utterances, connections)
        bridge.activity = safely(self.monitor)
        self._runner = web.AppRunner(
            build_app(bridge, self.monitor),
            access_log=None,
            shutdown_timeout=1.0,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
        )
        self._accepting: asyncio.Task[None] | None = None
        self._busy_warning = Throttled(logger=_LOGGER)
        self._fd_warning = Throttled(logger=_LOGGER)

    async def start(self) -> None:
        """Bind (port 0 picks a free port, then :attr:`port` says which) and serve."""
        host = self.host
        ipv6 = ":" in host
        sock = socket.create_server(
            (host, self.port),
            family=socket.AF_INET6 if ipv6 else socket.AF_INET,
            dualstack_ipv6=host == "::",
        )
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        self._accepting = asyncio.create_task(self._accept(sock), name="status page accept")
        shown = f"[{host}]" if ipv6 else host
        _LOGGER.info("Status page on http://%s:%d/", shown, self.port)

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        with sock:
            while True:
                await self._room.wait()
                try:
                    conn, _address = await loop.sock_accept(sock)
                except OSError as err:
                    if err.errno not in _OUT_OF_RESOURCES:
                        # One connection's trouble (reset before it was accepted, say).
                        _LOGGER.debug("Accepting a page connection failed: %r", err)
                        await asyncio.sleep(0.01)
                        continue
                    self._fd_warning.warning(
                        "Cannot accept page connections: %s; they wait meanwhile. Raise the "
                        "open-file limit (ulimit -n)",
                        err,
                    )
                    await asyncio.sleep(1.0)
                    continue
                await self._serve(loop, conn)

    async def _serve(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        protocol = self._protocol()
        try:
            await loop.connect_accepted_socket(lambda: protocol, conn)
        except OSError:
            conn.close()
            protocol.connection_lost(None)

    def _protocol(self) -> asyncio.Protocol:
        """For a connection just accepted: aiohttp's, counted, or a refusal."""
        if self.connections < self.max_connections:
            handler = self._runner.server
            assert handler is not None
            self.connections += 1
            self._update_room()
            return _Counted(handler(), self._released)
        self._busy_warning.warning(
            "Turning away a page connection: %d open (http_max_connections)",
            self.max_connections,
        )
        self._turning_away += 1
        self._update_room()
        return _TurnedAway(self.max_connections, self._turned_away)

    def _released(self) -> None:
        self.connections -= 1
        self._update_room()

    def _turned_away(self) -> None:
        self._turning_away -= 1
        self._update_room()

    def _update_room(self) -> None:
        if self.connections < self.max_connections or self._turning_away < TURNING_AWAY:
            self._room.set()
        else:
            self._room.clear()

    async def stop(self) -> None:
        self.monitor.close()
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        await self._runner.cleanup()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, which says when the connection is gone."""

    def __init__(self, inner: asyncio.Protocol, released: Callable[[], None]) -> None:
        self._inner = inner
        self._released: Callable[[], None] | None = released

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            if self._released is not None:
                self._released()
                self._released = None


class _TurnedAway(asyncio.Protocol):
    """One connection too many: told so (503), then closed once it hangs up or lingers."""

    def __init__(self, limit: int, done: Callable[[], None]) -> None:
        self._limit = limit
        self._done: Callable[[], None] | None = done
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are ones.
        transport = cast(asyncio.Transport, transport)
        body = (
            f"the status page has {self._limit} connections open (http_max_connections); "
            "try again shortly\n"
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            transport.write(head + body)
            if transport.can_write_eof():
                transport.write_eof()
        except OSError:  # it has gone already (reset while it waited to be accepted)
            transport.abort()
            return
        self._timer = asyncio.get_running_loop().call_later(TURN_AWAY_LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        """What it asked for, read only so that closing does not reset it."""

    def eof_received(self) -> bool:
        return False  # it has hung up: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._done is not None:
            self._done()
            self._done = None
