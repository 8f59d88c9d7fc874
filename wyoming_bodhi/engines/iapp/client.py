"""An iApp ASRx session over the shared WebSocket transport: no protocol decisions here."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Self

import aiohttp

from ..base import PROTOCOL, EngineError, Phrase
from ..websocket import Closed, WebSocketSession, open_websocket
from .errors import ERRORS
from .protocol import END_MESSAGE, IappDecoder


class IappStream(WebSocketSession):
    """One streaming session; create it with :meth:`connect`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(ws, ERRORS)
        self._decoder = IappDecoder()
        self._end_sent = False

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        api_key: str,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Self:
        """Open the WebSocket, the key in the ``apikey`` header; raises :class:`EngineError`."""
        ws = await open_websocket(
            session, url, {"apikey": api_key}, ERRORS, timeout=timeout, ssl_context=ssl_context
        )
        return cls(ws)

    @property
    def ended(self) -> bool:
        return self._decoder.ended

    async def send_end(self) -> None:
        await self.send_text(END_MESSAGE, "the end of the audio")
        self._end_sent = True

    async def phrases(self) -> AsyncIterator[Phrase]:
        """Every result as phrases, up to END; then the client closes, as iApp expects."""
        decoder = self._decoder
        while not decoder.ended:
            message = await self.next_message()
            if isinstance(message, Closed):
                if not (self._end_sent and message.clean):
                    raise ERRORS.lost(message.describe())
                # Closing cleanly after the end was asked for is one of the ways iApp ends;
                # a dropped connection is not.
                for phrase in decoder.finish():
                    yield phrase
                return
            try:
                phrases = decoder.feed(message)
            except EngineError as err:
                if err.kind != PROTOCOL:
                    await self.close()
                    raise
                await self.skipped(str(err))
                continue
            for phrase in phrases:
                yield phrase
        await self.close()
