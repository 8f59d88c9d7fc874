"""All configuration: the core's settings and every registered engine's, each declared once,
validated by one voluptuous schema.

A setting is one field of a settings dataclass: the core's (:class:`.core.CoreSettings`) or
an engine's (its :class:`~wyoming_bodhi.engines.plugin.EngineSpec` names the class). Its
:class:`~wyoming_bodhi.declarations.Spec` says how it is given: its environment variable, its
flag (if any), its validator and its help. The schema, the command-line flags, ``--help`` and
the checks of config-file keys are all built from those fields, over one flat namespace:
users write ``api_key`` and ``chunk_ms`` side by side, whoever owns them.

Settings come in layers, the first that sets a value wins: command-line flags, then
environment variables, then a YAML or JSON file (``--config``), then built-in defaults. Each
value remembers where it came from, so an error names what the user actually wrote (a flag,
a variable, or a key in a file). Secrets (API keys, the customer id, Home Assistant's token)
are never flags, because flags show in process listings: they come from the environment,
directly or through ``*_FILE`` (Docker and add-on secrets), or from the config file.

The setting names (``chunk_ms``, ``<engine>_url``, …) are the names users write in files and
add-on options (the add-on's ``/data/options.json`` loads directly).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import voluptuous as vol

from ..declarations import SettingsError, Spec, declarations_of
from ..engines import registry
from ..engines.base import Model
from ..engines.plugin import EngineSpec
from ..engines.registry import ONLY, builtin, installed
from ..redaction import Secrets
from . import checks, command_line
from .checks import TRY_DEMO
from .core import DEFAULT_URI, CoreSettings
from .sources import CONFIG_ENV, Declared, RawSettings, environment_and_file

DEMO_API_KEY = "demo-key-for-the-bundled-simulator"
"""In demo mode, each engine with a simulator is configured with this key (any will do)."""

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class EngineEntry(Generic[S]):
    """A registered engine and its settings."""

    plugin: EngineSpec[S]
    settings: S

    @property
    def configured(self) -> bool:
        """Its credential is set: the server builds and serves it."""
        return bool(getattr(self.settings, self.plugin.credential))

    def __repr__(self) -> str:
        return f"EngineEntry({self.plugin.name}, {self.settings!r})"


@dataclass(frozen=True)
class Settings(CoreSettings):
    """The core's settings as typed fields, and every registered engine's under
    :meth:`of`."""

    engines: tuple[EngineEntry[Any], ...] = ()
    """Every registered engine, in priority order, configured or not (not a setting)."""
    deprecations: tuple[str, ...] = ()
    """Old setting names that were used: a notice each, logged once at start."""

    def of(self, plugin: EngineSpec[S]) -> S:
        """That engine's settings, typed: ``settings.of(ENGINE).acme_url``."""
        for entry in self.engines:
            if entry.plugin.name == plugin.name and isinstance(entry.settings, plugin.settings):
                return entry.settings
        raise KeyError(f"engine {plugin.name!r} is not registered")

    @property
    def configured(self) -> tuple[EngineEntry[Any], ...]:
        """The engines with their credential set, in priority order."""
        return tuple(entry for entry in self.engines if entry.configured)

    def declared(self) -> Iterator[tuple[Spec, Any]]:
        """Every setting's declaration and value: the core's, then each engine's."""
        for spec in declarations_of(CoreSettings):
            yield spec, getattr(self, spec.name)
        for entry in self.engines:
            for spec in declarations_of(entry.plugin.settings):
                yield spec, getattr(entry.settings, spec.name)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The value of every setting declared secret (by the core or by any engine) that is
        set: blanked out of anything an engine or a server says before it is passed on."""
        # The demo key is public (it is in the source), and blanking pieces of it would blank
        # ordinary words the simulators say ("simulator").
        return tuple(
            str(value)
            for spec, value in self.declared()
            if spec.secret and value and value != DEMO_API_KEY
        )

    def value(self, name: str) -> Any:
        """A setting's value by the name users write, whoever owns it."""
        for spec, value in self.declared():
            if spec.name == name:
                return value
        raise AttributeError(name)

    if not TYPE_CHECKING:
        # Scripts and tests may read an engine's setting (or property) by the name users
        # write (``settings.acme_url``); the package itself reads ``settings.of(plugin)``, which
        # mypy checks. Hidden from mypy so that a typo in the core is still an error.
        def __getattr__(self, name: str) -> Any:
            if name.startswith("_") or name == "engines":
                raise AttributeError(name)
            for entry in self.engines:
                if hasattr(entry.settings, name):
                    return getattr(entry.settings, name)
            raise AttributeError(name)


def fitting(engines: Iterable[EngineSpec[Any]] | None = None) -> tuple[EngineSpec[Any], ...]:
    """These engines (the installed ones by default), once none declares a way of giving a
    setting that the server has: its flags (the settings' and its own, ``--config``,
    ``--help``), its variables, its setting names and the names its own flags' values are
    kept under. Checked before any parser is built. Raises :class:`PluginError`."""
    engines = installed() if engines is None else tuple(engines)
    core = declarations_of(CoreSettings)
    reserved = {way for spec in core for way in spec.ways()}
    own = command_line.OWN_FLAGS | command_line.OWN_NAMES | {CONFIG_ENV, ONLY}
    registry.check_settings(engines, reserved | own)
    return engines


