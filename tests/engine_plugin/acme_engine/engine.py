"""Step 2, the session and the engine: Acme over the shared WebSocket transport."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Final

import aiohttp

from wyoming_bodhi.engines.base import (
    PROTOCOL,
    AudioSpec,
    Capabilities,
    EngineError,
    Model,
    Phrase,
    Request,
    fingerprint,
)
from wyoming_bodhi.engines.websocket import Closed, WebSocketSession, open_websocket

from .protocol import END_MESSAGE, ERRORS, SAMPLE_RATE, AcmeDecoder, headers

MODEL: Final = Model(
    name="acme-sw",
    engine="acme",
    languages=("sw", "sw-KE"),
    description="Swahili, real-time (Acme)",
    version="1",
)
AUDIO: Final = AudioSpec(rate=SAMPLE_RATE, frame_ms=(20, 500))
# Phrases end only when the audio does: it cannot end a voice command by itself.
CAPABILITIES: Final = Capabilities(partials=True, ends_phrases=False)


def speaks(tag: str) -> bool:
    """``sw``, ``sw-KE``, ``sw_TZ`` → True."""
    return tag.strip().replace("_", "-").lower().split("-", 1)[0] == "sw"


class AcmeStream(WebSocketSession):
    """One session: frames out, phrases in."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(ws, ERRORS)
        self._decoder = AcmeDecoder()

    async def send_end(self) -> None:
        await self.send_text(END_MESSAGE, "the end of the audio")

    async def phrases(self) -> AsyncIterator[Phrase]:
        while not self._decoder.ended:
            message = await self.next_message()
            if isinstance(message, Closed):
                raise ERRORS.lost(message.describe())
            try:
                phrases = self._decoder.feed(message)
            except EngineError as err:
                if err.kind != PROTOCOL:
                    await self.close()
                    raise
                await self.skipped(str(err))
                continue
            for phrase in phrases:
                yield phrase
        await self.close()


class AcmeEngine:
    """Acme: Swahili."""

    name = "acme"
    title = "Acme"
    vendor = "Acme Corp"
    vendor_url = "https://acme.example"
    audio = AUDIO
    capabilities = CAPABILITIES
    models: Sequence[Model] = (MODEL,)

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        api_key: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._http = http
        self.url = url
        self._api_key = api_key
        self._ssl_context = ssl_context

    def model_for_language(self, tag: str) -> Model | None:
        return MODEL if speaks(tag) else None

    async def connect(self, request: Request, *, timeout: float) -> AcmeStream:
        ws = await open_websocket(
            self._http,
            self.url,
            headers(self._api_key),
            ERRORS,
            timeout=timeout,
            ssl_context=self._ssl_context,
        )
        return AcmeStream(ws)

    def describe_credentials(self) -> str:
        return f"api key {fingerprint(self._api_key)}"

    def __repr__(self) -> str:
        return f"AcmeEngine(url={self.url!r})"
