"""iApp ASRx as a plugin: registered as ``iapp`` under ``wyoming_bodhi.engines``."""

from __future__ import annotations

from collections.abc import Sequence

from ..base import Model
from ..plugin import API_VERSION, EngineContext, EngineSpec
from .catalog import MODEL
from .engine import AUDIO, CAPABILITIES, IappEngine
from .errors import ERRORS
from .settings import IappSettings


def _models(settings: IappSettings) -> Sequence[Model]:
    return (MODEL,)


def _build(settings: IappSettings, context: EngineContext) -> IappEngine:
    assert settings.iapp_api_key is not None, "built only when configured"
    return IappEngine(
        context.http, settings.iapp_url, settings.iapp_api_key, ssl_context=context.ssl_context
    )


ENGINE: EngineSpec[IappSettings] = EngineSpec(
    api=API_VERSION,
    name=IappEngine.name,
    title=IappEngine.title,
    vendor=IappEngine.vendor,
    vendor_url=IappEngine.vendor_url,
    languages="Thai",
    priority=10,
    settings=IappSettings,
    credential="iapp_api_key",
    url_setting="iapp_url",
    audio=AUDIO,
    capabilities=CAPABILITIES,
    errors=ERRORS,
    models=_models,
    build=_build,
    simulator="wyoming_bodhi.simulators.iapp:simulate",
)
