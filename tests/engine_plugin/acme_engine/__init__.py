"""Acme, a made-up Swahili engine: a plugin that wyoming-bodhi does not ship, written by its
walk-through (docs/development.md, "Writing an engine") and registered by its own
``pyproject.toml``. Step 5: the spec, one object that declares it whole."""

from __future__ import annotations

from wyoming_bodhi.engines.plugin import API_VERSION, EngineContext, EngineSpec

from .engine import AUDIO, CAPABILITIES, MODEL, AcmeEngine
from .protocol import ERRORS
from .settings import AcmeSettings


def _build(settings: AcmeSettings, context: EngineContext) -> AcmeEngine:
    assert settings.acme_api_key is not None, "built only when configured"
    return AcmeEngine(
        context.http, settings.acme_url, settings.acme_api_key, ssl_context=context.ssl_context
    )


ENGINE: EngineSpec[AcmeSettings] = EngineSpec(
    api=API_VERSION,
    name="acme",
    title="Acme",
    vendor="Acme Corp",
    vendor_url="https://acme.example",
    languages="Swahili",
    priority=100,
    settings=AcmeSettings,
    credential="acme_api_key",
    url_setting="acme_url",
    audio=AUDIO,
    capabilities=CAPABILITIES,
    errors=ERRORS,
    models=lambda settings: (MODEL,),
    build=_build,
    simulator="acme_engine.simulator:simulate",
)

__all__ = ["ENGINE"]