def declared(engines: Iterable[EngineSpec[Any]] | None = None) -> Declared:
    """The declarations of the core and of these engines (the installed ones by default)."""
    return Declared(
        [
            *declarations_of(CoreSettings),
            *(spec for engine in fitting(engines) for spec in declarations_of(engine.settings)),
        ]
    )


def declarations(engines: Iterable[EngineSpec[Any]] | None = None) -> tuple[Spec, ...]:
    """Every setting's declaration: the core's, then each engine's."""
    return declared(engines).specs


def schema(engines: Iterable[EngineSpec[Any]] | None = None) -> vol.Schema:
    """The schema over every setting (values validated, defaults filled in)."""
    return declared(engines).schema()


def validate(raw: Mapping[str, Any], engines: Sequence[EngineSpec[Any]] | None = None) -> Settings:
    """Validate merged raw settings; raises :class:`SettingsError` naming the first problem,
    with every secret given blanked out of what it quotes (a key pasted into the wrong
    setting, or as a config file's key)."""
    engines = fitting(engines)
    known = declared(engines)
    try:
        return _validate(raw, engines, known)
    except SettingsError as err:
        given = Secrets(
            str(raw.get(spec.name) or "") for spec in known.by_name.values() if spec.secret
        )
        said = given.text(str(err))
        if said == str(err):
            raise
        raise type(err)(said) from None


def _validate(
    raw: Mapping[str, Any], engines: Sequence[EngineSpec[Any]], known: Declared
) -> Settings:
    sources = dict(getattr(raw, "sources", {}))
    data = dict(raw)
    deprecations = known.canonical(data, sources)
    unknown = sorted(str(key) for key in data if key not in known.by_name)
    if unknown:
        raise SettingsError(known.unknown(unknown[0], sources.get(unknown[0])))
    try:
        values = known.schema()(data)
    except vol.MultipleInvalid as err:
        first = err.errors[0]
        name = str(first.path[0]) if first.path else "settings"
        shown = known.shown(name, data.get(name))
        raise SettingsError(
            f"invalid {name}{shown} ({known.where(name, sources)}): {first.error_message}"
        ) from None
    entries = []
    for engine in engines:
        own = {spec.name: values.pop(spec.name) for spec in declarations_of(engine.settings)}
        if values["demo"] and engine.simulator is not None:
            # The demo serves it through its bundled simulator, which takes any key.
            own[engine.credential] = own[engine.credential] or DEMO_API_KEY
        entries.append(EngineEntry(engine, _settings_of(engine, own)))
    settings = Settings(**values, engines=tuple(entries), deprecations=deprecations)
    return checks.checked(settings, lambda name: known.where(name, sources))


def _settings_of(engine: EngineSpec[S], values: Mapping[str, Any]) -> S:
    with registry.blamed(engine, "make its settings", values):
        return engine.settings(**values)


def build_parser(engines: Sequence[EngineSpec[Any]] | None = None) -> argparse.ArgumentParser:
    """The server's command line. Raises :class:`PluginError`."""
    return command_line.build_parser(declarations_of(CoreSettings), fitting(engines))


def merge(args: argparse.Namespace, environ: Mapping[str, str]) -> RawSettings:
    """The raw layers, unvalidated: flags over environment over the config file."""
    known = declared()
    raw = environment_and_file(known, args.config, environ)
    command_line.from_arguments(known, args, raw)
    return raw


def catalogue(raw: Mapping[str, Any]) -> list[tuple[EngineSpec[Any], Sequence[Model]]]:
    """Every engine's models under the raw settings, in priority order: each engine's own
    settings validated alone, with no credentials needed (``--list-models``)."""
    sources: Mapping[str, str] = getattr(raw, "sources", {})
    found: list[tuple[EngineSpec[Any], Sequence[Model]]] = []
    for engine in fitting():
        known = Declared(declarations_of(engine.settings))
        own = {name: value for name, value in raw.items() if name in known.by_name}
        try:
            values = known.schema()(own)
        except vol.MultipleInvalid as err:
            first = err.errors[0]
            name = str(first.path[0]) if first.path else "settings"
            raise SettingsError(
                f"invalid {name} ({known.where(name, sources)}): {first.error_message}"
            ) from None
        found.append((engine, registry.models(engine, _settings_of(engine, values))))
    registry.check_models(found)
    return found


def load_client_settings(
    config_path: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings for a client that talks to an engine itself, with no server in between
    (``--direct``, ``--rest``): the server's environment variables, ``*_FILE``
    secrets and config file (``config_path``, else ``BODHI_CONFIG``), validated as the server
    validates them, without the server's flags. Raises :class:`SettingsError`."""
    environ = os.environ if environ is None else environ
    return validate(environment_and_file(declared(), config_path, environ))


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse flags, read the environment and config file, validate.

    Raises :class:`SettingsError`.
    """
    args = build_parser().parse_args(argv)
    return validate(merge(args, os.environ if environ is None else environ))


def __getattr__(name: str) -> Any:
    # The names of before the engines were plugins, for scripts. What they named then was
    # what this project ships, and still is, whatever other engine is installed beside it.
    if name == "SETTINGS":
        return declarations(builtin())
    if name == "SCHEMA":
        return schema(builtin())
    if name == "SECRETS":
        return tuple(spec.name for spec in declarations(builtin()) if spec.secret)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_URI",
    "DEMO_API_KEY",
    "TRY_DEMO",
    "EngineEntry",
    "RawSettings",
    "Settings",
    "SettingsError",
    "build_parser",
    "catalogue",
    "declarations",
    "fitting",
    "load",
    "load_client_settings",
    "merge",
    "schema",
    "validate",
]
