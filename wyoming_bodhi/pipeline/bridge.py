"""What every connection shares: settings, catalogue, Info, the HTTP session, credentials."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from wyoming.asr import Transcribe, VadSensitivity
from wyoming.event import Event

from ..engines.bodhi.catalog import BodhiModel, Catalog, UnknownModelError
from ..engines.bodhi.client import BodhiCredentials
from ..engines.bodhi.protocol import BodhiConfig
from ..server.info import PROGRAM_NAME, build_info
from ..settings import Settings
from .hotwords import merge_hotwords

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    model: BodhiModel
    language: str
    """The language to report on the transcript: the client's tag, else the model's."""


# Home Assistant's vad_sensitivity, as Bodhi's trailing silence that ends a phrase. The
# endpoints of Bodhi's accepted range: aggressive answers fastest, relaxed lets people pause.
VAD_ENDPOINT_SILENCE: dict[str, float] = {
    VadSensitivity.AGGRESSIVE.value: 0.44,
    VadSensitivity.RELAXED.value: 1.2,
}


@dataclass(frozen=True, slots=True)
class Request:
    """Everything one utterance needs to know about what was asked."""

    choice: ModelChoice
    config: BodhiConfig


def _no_names() -> Sequence[str]:
    return ()


@dataclass
class Bridge:
    settings: Settings
    http: aiohttp.ClientSession
    hass_names: Callable[[], Sequence[str]] = _no_names
    """The latest Home Assistant names (cached; never waits)."""
    active_utterances: int = 0
    """Utterances in flight, across every connection (for max_sessions)."""
    shutting_down: bool = False
    catalog: Catalog = field(init=False)
    default_model: BodhiModel = field(init=False)
    credentials: BodhiCredentials = field(init=False, repr=False)
    info_event: Event = field(init=False)
    ssl_context: ssl.SSLContext | None = field(init=False, default=None)
    """Adds the user's CA (--bodhi-ca) to the system's; verification is never off."""

    def __post_init__(self) -> None:
        self.catalog = self.settings.catalog
        self.default_model = self.catalog.get(self.settings.model)
        api_key = self.settings.api_key
        assert api_key is not None, "validate() refuses settings without a key"
        self.credentials = BodhiCredentials(api_key, self.settings.customer_id)
        # Built once: Home Assistant waits about a second for Info, so it must never wait
        # on anything.
        self.info_event = build_info(self.catalog, self.settings.endpointing).event()
        if self.settings.bodhi_ca:
            self.ssl_context = ssl.create_default_context()
            self.ssl_context.load_verify_locations(cafile=self.settings.bodhi_ca)

    def choose_model(self, transcribe: Transcribe | None) -> ModelChoice:
        """``transcribe.name`` if it names a model, else the language's model, else the default.

        Raises :class:`UnknownModelError` (listing the valid names) for an explicit name that
        is not in the catalogue.
        """
        name = transcribe.name if transcribe else None
        language = transcribe.language if transcribe else None
        # Some clients put the program's name where the model's goes.
        if name and name != PROGRAM_NAME:
            model = self.catalog.get(name)
            return ModelChoice(model, language or model.primary_language)
        if language:
            spoken = self.catalog.for_language(language, self.settings.domain, self.default_model)
            if spoken is not None:
                return ModelChoice(spoken, language)
            _LOGGER.warning(
                "No Bodhi model for language %r; using the default model %s",
                language,
                self.default_model.name,
            )
            return ModelChoice(self.default_model, language)
        return ModelChoice(self.default_model, self.default_model.primary_language)

    def request_for(self, transcribe: Transcribe | None) -> Request:
        """The model and Bodhi config for a request; raises :class:`UnknownModelError`."""
        settings = self.settings
        choice = self.choose_model(transcribe)
        silence = settings.endpoint_silence
        hotwords = settings.hotwords
        if transcribe is not None:
            vad = transcribe.vad_sensitivity
            vad_name = vad.value if isinstance(vad, VadSensitivity) else vad
            silence = VAD_ENDPOINT_SILENCE.get(str(vad_name), silence)
        hotwords = merge_hotwords(
            names=(transcribe.transcript_names or ()) if transcribe else (),
            static=settings.hotwords,
            hass_names=self.hass_names(),
            terms=(transcribe.transcript_terms or ()) if transcribe else (),
        )
        config = BodhiConfig(
            model=choice.model.name,
            hotwords=hotwords,
            endpoint_silence_duration=silence,
            # Partials are only read by endpointing (has anything been said yet?) and the
            # debug log; otherwise they are ten messages a second to receive and parse.
            exclude_partial=None if settings.endpointing or settings.debug else True,
            # Flags Bodhi defaults to false are left out unless asked for.
            parse_number=settings.parse_number or None,
            at_start_lid=settings.language_id or None,
            transliterate=settings.transliterate or None,
        )
        return Request(choice, config)


__all__ = ["Bridge", "ModelChoice", "Request", "UnknownModelError"]
