"""Bodhi as an engine: its declarations, its models, and its sessions."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

import aiohttp

from ..base import AudioSpec, Capabilities, HotwordPolicy, Model, Request
from .catalog import DEFAULT_MODEL, Catalog
from .client import BodhiCredentials, BodhiStream
from .protocol import SAMPLE_RATE, BodhiConfig, TranscribeRequest, transcribe_url
from .rest import transcribe_file, wav_file

_LOGGER = logging.getLogger(__name__)

AUDIO = AudioSpec(
    rate=SAMPLE_RATE,
    # Bodhi's documented contract: fixed frames of 50 to 500 ms, streamed steadily.
    frame_ms=(50, 500),
    # Bodhi closes a session after 15 s without a client message and only finalises a phrase
    # on received audio. When the audio pauses, keep it alive the way the vendor's client
    # does: first more silence than the longest endpoint (1.2 s), so the open phrase is
    # finalised rather than welded to what follows, then short silences.
    keepalive_after=8.0,
    keepalive_interval=5.0,
    keepalive_flush=1.5,
)

VAD_ENDPOINT_SILENCE: dict[str, float] = {"aggressive": 0.44, "relaxed": 1.2}
"""A client's ``vad_sensitivity``, as the trailing silence that ends a phrase: the ends of
Bodhi's accepted range. Aggressive answers fastest, relaxed lets people pause; otherwise the
``endpoint_silence`` setting (unset: Bodhi's own 0.44)."""

HOTWORDS = HotwordPolicy(
    # An unscored hotword is Bodhi's default 1.5; its useful range is 1.0-3.0.
    default_score=1.5,
    # The names this request asks for: above the default, inside the useful range.
    request_names=2.5,
    # Home Assistant's names: likely, but not what this request asked for.
    home_names=2.0,
    # Bodhi documents no upper bound; the server's sanity bound.
    max_score=10.0,
    # Bodhi documents no limit, but each phrase is sent in the config message of every
    # request and biases every decoding step; past a hundred or so the bias is spread too
    # thin to help, and the config message grows with every entity a large home has.
    max_count=100,
    max_chars=64,
)

CAPABILITIES = Capabilities(
    hotwords=HOTWORDS,
    ends_phrases=True,
    language_id=True,
    partials=True,
    confidence=True,
    whole_file=True,
)


class BodhiEngine:
    """Bodhi (Navana): real-time ASR for Indian languages."""

    name = "bodhi"
    title = "Bodhi"
    vendor = "Navana"
    vendor_url = "https://navana.ai"
    audio = AUDIO
    capabilities = CAPABILITIES

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        credentials: BodhiCredentials,
        *,
        catalog: Catalog,
        default_model: str = DEFAULT_MODEL,
        domain: str = "general",
        parse_number: bool = False,
        language_id: bool = False,
        transliterate: bool = False,
        endpoint_silence: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._http = http
        self.url = url
        self.credentials = credentials
        self.catalog = catalog
        # The configured default, when it is one of Bodhi's; it wins for its own language.
        self._default = catalog.default(default_model)
        self._domain = domain
        self._parse_number = parse_number
        self._language_id = language_id
        self._transliterate = transliterate
        self._endpoint_silence = endpoint_silence
        self._ssl_context = ssl_context
        self.models: Sequence[Model] = [model.as_model() for model in catalog]
        self._models = {model.name: model for model in self.models}

    def model_for_language(self, tag: str) -> Model | None:
        model = self.catalog.for_language(tag, self._domain, self._default)
        return None if model is None else self._models[model.name]

    async def connect(self, request: Request, *, timeout: float) -> BodhiStream:
        config = BodhiConfig(
            model=request.model.name,
            hotwords=request.hotwords,
            endpoint_silence_duration=VAD_ENDPOINT_SILENCE.get(
                request.vad_sensitivity or "", self._endpoint_silence
            ),
            # Partials are ten messages a second to receive and parse; ask only when used.
            exclude_partial=None if request.partials else True,
            # Flags Bodhi defaults to false are left out unless asked for.
            parse_number=self._parse_number or None,
            at_start_lid=self._language_id or None,
            transliterate=self._transliterate or None,
        )
        _LOGGER.debug(
            "Connecting to Bodhi for %s (transaction %s, %d hotword(s))",
            config.model,
            config.transaction_id,
            len(config.hotwords),
        )
        return await BodhiStream.connect(
            self._http,
            self.url,
            self.credentials,
            config,
            timeout=timeout,
            ssl_context=self._ssl_context,
        )

    async def recognize(
        self, request: Request, pcm: bytes, *, connect_timeout: float, timeout: float
    ) -> str:
        """The whole recording through Bodhi's non-streaming API, as a WAV file."""
        transcribe_request = TranscribeRequest(
            model=request.model.name,
            # Flags Bodhi defaults to false are left out unless asked for, as in a stream.
            parse_number=self._parse_number or None,
            hotwords=request.hotwords,
        )
        transcription = await transcribe_file(
            self._http,
            transcribe_url(self.url),
            self.credentials,
            transcribe_request,
            wav_file(pcm, self.audio.rate),
            connect_timeout=connect_timeout,
            timeout=timeout,
            ssl_context=self._ssl_context,
        )
        return transcription.text

    def describe_credentials(self) -> str:
        return self.credentials.describe()
