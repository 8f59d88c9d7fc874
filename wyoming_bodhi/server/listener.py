"""The Wyoming server: accepts connections within bounds, and stops gracefully.

``wyoming.server.AsyncServer`` closes every connection at once on SIGTERM, dropping
utterances in flight without a word to their clients. Here a stop first drains (not ready,
still accepting and serving for ``drain_delay`` seconds, so that a load balancer notices
before any connection is refused), then stops accepting, gives the requests in flight
``shutdown_timeout`` seconds to finish, answers the rest with a ``shutdown`` error, and only
then closes the connections.

At most ``max_connections`` clients are served at once; one more is told ``busy`` and
closed, never left waiting. Out of file descriptors, asyncio's accept loop pauses for a
second and reports it through the loop's exception handler, with a traceback each time; here
that becomes one warning line per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wyoming.error import Error
from wyoming.event import async_get_stdin, async_write_event

from ..pipeline.bridge import Bridge
from ..wire import MAX_LINE_BYTES
from .handler import FLUSH_AT_SHUTDOWN, LINGER, BridgeEventHandler
from .info import info_event

_LOGGER = logging.getLogger(__name__)

_ACCEPT_OUT_OF_RESOURCES = "socket.accept() out of system resource"
_SPARE_FILES = 64
"""Open files beyond the sockets: the listening socket, logs, CA files, the event loop's own."""
CLOSING_SLACK = 0.25
"""Seconds a connection gets, after its LINGER, to end on its own before it is cancelled."""
CLOSING_TIME = FLUSH_AT_SHUTDOWN + LINGER + CLOSING_SLACK
"""Seconds, at most, from the end of the grace to every connection closed: the ``shutdown``
errors written (FLUSH_AT_SHUTDOWN), then each connection read on for LINGER. An
orchestrator's stop timeout must cover drain_delay + shutdown_timeout + this."""


def listen_backlog(max_connections: int) -> int:
    """The kernel's queue of connections not yet accepted: room for a burst as large as the
    connections served at once (asyncio's default is 100; the kernel caps it at
    ``net.core.somaxconn``). A replica behind a balancer gets its connections in bursts, and
    a connection the queue has no room for waits for its SYN to be sent again (a second or
    more), or is reset."""
    return max(100, max_connections)


