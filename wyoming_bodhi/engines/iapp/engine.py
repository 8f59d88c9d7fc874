"""iApp ASRx as an engine: its declarations, its model, and its sessions."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import aiohttp

from ..base import AudioSpec, Capabilities, Model, Request, fingerprint
from .catalog import MODEL, speaks
from .client import IappStream
from .protocol import SAMPLE_RATE

AUDIO = AudioSpec(
    rate=SAMPLE_RATE,
    # iApp documents no frame rule; its sample client sends 1024 bytes (32 ms). Up to Bodhi's
    # 500 ms, so one chunk_ms setting serves both.
    frame_ms=(20, 500),
    # No idle timeout is documented, and the sample clients disable ping timeouts: no
    # keepalive silence (which would be billed).
    keepalive_after=None,
)

# No hotwords or language identification, no confidence; a sentence completes only when the
# next begins, or at the end, so it cannot end a command on silence by itself.
CAPABILITIES = Capabilities(partials=True)


class IappEngine:
    """iApp ASRx (iApp Technology): real-time ASR for Thai."""

    name = "iapp"
    title = "iApp ASRx"
    vendor = "iApp Technology"
    vendor_url = "https://iapp.co.th"
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

    async def connect(self, request: Request, *, timeout: float) -> IappStream:
        return await IappStream.connect(
            self._http, self.url, self._api_key, timeout=timeout, ssl_context=self._ssl_context
        )

    def describe_credentials(self) -> str:
        return f"api key {fingerprint(self._api_key)}"

    def __repr__(self) -> str:
        return f"IappEngine(url={self.url!r})"
