"""The aiohttp WebSocket transport engines share: no protocol decisions here.

Connecting (headers, a deadline over name resolution, TCP, TLS and the upgrade, certificates
always verified), sending frames, and receiving text messages, with every way that can fail
turned into the engine's own :class:`~.base.EngineError` through its :class:`~.errors.ErrorTable`.
aiohttp's exceptions are re-raised ``from None`` throughout: they carry the request, headers
included, and a chained traceback must never show a key.

The HTTP client every engine is given (:func:`engine_http`) blanks the declared secrets out of
what a WebSocket server sends as it arrives: an engine that cuts a server's text short (ours,
or a plugin's in its own way) can then never leave a piece of a key it echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import aiohttp

from ..redaction import Secrets
from ..text import printable
from .errors import ErrorTable

_LOGGER = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20
CLOSE_TIMEOUT = 1.0
"""Closing must be quick when a client goes away mid-utterance."""


CLEAN_CLOSE_CODES = frozenset({1000, 1001})
"""Normal closure and going away: a server that meant to close."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The server closed the WebSocket (or it broke)."""

    code: int | None
    reason: str = ""

    @property
    def clean(self) -> bool:
        """The server closed it with a close frame saying all is well (not a dropped
        connection, whose code is 1006 or none)."""
        return self.code in CLEAN_CLOSE_CODES

    def describe(self) -> str:
        detail = f"code {self.code}" if self.code is not None else "no close code"
        return f"{detail}: {self.reason}" if self.reason else detail


class BlankingWebSocket(aiohttp.ClientWebSocketResponse):
    """A client WebSocket whose text messages and close reason come with :attr:`secrets`
    blanked out, before anyone reads them."""

    secrets: ClassVar[Secrets] = Secrets()

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        message = await super().receive(timeout)
        secrets = self.secrets
        if not secrets:
            return message
        if message.type is aiohttp.WSMsgType.TEXT:
            data = message.data
            return message._replace(
                data=secrets.text(data) if isinstance(data, str) else secrets.data(data)
            )
        if message.type is aiohttp.WSMsgType.CLOSE and message.extra:
            return message._replace(extra=secrets.text(message.extra))
        return message


def engine_http(secrets: Iterable[str | None], **options: Any) -> aiohttp.ClientSession:
    """The HTTP client the engines are built with (``EngineContext.http``): what a WebSocket
    server says through it has ``secrets`` blanked out as it arrives. ``options`` are
    :class:`aiohttp.ClientSession`'s."""
    blanking = type("BlankingWebSocket", (BlankingWebSocket,), {"secrets": Secrets(secrets)})
    return aiohttp.ClientSession(ws_response_class=blanking, **options)


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


async def open_websocket(
    http: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    failures: ErrorTable,
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> aiohttp.ClientWebSocketResponse:
    """The upgraded WebSocket; raises the engine's error. ``ssl_context`` only adds trust (a
    private CA): certificates are always verified."""
    with connection_failures(url, failures):
        try:
            async with asyncio.timeout(timeout):
                return await http.ws_connect(
                    url,
                    headers=dict(headers),
                    ssl=ssl_context if ssl_context is not None else True,
                    autoclose=False,
                    # No engine documents ping/pong; never let a missed pong kill a session.
                    heartbeat=None,
                    max_msg_size=MAX_MESSAGE_BYTES,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
                )
        except aiohttp.WSServerHandshakeError as err:
            raise failures.refused(err.status) from None
        except TimeoutError:
            raise failures.timeout(
                f"{failures.title} at {host_of(url)} did not accept the connection within "
                f"{timeout:g} s"
            ) from None


@contextlib.contextmanager
def connection_failures(url: str, failures: ErrorTable) -> Iterator[None]:
    """aiohttp's ways of failing to connect (TLS, name resolution, refused, …), raised as the
    engine's errors. Timeouts are the caller's to name: it knows what it waited for."""
    host = host_of(url)
    title = failures.title
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as err:
        raise failures.tls(
            f"TLS certificate verification failed for {host}: "
            f"{err.certificate_error.__class__.__name__}; the server's certificate is not "
            "trusted (give its CA with --ca-file if it is yours)"
        ) from None
    except aiohttp.ClientSSLError as err:
        raise failures.tls(f"TLS handshake with {host} failed: {err.__class__.__name__}") from None
    except aiohttp.ClientConnectorDNSError:
        raise failures.unreachable(
            f"cannot resolve the {title} host {host}: check {failures.url_flag} and the network"
        ) from None
    except aiohttp.ClientConnectorError as err:
        reason = err.os_error.strerror or err.os_error.__class__.__name__
        raise failures.unreachable(f"cannot connect to {title} at {host}: {reason}") from None
    except (aiohttp.ClientError, OSError) as err:
        raise failures.unreachable(
            f"cannot connect to {title} at {host}: {err.__class__.__name__}"
        ) from None


class WebSocketSession:
    """Frames out, text messages in; the engine's session classes build on it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, failures: ErrorTable) -> None:
        self._ws = ws
        self._failures = failures
        self.skipped_messages = 0
        """Messages that were not results, skipped (the first one is logged)."""

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def send_audio(self, frame: bytes) -> None:
        """Send one binary frame of the engine's audio."""
        try:
            await self._ws.send_bytes(frame)
        except (aiohttp.ClientError, ConnectionError) as err:
            raise self._failures.lost(f"while sending audio: {err.__class__.__name__}") from None

    async def send_text(self, text: str, what: str) -> None:
        try:
            await self._ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError) as err:
            raise self._failures.lost(f"while sending {what}: {err.__class__.__name__}") from None

    async def next_message(self) -> str | Closed:
        """The next text message, or how the connection closed. Binary messages are skipped."""
        while True:
            message = await self._ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                return str(message.data)
            if message.type is aiohttp.WSMsgType.BINARY:
                await self.skipped("an unexpected binary message")
                continue
            if message.type is aiohttp.WSMsgType.ERROR:
                await self.close()
                return Closed(None, f"WebSocket error {message.data.__class__.__name__}")
            # CLOSE, CLOSING or CLOSED.
            code = self._ws.close_code
            reason = printable(message.extra, 120) if isinstance(message.extra, str) else ""
            await self.close()
            return Closed(code, reason)

    async def skipped(self, what: str) -> None:
        """Count a message that was not a result; log only the first of a session (the
        pipeline says how many there were). Yields to the event loop: messages already
        received are returned without waiting, and a flood of garbage must not hold the loop
        for everyone else."""
        self.skipped_messages += 1
        if self.skipped_messages == 1:
            _LOGGER.warning("Skipping a message from %s: %s", self._failures.title, what)
        await asyncio.sleep(0)

    async def close(self) -> None:
        if not self._ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                await self._ws.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
