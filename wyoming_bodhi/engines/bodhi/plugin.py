"""Bodhi as a plugin: registered as ``bodhi`` under ``wyoming_bodhi.engines``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ...declarations import SettingsError
from ...declarations.validators import CREDENTIALS_HELP
from ..base import Model
from ..plugin import API_VERSION, CheckContext, EngineContext, EngineSpec
from .client import BodhiCredentials
from .engine import AUDIO, CAPABILITIES, BodhiEngine
from .errors import ERRORS
from .settings import BodhiSettings


def _models(settings: BodhiSettings) -> Sequence[Model]:
    return [model.as_model() for model in settings.catalog]


def _build(settings: BodhiSettings, context: EngineContext) -> BodhiEngine:
    assert settings.api_key is not None, "built only when configured"
    return BodhiEngine(
        context.http,
        settings.bodhi_url,
        BodhiCredentials(settings.api_key, settings.customer_id),
        catalog=settings.catalog,
        default_model=context.default_model,
        domain=settings.domain,
        parse_number=settings.parse_number,
        language_id=settings.language_id,
        transliterate=settings.transliterate,
        endpoint_silence=settings.endpoint_silence,
        ssl_context=context.ssl_context,
    )


def _check(settings: BodhiSettings, context: CheckContext) -> None:
    if settings.is_legacy_platform and not settings.customer_id and not context.demo:
        raise SettingsError(
            f"missing the Bodhi customer id: {settings.bodhi_url} needs it as well as the API "
            "key; set BODHI_CUSTOMER_ID (or BODHI_CUSTOMER_ID_FILE, or customer_id in a config "
            f"file); {CREDENTIALS_HELP}"
        )


def _demo(settings: BodhiSettings, url: str) -> BodhiSettings:
    # The simulator is the newer platform's shape: the key alone.
    return replace(settings, bodhi_url=url, customer_id=None)


ENGINE: EngineSpec[BodhiSettings] = EngineSpec(
    api=API_VERSION,
    name=BodhiEngine.name,
    title=BodhiEngine.title,
    vendor=BodhiEngine.vendor,
    vendor_url=BodhiEngine.vendor_url,
    languages="Indian languages",
    priority=0,
    settings=BodhiSettings,
    credential="api_key",
    url_setting="bodhi_url",
    audio=AUDIO,
    capabilities=CAPABILITIES,
    errors=ERRORS,
    models=_models,
    build=_build,
    check=_check,
    demo=_demo,
    simulator="wyoming_bodhi.simulators.bodhi:simulate",
    model_hint="add Bodhi models with extra_models, --extra-model",
)
