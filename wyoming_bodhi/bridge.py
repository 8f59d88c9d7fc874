"""What every connection shares: settings, catalogue, Info, the HTTP session, credentials."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp
from wyoming.asr import Transcribe
from wyoming.event import Event

from .bodhi.client import BodhiCredentials
from .catalog import BodhiModel, Catalog, UnknownModelError
from .info import PROGRAM_NAME, build_info
from .settings import Settings

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    model: BodhiModel
    language: str
    """The language to report on the transcript: the client's tag, else the model's."""


@dataclass
class Bridge:
    settings: Settings
    http: aiohttp.ClientSession
    catalog: Catalog = field(init=False)
    default_model: BodhiModel = field(init=False)
    credentials: BodhiCredentials = field(init=False, repr=False)
    info_event: Event = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = self.settings.catalog
        self.default_model = self.catalog.get(self.settings.model)
        self.credentials = BodhiCredentials(self.settings.api_key, self.settings.customer_id)
        # Built once: Home Assistant waits about a second for Info, so it must never wait
        # on anything.
        self.info_event = build_info(self.catalog).event()

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
                "No Bodhi model for language '%s'; using the default model %s",
                language,
                self.default_model.name,
            )
            return ModelChoice(self.default_model, language)
        return ModelChoice(self.default_model, self.default_model.primary_language)


__all__ = ["Bridge", "ModelChoice", "UnknownModelError"]
