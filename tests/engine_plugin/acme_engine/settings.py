"""Step 1: Acme's settings. Each field is a flag (unless secret), an environment variable, a
config-file key and an add-on option, named ``acme_…`` and ``ACME_…`` so that no other engine
takes them."""

from __future__ import annotations

from dataclasses import dataclass

from wyoming_bodhi.declarations import setting, validators


@dataclass(frozen=True)
class AcmeSettings:
    acme_api_key: str | None = setting(
        None, validators.secret(), "ACME_API_KEY", "Acme API key", secret=True
    )
    acme_url: str = setting(
        "wss://asr.acme.example",
        validators.websocket_url,
        "ACME_URL",
        "Acme's streaming endpoint (ws:// or wss://)",
    )
