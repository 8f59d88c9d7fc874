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
    )  # fmt: skip
    customer_id: str | None = setting(
        None, customer_id, "BODHI_CUSTOMER_ID", "Bodhi customer id (a UUID; legacy platform)",
        secret=True,
    )  # fmt: skip
    bodhi_url: str = setting(
        DEFAULT_URL, validators.websocket_url, "BODHI_URL",
        "Bodhi streaming endpoint (ws:// or wss://)",
    )  # fmt: skip
    domain: str = setting(
        DEFAULT_DOMAIN, vol.In(DOMAINS), "BODHI_DOMAIN",
        f"model domain used when a language picks the model ({' or '.join(DOMAINS)})",
    )  # fmt: skip
    extra_models: tuple[str, ...] = setting(
        (), model_names, "BODHI_EXTRA_MODELS",
        "model names to add to the catalogue (comma-separated in the env)",
        flag="--extra-model", kind="list",
    )  # fmt: skip
    endpoint_silence: float | None = setting(
        None, OptionalRanged(float, 0.44, 1.2), "BODHI_ENDPOINT_SILENCE",
        "seconds of trailing silence that end a phrase (unset: Bodhi's 0.44)",
    )  # fmt: skip
    parse_number: bool = switch("BODHI_PARSE_NUMBER", "spoken numbers as digits")
    language_id: bool = switch(
        "BODHI_LANGUAGE_ID", "identify the spoken language; the transcript reports it"
    )
    transliterate: bool = switch("BODHI_TRANSLITERATE", "ask Bodhi for transliterated text")

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.extra_models)

    @property
    def is_legacy_platform(self) -> bool:
        return urlsplit(self.bodhi_url).hostname in LEGACY_HOSTS
