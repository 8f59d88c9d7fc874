"""An engine as a plugin: one object that declares everything the server needs to know.

Each engine package exports an :class:`EngineSpec` (``ENGINE`` in its ``plugin.py``, by
convention) and registers it under the entry-point group
``wyoming_bodhi.engines`` (:mod:`.registry`), as any other distribution may. The core loops
over the registered specs for everything that differs between engines: their settings (and
so flags, environment variables, config keys, add-on options and which values are secret),
their models, their own checks, how each is built, its simulator for ``--demo``, and its
error codes. Nothing outside an engine's package names it.

A spec is a frozen dataclass rather than a protocol: mypy checks each callable against the
engine's own settings class ``S`` where the spec is written, and the registry can check what
an entry point hands it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, Protocol, TypeVar

import aiohttp

from ..declarations import Spec, declarations_of
from .base import AudioSpec, Capabilities, Engine, Model
from .errors import ErrorTable

API_VERSION: Final = 1
"""What a plugin is written for; the registry refuses any other."""

S = TypeVar("S")
"""An engine's settings: a frozen dataclass whose fields are made with
:func:`wyoming_bodhi.declarations.setting`."""


@dataclass(frozen=True, slots=True)
class EngineContext:
    """What the server gives an engine it builds (never the whole settings)."""

    http: aiohttp.ClientSession
    ssl_context: ssl.SSLContext | None
    """Adds the user's CA (``ca_file``) to the system's; None: the system's alone."""
    default_model: str
    """The server's default model, which may be another engine's."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What an engine's own checks may consult beyond its settings."""

    demo: bool
    """Serving through the bundled simulators."""
    where: Callable[[str], str]
    """How the user gave a setting, for messages: ``--acme-url``, ``ACME_URL``, ``config
    file X``."""


class Simulated(Protocol):
    """A running simulator: where to reach it."""

    @property
    def url(self) -> str: ...


Simulate = Callable[..., AbstractAsyncContextManager[Simulated]]
"""A simulator reference's target: ``simulate(settings, *, history=..., **options)``, an async
context manager serving until it exits, keeping the records of at most ``history``
connections; ``options`` are ``SimulatorOptions``' knobs (tests pass ``echo_credentials``)."""


def _no_check(settings: Any, context: CheckContext) -> None:
    return None


@dataclass(frozen=True, slots=True)
class EngineSpec(Generic[S]):
    """Everything about one engine; see the module's text."""

    api: int
    """:data:`API_VERSION` when the plugin was written."""
    name: str
    """``[a-z][a-z0-9]*``: its error codes' prefix, its entry point's name, and the status
    page's ``/api/check/<name>``."""
    title: str
    """For people: the product's name."""
    vendor: str
    vendor_url: str
    languages: str
    """What it speaks, for messages: ``Indian languages``, ``Swahili``."""
    priority: int
    """Order of routing and of the default model: lowest first (shipped engines 0 and 10,
    others 100 or more). Equal priorities go by name."""
    settings: type[S]
    """Its settings' dataclass (its declarations)."""
    credential: str
    """The setting that configures the engine when it is set (its API key)."""
    url_setting: str
    """The setting that holds its URL: checked for ``ws://``, pointed at the simulator."""
    audio: AudioSpec
    capabilities: Capabilities
    errors: ErrorTable
    models: Callable[[S], Sequence[Model]]
    """Its models under these settings; the first is its default."""
    build: Callable[[S, EngineContext], Engine]
    check: Callable[[S, CheckContext], None] = _no_check
    """Its own rules over its settings, once it is configured: raises
    :class:`~wyoming_bodhi.declarations.SettingsError`."""
    demo: Callable[[S, str], S] | None = None
    """Its settings pointed at its simulator's URL; None: ``url_setting`` is replaced."""
    simulator: str | None = None
    """``package.module:attribute`` of a :data:`Simulate`, loaded only for ``--demo`` and
    tests (a string: the simulator imports its engine, not the other way round)."""
    model_hint: str = ""
    """How to add models, for the message listing the valid ones."""

    def declaration(self, name: str) -> Spec:
        """The declaration of one of its settings."""
        for spec in declarations_of(self.settings):
            if spec.name == name:
                return spec
        raise KeyError(f"engine {self.name!r} has no setting {name!r}")

    def simulated(self, settings: S, url: str) -> S:
        """``settings`` with the engine served by its simulator at ``url``."""
        if self.demo is not None:
            return self.demo(settings, url)
        changed: S = replace(settings, **{self.url_setting: url})  # type: ignore[type-var]
        return changed


__all__ = [
    "API_VERSION",
    "CheckContext",
    "EngineContext",
    "EngineSpec",
    "Simulate",
    "Simulated",
]
