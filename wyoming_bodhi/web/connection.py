"""One HTTP connection of a listener (:mod:`.server`): how it is counted, turned away, and
what aiohttp says about it.

A connection served is aiohttp's protocol wrapped in :class:`Counted`, which tells its
listener when it is gone, closes it unless its first request's head arrives in time, and can
be aborted late in a stop. One not served is :class:`TurnedAway`: told why (403, 503) without
aiohttp. What aiohttp logs goes through :class:`ServerLog`, in words that cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any, cast

from aiohttp.http import HttpProcessingError

from ..logs import Throttled
from ..text import printable

_LOGGER = logging.getLogger("wyoming_bodhi.web.server")
"""The listeners' logger: what is said of a connection is said of its listener."""

TURN_AWAY_LINGER = 1.0
"""Seconds a turned-away connection may take to read its 503 and hang up. What it sent is
read meanwhile: closing with it unread would reset the connection before the answer."""


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """What aiohttp says about one listener's connections (its ``logger``), in words that
    cannot flood the log.

    aiohttp logs a request it cannot read (a byte not allowed in a path, a line over 8190
    bytes, a bad chunk size, garbage after a request) at ERROR with a traceback, every time,
    before the application and its checks (``http_allow``, Host, Origin) see anything. That
    is the client's doing, and the client has its 400: one warning line per interval with a
    count, no traceback, as the Wyoming side treats a bad event. What a handler of ours
    raises is a bug of ours: ERROR with its traceback, at most once per interval too.
    aiohttp's own debug lines stay debug lines.
    """

    def __init__(self, noun: str, warnings: Throttled) -> None:
        super().__init__(logging.getLogger("aiohttp.server"))
        self._noun = noun
        self._warnings = warnings

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level < logging.WARNING:
            self.logger.log(level, msg, *args, **kwargs)
            return
        error = kwargs.get("exc_info")
        if error is True:
            error = sys.exc_info()[1]
        elif isinstance(error, tuple):
            error = error[1]
        said = printable(str(msg) % args if args else str(msg), 200)
        if isinstance(error, HttpProcessingError):
            self._warnings.warning(
                _LOGGER,
                "Bad HTTP request to the %s (%s): %s; answered %d",
                self._noun,
                said,
                printable(error.message, 200),
                error.code,
                key=self._noun,
            )
        elif isinstance(error, BaseException):
            self._warnings.log(
                _LOGGER,
                logging.ERROR,
                "Internal error serving the %s (%s)",
                self._noun,
                said,
                key=self._noun,
                exc_info=error,
            )
        else:
            self._warnings.log(_LOGGER, level, "%s (on the %s)", said, self._noun, key=self._noun)


class Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, which says when the connection is gone, and
    closes it unless its first request's head arrives within ``head_timeout`` seconds."""

    def __init__(
        self,
        inner: asyncio.Protocol,
        released: Callable[[Counted], None],
        head_timeout: float,
    ) -> None:
        self._inner = inner
        self._released: Callable[[Counted], None] | None = released
        self._transport: asyncio.BaseTransport | None = None
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._tail = b""
        """The last bytes of the head so far, for an end that arrives split."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._head_timer = asyncio.get_running_loop().call_later(
            self._head_timeout, self._too_slow, transport
        )
        self._inner.connection_made(transport)

    def abort(self) -> None:
        """Close at once, unsent data dropped: aiohttp's handler then sees the connection
        lost (a WebSocket's close stops waiting, a request's body ends) and returns."""
        if self._transport is not None:
            # uvloop's transports are not asyncio.Transport subclasses, but they are ones.
            cast(asyncio.Transport, self._transport).abort()

    def _too_slow(self, transport: asyncio.BaseTransport) -> None:
        _LOGGER.debug(
            "Closing an HTTP connection from %s: no request within %g s",
            transport.get_extra_info("peername"),
            self._head_timeout,
        )
        transport.close()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            # The head ends at the first empty line: the first request's starts the stream.
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:
                self._head_timer.cancel()
                self._head_timer = None
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        try:
            self._inner.connection_lost(exc)
        finally:
            self._transport = None
            if self._released is not None:
                self._released(self)
                self._released = None


class TurnedAway(asyncio.Protocol):
    """A connection not served: told why (403, 503), then closed once it hangs up or
    lingers."""

    def __init__(self, status: str, text: str, done: Callable[[], None]) -> None:
        self._status = status
        self._text = text
        self._done: Callable[[], None] | None = done
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are ones.
        transport = cast(asyncio.Transport, transport)
        body = self._text.encode()
        retry = "Retry-After: 5\r\n" if self._status.startswith("503") else ""
        head = (
            f"HTTP/1.1 {self._status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{retry}Connection: close\r\n\r\n"
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
