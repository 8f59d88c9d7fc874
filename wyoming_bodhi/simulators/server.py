"""A simulator's I/O shell, whatever the vendor: an aiohttp WebSocket server around a
sans-I/O session.

The handshake (admission, refusals, recording) lives here, one upgraded connection in
:mod:`.connection` (frames, timers, fault injection); each vendor's protocol is its session
(``bodhi/session.py``, ``iapp/session.py``), and its authentication the
:meth:`~SimulatorServer.authenticate` of its subclass of :class:`SimulatorServer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web

from .connection import Connection
from .messages import SimulatedSession
from .options import SimulatorOptions
from .record import (
    ENDED_CLIENT_CLOSED,
    ENDED_REFUSED,
    ENDED_SERVER_STOPPED,
    ConnectionRecord,
)

_LOGGER = logging.getLogger(__name__)

REFUSAL_REASONS = {
    401: "unauthorized",
    402: "insufficient balance",
    403: "forbidden",
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable, retry after a brief delay",
}

# 1 s frames at 48 kHz are 96 kB; leave room for clients that send more.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class SimulatorServer:
    """A vendor-compatible streaming ASR server for tests, benchmarks and demos.

    ``async with BodhiSimulator(BodhiOptions(texts=["namaste"])) as sim:`` serves on
    ``sim.url`` until the block ends. ``sim.connections`` records the latest handshakes (at
    most ``options.history``); ``sim.connection_count`` counts them all. A vendor's subclass
    says how a handshake authenticates and what a session is.
    """

    vendor = "the"
    max_request_bytes = 1024**2
    """The largest request body read (aiohttp's default): handshakes have none."""
    options_type: ClassVar[type[SimulatorOptions]] = SimulatorOptions
    """The vendor's options: its subclass of :class:`SimulatorOptions`, if it has knobs of
    its own. Shared options given to its simulator get the vendor's knobs at their
    defaults."""

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = self.options_type.widened(options)
        self.connections: list[ConnectionRecord] = []
        self.connection_count = 0
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._live: set[Connection] = set()
        self._refused = 0

    # --- lifecycle ---

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    @property
    def url(self) -> str:
        host = self.options.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self.options.tls_cert else "ws"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=self.max_request_bytes)
        self.add_routes(app)
        # Bodhi's URL is a bare host; accept any path so clients with a trailing path work.
        app.router.add_get("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        ssl_context = None
        if self.options.tls_cert:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        site = web.TCPSite(runner, self.options.host, self.options.port, ssl_context=ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._stopping.clear()
        self._port = int(runner.addresses[0][1])
        _LOGGER.info("%s simulator serving on %s", self.vendor, self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        live = list(self._live)
        for connection in live:
            connection.request_stop()
        if live:
            # Bounded: a client that never answers the close frame must not hold stop() up.
            waiters = [asyncio.ensure_future(c.record.closed.wait()) for c in live]
            _, pending = await asyncio.wait(waiters, timeout=self.options.close_timeout + 0.5)
            for waiter in pending:
                waiter.cancel()
        await runner.cleanup()
        _LOGGER.info("%s simulator stopped", self.vendor)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for_connections(
        self, count: int, timeout: float = 5.0
    ) -> list[ConnectionRecord]:
        """Wait until ``count`` handshakes (accepted or refused) have been recorded."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.connection_count >= count)
        return list(self.connections)

    # --- handshake ---

    def add_routes(self, app: web.Application) -> None:
        """A vendor's HTTP endpoints beside the WebSocket (Bodhi's non-streaming API)."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        record = await self._open_record(request)
        try:
            refusal = await self._admission(request, record)
            if refusal is not None:
                status, reason = refusal
                return web.json_response({"error": reason, "code": status}, status=status)
            ws: web.WebSocketResponse = web.WebSocketResponse(
                timeout=self.options.close_timeout, max_msg_size=MAX_MESSAGE_BYTES
            )
            if not ws.can_prepare(request).ok:
                record.http_status = 426
                record.end(ENDED_REFUSED, time.monotonic(), None, "not a WebSocket upgrade")
                return web.json_response(
                    {"error": "expected a WebSocket upgrade", "code": 426}, status=426
                )
            await ws.prepare(request)
            record.http_status = 101
            connection = Connection(
                self.options, self._stopping, request, ws, record, self.new_session()
            )
            self._live.add(connection)
            try:
                await connection.run()
            finally:
                self._live.discard(connection)
            return ws
        finally:
            self._close_record(record)

    async def _open_record(self, request: web.Request) -> ConnectionRecord:
        """A new record for this handshake or request, kept within ``history``."""
        record = ConnectionRecord(
            index=self.connection_count,
            path=request.path,
            started_at=time.monotonic(),
            method=request.method,
        )
        async with self._changed:
            self.connections.append(record)
            self.connection_count += 1
            excess = len(self.connections) - self.options.history
            if excess > 0:
                del self.connections[:excess]
            self._changed.notify_all()
        return record

    def _close_record(self, record: ConnectionRecord) -> None:
        if record.ended is None:
            record.end(ENDED_CLIENT_CLOSED, time.monotonic())
        record.closed.set()
        _LOGGER.info(
            "connection %d ended: %s (HTTP %s, close code %s, %d frames, %d bytes)",
            record.index,
            record.ended,
            record.http_status,
            record.close_code,
            len(record.frames),
            record.audio_bytes,
        )

    async def _admission(
        self, request: web.Request, record: ConnectionRecord
    ) -> tuple[int, str] | None:
        """Before anything is answered: the configured delay, the credentials, the refusals.
        Returns the refusal (HTTP status and reason), recorded, or None to go on."""
        if self.options.handshake_delay:
            # Wait on the stop event rather than sleep, so stop() need not wait it out.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.options.handshake_delay)
            if self._stopping.is_set():
                record.http_status = 503
                record.end(ENDED_SERVER_STOPPED, time.monotonic(), None, "simulator stopping")
                return 503, "simulator stopping"
        refusal = self.authenticate(request, record) or self._refusal()
        if refusal is not None:
            status, reason = refusal
            record.http_status = status
            record.end(ENDED_REFUSED, time.monotonic(), None, reason)
            _LOGGER.info("connection %d refused with HTTP %d: %s", record.index, status, reason)
        return refusal

    def authenticate(
        self, request: web.Request, record: ConnectionRecord
    ) -> tuple[int, str] | None:
        """None if the handshake's credentials are good, else the refusal (status, reason).
        Records which credentials were presented, never logging their values."""
        raise NotImplementedError

    def new_session(self) -> SimulatedSession:
        """The protocol state of one new connection."""
        raise NotImplementedError

    def _refusal(self) -> tuple[int, str] | None:
        status = self.options.refuse_status
        if status is None:
            return None
        limit = self.options.refuse_count
        if limit is not None and self._refused >= limit:
            return None
        self._refused += 1
        return status, REFUSAL_REASONS[status]


__all__ = ["REFUSAL_REASONS", "SimulatorServer"]