def raise_open_file_limit(connections: int, sessions: int, page: int = 0) -> int:
    """Make room for every connection and its engine socket, and for the ``page`` files the
    status page may hold, as far as the hard limit allows.

    Many systems start services with a soft limit of 1024 open files and a far higher hard
    one; a server that needs more raises its own soft limit (nginx, redis and others do).
    Returns the files the page may hold: ``page``, or, when the limit is too low for both,
    what is left once the Wyoming side has what it needs (it comes first).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return page
    wyoming = connections + sessions + _SPARE_FILES
    wanted = wyoming + page
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return page
    _LOGGER.warning(
        "max_connections %d and max_sessions %d need about %d open files%s, but the limit is "
        "%d: raise it (ulimit -n, or the container's nofile limit) or lower max_connections",
        connections,
        sessions,
        wyoming,
        f" and the status page {page} more" if page else "",
        soft,
    )
    return max(0, min(page, soft - wyoming))


class BridgeServer:
    """Serves ``tcp://`` and ``unix://`` URIs (``stdio://`` is served by ``serve_stdio``)."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._info = info_event(bridge)
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], BridgeEventHandler] = {}
        self._unix_path: Path | None = None
        self._previous_exception_handler: Any = None

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._handlers)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._previous_exception_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_exception)
        uri = urlsplit(self._bridge.settings.uri)
        backlog = listen_backlog(self._bridge.settings.max_connections)
        if uri.scheme == "tcp":
            self._server = await asyncio.start_server(
                self._on_client, uri.hostname, uri.port, limit=MAX_LINE_BYTES, backlog=backlog
            )
        elif uri.scheme == "unix":
            self._unix_path = Path(uri.path)
            self._unix_path.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(
                self._on_client, uri.path, limit=MAX_LINE_BYTES, backlog=backlog
            )
        else:
            raise ValueError(f"BridgeServer cannot serve {uri.scheme}://")

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_OUT_OF_RESOURCES:
            self._bridge.warnings.warning(
                _LOGGER,
                "Cannot accept connections: %s; pausing for a second. Raise the open-file "
                "limit (ulimit -n) or lower max_connections (now %d)",
                context.get("exception"),
                self._bridge.settings.max_connections,
            )
            return
        if self._accept_resumed_after_close(context):
            # asyncio resumes accepting a second after that pause even when the server was
            # closed meanwhile (a stop), on a socket that is gone: nothing is lost.
            _LOGGER.debug("The accept loop resumed after the listener closed: nothing to do")
            return
        if self._previous_exception_handler is not None:
            self._previous_exception_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def _accept_resumed_after_close(self, context: dict[str, Any]) -> bool:
        handle = context.get("handle")
        callback = getattr(handle, "_callback", None)
        return (
            isinstance(context.get("exception"), ValueError)
            and getattr(callback, "__name__", "") == "_start_serving"
            and self._server is not None
            and not self._server.is_serving()
        )

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        settings = self._bridge.settings
        if len(self._handlers) >= settings.max_connections:
            await self._turn_away(writer, settings.max_connections)
            return
        handler = BridgeEventHandler(
            reader, writer, self._bridge, self._info, idle_timeout=settings.idle_timeout
        )
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = handler
        try:
            await handler.run()
        finally:
            self._handlers.pop(task, None)

    async def _turn_away(self, writer: asyncio.StreamWriter, limit: int) -> None:
        """Tell one client too many that the server is busy, and close: never leave it hanging."""
        self._bridge.warnings.warning(
            _LOGGER,
            "Turning away a connection from %s: %d connections open (max_connections)",
            writer.get_extra_info("peername"),
            limit,
        )
        error = Error(
            text=f"the speech-to-text server has {limit} connections open (max_connections); "
            "try again shortly",
            code="busy",
        )
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(1.0):
                await async_write_event(error.event(), writer)
        writer.close()

    async def drain(self, until: float, hurry: asyncio.Event | None = None) -> None:
        """Not ready, still serving, until the event loop's clock reads ``until`` (or
        ``hurry`` is set): new connections are still accepted and served, so that the
        requests a load balancer sends before it notices are not lost. Each connection is
        closed once its request is answered, so that its client's next request goes to
        another server."""
        self._bridge.draining = True
        remaining = max(0.0, until - asyncio.get_running_loop().time())
        if hurry is None:
            await asyncio.sleep(remaining)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hurry.wait(), remaining)

    async def finish(self, grace: float, hurry: asyncio.Event | None = None) -> None:
        """Stop accepting; give the requests in flight (the page's microphone's too) ``grace``
        seconds, or until ``hurry`` is set, to finish; answer the rest with ``shutdown``."""
        bridge = self._bridge
        bridge.draining = bridge.shutting_down = True
        if self._server is not None:
            self._server.close()
        for handler in list(self._handlers.values()):
            handler.close_when_idle()
        unanswered = bridge.requests.unanswered
        if unanswered:
            _LOGGER.info("Shutting down: waiting up to %g s for %d request(s)", grace, unanswered)
            await bridge.requests.wait(grace, hurry)
        bridge.requests.fail_all()

    async def close(self) -> None:
        """After :meth:`finish`: write the last answers and close every connection, each
        bounded (one client that does not read holds up nobody else)."""
        handlers = list(self._handlers.values())
        outcomes = await asyncio.gather(
            # The engine sessions of the requests answered `shutdown` close meanwhile.
            self._bridge.requests.wait(FLUSH_AT_SHUTDOWN),
            *(handler.shut_down() for handler in handlers),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, Exception) and not isinstance(outcome, ConnectionError):
                _LOGGER.error("Shutting down a connection failed: %r", outcome)
        if self._handlers:
            # Each ends when its client closes, or at the end of its LINGER.
            timeout = LINGER + CLOSING_SLACK
            _done, pending = await asyncio.wait(list(self._handlers), timeout=timeout)
            for task in pending:
                task.cancel()
        if self._unix_path is not None:
            with contextlib.suppress(OSError):
                self._unix_path.unlink(missing_ok=True)
        asyncio.get_running_loop().set_exception_handler(self._previous_exception_handler)
        _LOGGER.info("Stopped")

    async def shutdown(self, grace: float, hurry: asyncio.Event | None = None) -> None:
        """:meth:`finish`, then :meth:`close`."""
        await self.finish(grace, hurry)
        await self.close()


async def serve_stdio(bridge: Bridge) -> None:
    """One client on our own stdin and stdout, through the same handler as a socket's: the
    same bounds, the same errors. The end of stdin ends the input; the answers on their way
    still go out. SIGTERM or SIGINT ends the input too."""
    loop = asyncio.get_running_loop()
    reader = await async_get_stdin()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    handler = BridgeEventHandler(reader, writer, bridge, info_event(bridge), wait_at_end=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, reader.feed_eof)
    try:
        await handler.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)
