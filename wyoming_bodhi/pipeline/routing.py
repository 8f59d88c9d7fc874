"""Which engine and model serve a request: a pure choice over the configured engines."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from wyoming.asr import Transcribe

from ..engines.base import Engine, Model, UnknownModelError
from ..logs import Throttled
from ..text import quoted

_LOGGER = logging.getLogger(__name__)

PROGRAM_NAME = "bodhi"
"""The Wyoming ASR program's name; some clients send it where a model's name goes."""


@dataclass(frozen=True, slots=True)
class Choice:
    engine: Engine
    model: Model
    language: str
    """The language to report on the transcript: the client's tag, else the model's."""


class Router:
    """``transcribe.name`` if it names a model; else the first engine with a model for
    ``transcribe.language``; else the default model."""

    def __init__(
        self, engines: Sequence[Engine], default_model: str, warnings: Throttled | None = None
    ) -> None:
        self._warnings = warnings or Throttled()
        """The server's: a client may ask for a language nobody speaks in every request."""
        self._by_name: dict[str, tuple[Engine, Model]] = {}
        for engine in engines:
            for model in engine.models:
                self._by_name.setdefault(model.name, (engine, model))
        self._engines = tuple(engines)
        # Settings check the default against the engines they configure; engines given
        # otherwise (tests) fall back to their first model.
        self.default = (
            self.find(default_model)
            if default_model in self._by_name
            else (engines[0], engines[0].models[0])
        )

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def knows(self, name: str) -> bool:
        """Whether a ``transcribe.name`` means anything here: a model's, or the program's."""
        return name == PROGRAM_NAME or name in self._by_name

    def find(self, name: str) -> tuple[Engine, Model]:
        """The engine and model of that name. Raises :class:`UnknownModelError`."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownModelError(
                f"unknown model {name!r}; valid models: {', '.join(self._by_name)}"
            ) from None

    def choose(self, transcribe: Transcribe | None) -> Choice:
        name = transcribe.name if transcribe else None
        language = transcribe.language if transcribe else None
        if name and name != PROGRAM_NAME:
            engine, model = self.find(name)
            return Choice(engine, model, language or model.languages[0])
        default_engine, default_model = self.default
        if language:
            # The default model's own engine first: it knows whether its default speaks it.
            engines = sorted(self._engines, key=lambda engine: engine is not default_engine)
            for engine in engines:
                spoken = engine.model_for_language(language)
                if spoken is not None:
                    return Choice(engine, spoken, language)
            self._warnings.warning(
                _LOGGER,
                "No model for language %s; using the default model %s",
                quoted(language),
                default_model.name,
            )
            return Choice(default_engine, default_model, language)
        return Choice(default_engine, default_model, default_model.languages[0])
