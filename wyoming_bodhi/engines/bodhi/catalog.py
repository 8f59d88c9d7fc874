"""The Bodhi model catalogue and language-tag → model resolution.

Bodhi model names follow ``<lang>-<domain>-v<N>-8khz`` (``hi-general-v2-8khz``), where
``<lang>`` may itself be a pair for code-mixed models (``hi-en`` for Hinglish). The catalogue
will grow faster than we release, so any name of that shape can be added at run time
(``extra_models`` in the settings) without a new release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..base import Model, UnknownModelError

__all__ = ["BodhiModel", "Catalog", "UnknownModelError"]

DOMAINS = ("general", "banking")
DEFAULT_DOMAIN = "general"
DEFAULT_MODEL = "hi-general-v2-8khz"

_MODEL_NAME = re.compile(
    r"^(?P<lang>[a-z]{2,3}(?:-[a-z]{2,3})?)-(?P<domain>[a-z][a-z0-9]*)-v(?P<version>\d+)-(?P<rate>\d+)khz$"
)

# ISO 639-1 code → English name, for descriptions shown in Home Assistant.
LANGUAGE_NAMES: Mapping[str, str] = {
    "bn": "Bengali",
    "en": "Indian English",
    "gu": "Gujarati",
    "hi": "Hindi",
    "hi-en": "Hinglish (Hindi-English)",
    "kn": "Kannada",
    "ml": "Malayalam",
    "mr": "Marathi",
    "or": "Odia",
    "ta": "Tamil",
    "te": "Telugu",
}

# Every Bodhi model except these understands English mixed into its language.
_MONOLINGUAL = frozenset({"en", "gu", "or"})


@dataclass(frozen=True, slots=True)
class BodhiModel:
    """One Bodhi streaming model."""

    name: str
    language: str
    """Bodhi's language part of the name: ``hi``, ``ta``, ``hi-en`` (Hinglish)."""
    domain: str
    version: int
    sample_rate: int

    @classmethod
    def from_name(cls, name: str) -> BodhiModel:
        match = _MODEL_NAME.match(name)
        if match is None:
            raise UnknownModelError(
                f"{name!r} is not a Bodhi model name (expected <lang>-<domain>-v<N>-8khz, "
                "for example hi-general-v2-8khz)"
            )
        return cls(
            name=name,
            language=match["lang"],
            domain=match["domain"],
            version=int(match["version"]),
            sample_rate=int(match["rate"]) * 1000,
        )

    @property
    def primary_language(self) -> str:
        """The ISO 639-1 code a language tag must start with to pick this model."""
        return self.language.split("-", 1)[0]

    @property
    def wyoming_languages(self) -> list[str]:
        """Language tags for Wyoming Info: the plain code and its Indian form.

        Home Assistant matches a pipeline language by language and country, so both ``hi``
        and ``hi-IN`` are listed.
        """
        tags = [self.primary_language, f"{self.primary_language}-IN"]
        if self.language == "hi-en":
            tags += ["en", "en-IN"]
        return tags

    @property
    def description(self) -> str:
        language = LANGUAGE_NAMES.get(self.language, self.language)
        extra = "" if self.language in _MONOLINGUAL or "-" in self.language else " + English"
        return f"{language}{extra}, {self.domain} domain (Bodhi {self.name})"

    def as_model(self) -> Model:
        """As the pipeline and Home Assistant see it."""
        return Model(
            self.name, "bodhi", tuple(self.wyoming_languages), self.description, f"v{self.version}"
        )


# The 18 documented models, plus the Hinglish and Odia models named in later vendor docs.
BUILTIN_MODEL_NAMES: tuple[str, ...] = (
    *(
        f"{lang}-{domain}-v2-8khz"
        for lang in ("hi", "bn", "ta", "te", "kn", "ml", "mr", "gu", "en")
        for domain in DOMAINS
    ),
    "hi-en-general-v2-8khz",
    "hi-en-banking-v2-8khz",
    "or-general-v3-8khz",
)


def normalise_language(tag: str) -> str:
    """``hi``, ``hi-IN``, ``hi_IN``, ``HI`` → ``hi``; ``hi-en`` stays ``hi-en`` (Hinglish)."""
    tag = tag.strip().replace("_", "-").lower()
    if tag == "hi-en" or tag.startswith("hi-en-"):
        return "hi-en"
    return tag.split("-", 1)[0]


class Catalog:
    """The models this server offers, in a stable order (built-ins first)."""

    def __init__(self, extra_names: Iterable[str] = ()) -> None:
        models: dict[str, BodhiModel] = {}
        for name in (*BUILTIN_MODEL_NAMES, *extra_names):
            if name not in models:
                models[name] = BodhiModel.from_name(name)
        self._models = models

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self) -> Iterator[BodhiModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    @property
    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str) -> BodhiModel:
        try:
            return self._models[name]
        except KeyError:
            raise UnknownModelError(
                f"unknown Bodhi model {name!r}; valid models: {', '.join(self._models)}"
            ) from None

    def default(self, name: str) -> BodhiModel:
        """The configured default model ``name`` if it is one of these, else the built-in
        default (when the configured one is another engine's)."""
        return self.get(name if name in self else DEFAULT_MODEL)

    def for_language(self, tag: str, domain: str, default: BodhiModel) -> BodhiModel | None:
        """The model for a language tag, or None when no model speaks that language.

        The configured default model wins when it speaks the language, so that a user who
        chose ``hi-banking-v2-8khz`` keeps it when Home Assistant asks for ``hi-IN``.
        Otherwise: that language in the configured domain, then in any domain; the newest
        version first.
        """
        language = normalise_language(tag)
        if language == default.language:
            return default
        candidates = [m for m in self._models.values() if m.language == language]
        if not candidates:
            return None
        candidates.sort(key=lambda m: (m.domain != domain, m.domain != DEFAULT_DOMAIN, -m.version))
        return candidates[0]
