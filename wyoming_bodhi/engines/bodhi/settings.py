"""Bodhi's settings: its credentials, endpoint, models and request flags, declared here.

The names are those users have always written (``api_key``, ``BODHI_URL``,
``--extra-model``): they predate the ``<engine>_`` prefix new engines use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import voluptuous as vol

from ...declarations import setting, switch, validators
from ...declarations.validators import OptionalRanged
from .catalog import DEFAULT_DOMAIN, DOMAINS, BodhiModel, Catalog, UnknownModelError
from .client import LEGACY_URL
from .engine import VAD_ENDPOINT_SILENCE

DEFAULT_URL: Final = LEGACY_URL
LEGACY_HOSTS: Final = frozenset({urlsplit(LEGACY_URL).hostname})
"""Hosts of the documented platform, which needs the customer id as well as the key."""

PLACEHOLDERS: Final = frozenset({"your-bodhi-api-key", "00000000-0000-0000-0000-000000000000"})
"""What the example config file holds in place of real credentials."""

_secret = validators.secret(PLACEHOLDERS)


def customer_id(value: Any) -> str | None:
    text = _secret(value)
    if text is None:
        return None
    try:
        uuid.UUID(text)
    except ValueError:
        # Never echo the value: it is a credential.
        raise vol.Invalid("is not a UUID (expected 8-4-4-4-12 hexadecimal digits)") from None
    return text


def model_names(value: Any) -> tuple[str, ...]:
    """Bodhi model names, as a list in a file or comma- or space-separated in a variable."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list | tuple):
        raise vol.Invalid("expected a list of model names")
    names = tuple(str(item).strip() for item in value)
    for name in names:
        try:
            BodhiModel.from_name(name)
        except UnknownModelError as err:
            raise vol.Invalid(str(err)) from None
    return names


@dataclass(frozen=True)
class BodhiSettings:
    api_key: str | None = setting(
        None, _secret, "BODHI_API_KEY", "Bodhi API key",
        secret=True,
        title="Bodhi API key",
        description="Your Bodhi API key, from Navana's Bodhi dashboard: serves Hindi, Bengali, "
        "Tamil, Telugu, Kannada, Malayalam, Marathi, Gujarati, Odia, Hinglish and Indian "
        "English. Leave it empty to serve only the other engines' languages. With demo mode on, "
        "any text will do.",
    )  # fmt: skip
    customer_id: str | None = setting(
        None, customer_id, "BODHI_CUSTOMER_ID", "Bodhi customer id (a UUID; legacy platform)",
        secret=True,
        title="Customer ID",
        description="Your Bodhi customer id, a UUID (8-4-4-4-12 hexadecimal digits). The "
        f"default endpoint, {DEFAULT_URL}, needs it; platforms that authenticate by the key "
        "alone do not. Leave empty if you have none.",
    )  # fmt: skip
    bodhi_url: str = setting(
        DEFAULT_URL, validators.websocket_url, "BODHI_URL",
        "Bodhi streaming endpoint (ws:// or wss://)",
        title="Bodhi URL",
        description="Bodhi's streaming endpoint, a ws:// or wss:// URL. Keep the default "
        "unless Navana gave you another.",
    )  # fmt: skip
    domain: str = setting(
        DEFAULT_DOMAIN, vol.In(DOMAINS), "BODHI_DOMAIN",
        f"model domain used when a language picks the model ({' or '.join(DOMAINS)})",
        title="Domain",
        description=f"{' or '.join(DOMAINS)}: the domain of the model picked for the "
        "assistant's language.",
    )  # fmt: skip
    extra_models: tuple[str, ...] = setting(
        (), model_names, "BODHI_EXTRA_MODELS",
        "model names to add to the catalogue (comma-separated in the env)",
        flag="--extra-model", kind="list",
        title="Extra models",
        description="Bodhi model names to add to the built-in list, for models newer than "
        "this add-on (for example pa-general-v2-8khz). They are offered to Home Assistant "
        "and picked by their language.",
    )  # fmt: skip
    endpoint_silence: float | None = setting(
        None, OptionalRanged(float, 0.44, 1.2), "BODHI_ENDPOINT_SILENCE",
        "seconds of trailing silence that end a phrase (unset: Bodhi's 0.44)",
        title="End-of-phrase silence (s)",
        description="Seconds of silence that end a phrase, {range}; with Bodhi ending the "
        "command, the pause that ends it. Unset, Bodhi's default (0.44) applies. Home "
        "Assistant (checked up to 2026.11) sends no vad_sensitivity, so this is what its "
        "assistants get. For a Wyoming client that sends one, aggressive gives "
        f"{VAD_ENDPOINT_SILENCE['aggressive']:g}, relaxed {VAD_ENDPOINT_SILENCE['relaxed']:g} "
        "and default this value.",
    )  # fmt: skip
    parse_number: bool = switch(
        "BODHI_PARSE_NUMBER", "spoken numbers as digits",
        title="Numbers as digits",
        description='Write spoken numbers as digits ("paanch" becomes 5).',
    )  # fmt: skip
    language_id: bool = switch(
        "BODHI_LANGUAGE_ID", "identify the spoken language; the transcript reports it",
        title="Identify the language",
        description="Identify the spoken language; the transcript then reports it.",
    )  # fmt: skip
    transliterate: bool = switch(
        "BODHI_TRANSLITERATE", "ask Bodhi for transliterated text",
        title="Transliterate",
        description="Ask Bodhi for transliterated text.",
    )  # fmt: skip

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.extra_models)

    @property
    def is_legacy_platform(self) -> bool:
        return urlsplit(self.bodhi_url).hostname in LEGACY_HOSTS
