"""The aiohttp WebSocket transport around :mod:`.protocol`: no protocol decisions here.

One :class:`BodhiStream` is one Bodhi session: connect (headers, config), audio frames,
eof, results until end of stream. Every failure surfaces as a :class:`BodhiError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp

from .errors import (
    BodhiConnectionError,
    BodhiConnectionLostError,
    BodhiError,
    BodhiProtocolError,
    BodhiTimeoutError,
    BodhiTLSError,
    error_for_status,
)
from .protocol import EOF_MESSAGE, BodhiConfig, BodhiErrorMessage, BodhiResult, parse_message

_LOGGER = logging.getLogger(__name__)

LEGACY_URL = "wss://bodhi.navana.ai"
"""The documented platform: authenticates with ``x-api-key`` and ``x-customer-id``."""

DEFAULT_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class BodhiCredentials:
    """The API key and (legacy platform) customer id. Never printed: see ``__repr__``."""

    api_key: str = field(repr=False)
    customer_id: str | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        """Upgrade headers: the legacy pair when there is a customer id, else the key alone.

        The newer platform authenticates by key only; its SDK sends it twice, as
        ``x-api-key`` and as a bearer token, and so do we.
        """
        if self.customer_id:
            return {"x-api-key": self.api_key, "x-customer-id": self.customer_id}
        return {"x-api-key": self.api_key, "Authorization": f"Bearer {self.api_key}"}

    @property
    def fingerprint(self) -> str:
        """Enough to tell two keys apart in a log, not enough to use one."""
        return f"…{self.api_key[-4:]}" if len(self.api_key) >= 12 else "…"

    def describe(self) -> str:
        """For a log line: which credentials are set, never what they are."""
        return f"api key {self.fingerprint}, customer id {'set' if self.customer_id else 'not set'}"

    def __repr__(self) -> str:
        customer = "set" if self.customer_id else "unset"
        return f"BodhiCredentials(api_key={self.fingerprint}, customer_id={customer})"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


class BodhiStream:
    """One streaming session; create it with :meth:`connect`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, url: str) -> None:
        self._ws = ws
        self._url = url
        self._eos = False
        self.call_id: str | None = None
        self.skipped_messages = 0
        """Messages that were not results, skipped (the first one is logged)."""

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        credentials: BodhiCredentials,
        config: BodhiConfig,
        *,
        timeout: float = DEFAULT_CONNECT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Self:
        """Open the WebSocket and send the config; raises a :class:`BodhiError`.

        ``timeout`` bounds name resolution, TCP, TLS and the upgrade together. TLS
        certificates are always verified (``ssl_context`` only adds trust, e.g. a private CA).
        """
        headers = credentials.headers()
        if extra_headers:
            headers.update(extra_headers)
        host = _host(url)
        try:
            async with asyncio.timeout(timeout):
                ws = await session.ws_connect(
                    url,
                    headers=headers,
                    ssl=ssl_context if ssl_context is not None else True,
                    autoclose=False,
                    # Bodhi documents no ping/pong; never let a missed pong kill a session.
                    heartbeat=None,
                    max_msg_size=1 << 20,
                    # Closing must be quick when a Wyoming client goes away mid-utterance.
                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                )
        except aiohttp.WSServerHandshakeError as err:
            # Raised "from None" throughout: aiohttp's exceptions carry the request,
            # headers included, and a chained traceback must never show the key.
            raise error_for_status(err.status) from None
        except TimeoutError:
            raise BodhiTimeoutError(
                f"Bodhi at {host} did not accept the connection within {timeout:g} s"
            ) from None
        except aiohttp.ClientConnectorCertificateError as err:
            raise BodhiTLSError(
                f"TLS certificate verification failed for {host}: "
                f"{err.certificate_error.__class__.__name__}; the server's certificate is not "
                "trusted (give its CA with --bodhi-ca if it is yours)"
            ) from None
        except aiohttp.ClientSSLError as err:
            raise BodhiTLSError(
                f"TLS handshake with {host} failed: {err.__class__.__name__}"
            ) from None
        except aiohttp.ClientConnectorDNSError:
            raise BodhiConnectionError(
                f"cannot resolve the Bodhi host {host}: check --bodhi-url and the network"
            ) from None
        except aiohttp.ClientConnectorError as err:
            reason = err.os_error.strerror or err.os_error.__class__.__name__
            raise BodhiConnectionError(f"cannot connect to Bodhi at {host}: {reason}") from None
        except (aiohttp.ClientError, OSError) as err:
            raise BodhiConnectionError(
                f"cannot connect to Bodhi at {host}: {err.__class__.__name__}"
            ) from None

        stream = cls(ws, url)
        try:
            await ws.send_str(config.message())
        except (aiohttp.ClientError, ConnectionError) as err:
            await stream.close()
            raise BodhiConnectionLostError(
                f"while sending the config: {err.__class__.__name__}"
            ) from None
        return stream

    @property
    def closed(self) -> bool:
        return self._ws.closed

    @property
    def ended(self) -> bool:
        """True once Bodhi has sent its end-of-stream result."""
        return self._eos

    async def send_audio(self, frame: bytes) -> None:
        """Send one binary frame of 8 kHz s16le mono PCM."""
        try:
            await self._ws.send_bytes(frame)
        except (aiohttp.ClientError, ConnectionError) as err:
            raise BodhiConnectionLostError(
                f"while sending audio: {err.__class__.__name__}"
            ) from None

    async def send_eof(self) -> None:
        try:
            await self._ws.send_str(EOF_MESSAGE)
        except (aiohttp.ClientError, ConnectionError) as err:
            raise BodhiConnectionLostError(f"while sending eof: {err.__class__.__name__}") from None

    async def receive(self) -> BodhiResult | None:
        """The next result, or None after end of stream. Raises :class:`BodhiError`.

        Malformed messages are skipped: one bad frame from the cloud should not cost the user
        the whole command. The first is logged; a flood of them is counted, not logged.
        """
        while not self._eos:
            message = await self._ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                try:
                    parsed = parse_message(message.data)
                except BodhiProtocolError as err:
                    self._skipped(str(err))
                    # Messages already received are returned without waiting: a flood of
                    # garbage must not hold the event loop for everyone else.
                    await asyncio.sleep(0)
                    continue
                if isinstance(parsed, BodhiErrorMessage):
                    await self.close()
                    raise parsed.to_exception()
                if self.call_id is None:
                    self.call_id = parsed.call_id
                self._eos = parsed.eos
                return parsed
            if message.type is aiohttp.WSMsgType.BINARY:
                self._skipped("an unexpected binary message")
                continue
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                code = self._ws.close_code
                reason = message.extra if isinstance(message.extra, str) and message.extra else ""
                await self.close()
                detail = f"code {code}" if code is not None else "no close code"
                raise BodhiConnectionLostError(f"{detail}: {reason}" if reason else detail)
            if message.type is aiohttp.WSMsgType.ERROR:
                await self.close()
                raise BodhiConnectionLostError(f"WebSocket error {message.data.__class__.__name__}")
        return None

    def _skipped(self, what: str) -> None:
        self.skipped_messages += 1
        level = logging.WARNING if self.skipped_messages == 1 else logging.DEBUG
        _LOGGER.log(level, "Skipping a message from Bodhi: %s", what)

    async def results(self) -> AsyncIterator[BodhiResult]:
        """Every result up to and including the end-of-stream one."""
        while (result := await self.receive()) is not None:
            yield result

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


__all__ = [
    "LEGACY_URL",
    "BodhiCredentials",
    "BodhiError",
    "BodhiStream",
]
