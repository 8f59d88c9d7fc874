"""Engine plugins that are wrong in one way each, for the registry's tests: entry points
made by hand point at these, so nothing is installed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from wyoming_bodhi.declarations import setting, validators
from wyoming_bodhi.engines.base import REFUSED, EngineError, Request
from wyoming_bodhi.engines.bodhi.plugin import ENGINE as BODHI
from wyoming_bodhi.engines.iapp.engine import IappEngine
from wyoming_bodhi.engines.iapp.plugin import ENGINE as IAPP
from wyoming_bodhi.engines.plugin import EngineContext
from wyoming_bodhi.simulators.iapp import IappSimulator
from wyoming_bodhi.simulators.options import SimulatorOptions


@dataclass(frozen=True)
class EchoSettings:
    echo_api_key: str | None = setting(
        None, validators.secret(), "ECHO_API_KEY", "Echo API key", secret=True
    )
    echo_url: str = setting("ws://127.0.0.1:9", validators.websocket_url, "ECHO_URL", "Echo URL")


@dataclass(frozen=True)
class AlphaSettings:
    alpha_api_key: str | None = setting(
        None, validators.secret(), "ALPHA_API_KEY", "Alpha API key", secret=True
    )
    alpha_url: str = setting("ws://127.0.0.1:9", validators.websocket_url, "ALPHA_URL", "URL")


@dataclass(frozen=True)
class TakenSettings:
    """Declares a variable Bodhi has."""

    taken_api_key: str | None = setting(
        None, validators.secret(), "BODHI_API_KEY", "a key", secret=True
    )
    taken_url: str = setting("ws://127.0.0.1:9", validators.websocket_url, "TAKEN_URL", "URL")


ECHO = dataclasses.replace(
    IAPP,
    name="echo",
    title="Echo",
    priority=5,
    settings=EchoSettings,
    credential="echo_api_key",
    url_setting="echo_url",
    simulator=None,
)
ALSO_FIRST = dataclasses.replace(
    ECHO,
    name="alpha",
    priority=0,
    settings=AlphaSettings,
    credential="alpha_api_key",
    url_setting="alpha_url",
)
"""Bodhi's priority: ties go by name."""
NOT_A_SPEC = {"name": "dict"}
FUTURE = dataclasses.replace(ECHO, api=99)
MISNAMED = dataclasses.replace(ECHO, name="Echo Engine")
TAKEN = dataclasses.replace(
    ECHO, name="taken", settings=TakenSettings, credential="taken_api_key", url_setting="taken_url"
)
NO_SUCH_SETTING = dataclasses.replace(ECHO, name="nosetting", credential="api_key")
BAD_SIMULATOR = dataclasses.replace(ECHO, simulator="tests.engine_fixtures:nothing_here")
BODHI_AGAIN = BODHI


# -- a whole engine no list names: iApp's protocol under a name and settings of its own -------


class EchoEngine(IappEngine):
    name = "echo"
    title = "Echo"


def _build_echo(settings: EchoSettings, context: EngineContext) -> EchoEngine:
    assert settings.echo_api_key is not None
    return EchoEngine(
        context.http, settings.echo_url, settings.echo_api_key, ssl_context=context.ssl_context
    )


def simulate_echo(settings: EchoSettings, *, history: int = 1000, **options: Any) -> IappSimulator:
    return IappSimulator(SimulatorOptions(history=history, **options))


ECHO_ENGINE = dataclasses.replace(
    ECHO, build=_build_echo, simulator="tests.engine_fixtures:simulate_echo"
)
"""The echo plugin, whole: it builds its engine and has a simulator."""


# -- a whole-file engine that says its key when it fails, as a careless vendor client might ---


class LeakyWholeFileEngine(EchoEngine):
    async def recognize(
        self, request: Request, pcm: bytes, *, connect_timeout: float, timeout: float
    ) -> str:
        raise EngineError(f"the engine refused key {self._api_key}", code="echo-401", kind=REFUSED)


def _build_leaky(settings: EchoSettings, context: EngineContext) -> LeakyWholeFileEngine:
    assert settings.echo_api_key is not None
    return LeakyWholeFileEngine(
        context.http, settings.echo_url, settings.echo_api_key, ssl_context=context.ssl_context
    )


LEAKY_WHOLE_FILE = dataclasses.replace(
    ECHO,
    build=_build_leaky,
    capabilities=dataclasses.replace(ECHO.capabilities, whole_file=True),
)
"""Takes whole files, and fails quoting its key: the core must blank it out."""
