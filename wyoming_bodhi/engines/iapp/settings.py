"""iApp ASRx's settings: its key and endpoint, declared here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ...declarations import setting, validators

DEFAULT_URL: Final = "wss://api.iapp.co.th/asrx"


@dataclass(frozen=True)
class IappSettings:
    iapp_api_key: str | None = setting(
        None, validators.secret({"your-iapp-api-key"}), "IAPP_API_KEY",
        "iApp API key: serves Thai through iApp ASRx", secret=True,
        title="iApp API key",
        description="Your iApp Technology API key, from iApp's API portal: serves Thai "
        "through iApp ASRx. Leave it empty to serve only the other engines' languages.",
    )  # fmt: skip
    iapp_url: str = setting(
        DEFAULT_URL, validators.websocket_url, "IAPP_URL",
        "iApp ASRx streaming endpoint (ws:// or wss://)",
        title="iApp ASRx URL",
        description="iApp ASRx's streaming endpoint (wss:// unless it is on this machine).",
    )  # fmt: skip
