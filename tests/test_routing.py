"""Which engine serves a request: the real engines, built from settings as the server builds
them, and the router's choice for each ``transcribe`` a client can send."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe

from wyoming_bodhi.engines import configured_engines
from wyoming_bodhi.engines.base import Engine, UnknownModelError
from wyoming_bodhi.pipeline.routing import PROGRAM_NAME, Router
from wyoming_bodhi.settings import validate

from .harness import API_KEY, CUSTOMER_ID


async def router_for(http: aiohttp.ClientSession, **raw: Any) -> tuple[Router, list[Engine]]:
    settings = validate(raw)
    engines = configured_engines(settings, http, None)
    return Router(engines, settings.model), engines


def chosen(router: Router, **transcribe: Any) -> tuple[str, str, str]:
    choice = router.choose(Transcribe(**transcribe) if transcribe else None)
    return choice.engine.name, choice.model.name, choice.language


async def test_both_engines_route_by_language_and_by_model(http: aiohttp.ClientSession) -> None:
    router, engines = await router_for(
        http, api_key=API_KEY, customer_id=CUSTOMER_ID, iapp_api_key="iapp-key-1234"
    )
    assert [engine.name for engine in engines] == ["bodhi", "iapp"]
    assert chosen(router) == ("bodhi", "hi-general-v2-8khz", "hi")
    assert chosen(router, language="th") == ("iapp", "iapp-asrx", "th")
    assert chosen(router, language="th-TH") == ("iapp", "iapp-asrx", "th-TH")
    assert chosen(router, language="ta") == ("bodhi", "ta-general-v2-8khz", "ta")
    assert chosen(router, language="bn-IN") == ("bodhi", "bn-general-v2-8khz", "bn-IN")
    # A model's name picks its engine, whatever the language says.
    assert chosen(router, name="iapp-asrx", language="hi") == ("iapp", "iapp-asrx", "hi")
    assert chosen(router, name="kn-general-v2-8khz") == ("bodhi", "kn-general-v2-8khz", "kn")
    # Some clients send the program's name where a model's goes: that is no choice at all.
    assert chosen(router, name=PROGRAM_NAME, language="th") == ("iapp", "iapp-asrx", "th")
    # A language nobody speaks falls back to the default model, with the client's tag.
    assert chosen(router, language="fr") == ("bodhi", "hi-general-v2-8khz", "fr")
    # A name that is neither is refused by the router (an explicit choice: --model, the
    # status page); the Wyoming handler drops it before asking (tests/test_other_clients.py).
    assert router.knows(PROGRAM_NAME) and router.knows("iapp-asrx")
    assert not router.knows("whisper-1")
    with pytest.raises(UnknownModelError, match="valid models: .*iapp-asrx"):
        router.choose(Transcribe(name="whisper-large"))


async def test_thai_only_set_up_serves_thai_by_default(http: aiohttp.ClientSession) -> None:
    router, engines = await router_for(http, iapp_api_key="iapp-key-1234")
    assert [engine.name for engine in engines] == ["iapp"]
    assert router.names == ["iapp-asrx"]
    assert chosen(router) == ("iapp", "iapp-asrx", "th")
    assert chosen(router, language="hi") == ("iapp", "iapp-asrx", "hi")


async def test_thai_as_the_default_model_goes_first(http: aiohttp.ClientSession) -> None:
    router, _ = await router_for(
        http,
        api_key=API_KEY,
        customer_id=CUSTOMER_ID,
        iapp_api_key="iapp-key-1234",
        model="iapp-asrx",
    )
    assert chosen(router) == ("iapp", "iapp-asrx", "th")
    assert chosen(router, language="hi") == ("bodhi", "hi-general-v2-8khz", "hi")
    assert chosen(router, language="en-IN") == ("bodhi", "en-general-v2-8khz", "en-IN")


async def test_bodhi_only_has_no_thai(http: aiohttp.ClientSession) -> None:
    router, _ = await router_for(http, api_key=API_KEY, customer_id=CUSTOMER_ID)
    assert "iapp-asrx" not in router.names
    with pytest.raises(UnknownModelError):
        router.choose(Transcribe(name="iapp-asrx"))
    assert chosen(router, language="th") == ("bodhi", "hi-general-v2-8khz", "th")
