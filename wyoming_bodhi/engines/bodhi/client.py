"""A Bodhi session over the shared WebSocket transport: no protocol decisions here.

One :class:`BodhiStream` is one Bodhi session: connect (headers, config), audio frames,
eof, results until end of stream. Every failure surfaces as a :class:`BodhiError`.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Self

import aiohttp

from ..base import Phrase, fingerprint
from ..websocket import Closed, WebSocketSession, open_websocket
from .errors import ERRORS, BodhiConnectionLostError, BodhiError, BodhiProtocolError
from .protocol import (
    EOF_MESSAGE,
    BodhiConfig,
    BodhiErrorMessage,
    BodhiResult,
    parse_message,
    phrases_of,
)

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

    def transcribe_headers(self) -> dict[str, str]:
        """For the non-streaming API: ``x-api-key``, and ``x-customer-id`` when there is one
        (no bearer token: only the newer platform's streaming SDK sends one)."""
        headers = {"x-api-key": self.api_key}
        if self.customer_id:
            headers["x-customer-id"] = self.customer_id
        return headers

    @property
    def fingerprint(self) -> str:
        """Enough to tell two keys apart in a log, not enough to use one."""
        return fingerprint(self.api_key)

    def describe(self) -> str:
        """For a log line: which credentials are set, never what they are."""
        return f"api key {self.fingerprint}, customer id {'set' if self.customer_id else 'not set'}"

    def __repr__(self) -> str:
        customer = "set" if self.customer_id else "unset"
        return f"BodhiCredentials(api_key={self.fingerprint}, customer_id={customer})"


class BodhiStream(WebSocketSession):
    """One streaming session; create it with :meth:`connect`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(ws, ERRORS)
        self._eos = False
        self.call_id: str | None = None

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
        ws = await open_websocket(
            session, url, headers, ERRORS, timeout=timeout, ssl_context=ssl_context
        )
        stream = cls(ws)
        try:
            await stream.send_text(config.message(), "the config")
        except BodhiError:
            await stream.close()
            raise
        return stream

    @property
    def ended(self) -> bool:
        """True once Bodhi has sent its end-of-stream result."""
        return self._eos

    async def send_eof(self) -> None:
        await self.send_text(EOF_MESSAGE, "eof")

    send_end = send_eof

    async def receive(self) -> BodhiResult | None:
        """The next result, or None after end of stream. Raises :class:`BodhiError`.

        Malformed messages are skipped: one bad frame from the cloud should not cost the user
        the whole command.
        """
        while not self._eos:
            message = await self.next_message()
            if isinstance(message, Closed):
                # A close before end of stream is a failure, whatever its code.
                raise BodhiConnectionLostError(message.describe())
            try:
                parsed = parse_message(message)
            except BodhiProtocolError as err:
                await self.skipped(str(err))
                continue
            if isinstance(parsed, BodhiErrorMessage):
                await self.close()
                raise parsed.to_exception()
            if self.call_id is None:
                self.call_id = parsed.call_id
            self._eos = parsed.eos
            return parsed
        return None

    async def results(self) -> AsyncIterator[BodhiResult]:
        """Every result up to and including the end-of-stream one."""
        while (result := await self.receive()) is not None:
            yield result

    async def phrases(self) -> AsyncIterator[Phrase]:
        """The results as the pipeline's phrases, ending with END."""
        async for result in self.results():
            for phrase in phrases_of(result):
                yield phrase


__all__ = [
    "LEGACY_URL",
    "BodhiCredentials",
    "BodhiError",
    "BodhiStream",
]
