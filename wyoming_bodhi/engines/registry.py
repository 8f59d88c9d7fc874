"""The installed engines: every :class:`~.plugin.EngineSpec` registered under the entry-point
group ``wyoming_bodhi.engines``, the shipped ones included.

A distribution registers an engine in its ``pyproject.toml``::

    [project.entry-points."wyoming_bodhi.engines"]
    acme = "acme_engine:ENGINE"

A plugin that cannot be loaded, or that does not fit (another API version, a name taken, a
spec or settings class of the wrong shape, a setting whose name, variable or flag another
engine or the server has, a model name another engine offers), stops the start with one line
that names it and says what to do: a server that silently lost an engine would take its key
as an unknown setting and send its language to another engine. So does any exception the
plugin's own code raises where the core calls it (its import, its settings class, ``models``,
``check``, ``build``, its simulator): :func:`blamed` makes it that line, with the plugin's
secrets blanked out. ``WYOMING_BODHI_ENGINES`` (names, comma-separated) leaves the others out
without uninstalling them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import os
import re
import signal
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from types import FrameType
from typing import Any, Final

from .. import stopping
from ..declarations import SettingsError, Spec, declarations_of
from ..redaction import Secrets
from ..stopping import Stopped
from ..text import printable, quoted
from .base import AudioSpec, Capabilities, Engine, Model
from .errors import ErrorTable
from .plugin import API_VERSION, EngineContext, EngineSpec, S, Simulate

GROUP: Final = "wyoming_bodhi.engines"
ONLY: Final = "WYOMING_BODHI_ENGINES"
"""An environment variable, not a setting: which settings exist depends on it."""
DISTRIBUTION: Final = "wyoming-bodhi"
"""This project's distribution: its engines are the shipped ones."""

_NAME = re.compile(r"[a-z][a-z0-9]*")
_FLAG = re.compile(r"--[a-z0-9]+(-[a-z0-9]+)*")
FIX: Final = f"uninstall it, or leave it out with {ONLY}=<the engines to use>"
_SHAPE: Final[tuple[tuple[str, type], ...]] = (
    ("priority", int),
    ("title", str),
    ("languages", str),
    ("audio", AudioSpec),
    ("capabilities", Capabilities),
    ("errors", ErrorTable),
)
"""What the core reads of a spec without calling it, and the type it reads it as."""


class PluginError(SettingsError):
    """An engine plugin cannot be used; the message names it and says what to do."""


def _dist(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return f" ({dist.name} {dist.version})" if dist is not None else ""


def _what(name: str) -> str:
    """``engine plugin 'acme' (acme-engine 1.0)``, its distribution's where one is installed."""
    dists = {_dist(entry_point) for entry_point in metadata.entry_points(group=GROUP, name=name)}
    return f"engine plugin {name!r}{dists.pop() if len(dists) == 1 else ''}"


def _load(entry_point: metadata.EntryPoint) -> EngineSpec[Any]:
    what = f"engine plugin {entry_point.name!r}{_dist(entry_point)}"
    with _blame(lambda: what, "failed to load", Secrets()):
        spec = entry_point.load()
    if not isinstance(spec, EngineSpec):
        raise PluginError(f"{what}: {entry_point.value} is not an EngineSpec; {FIX}")
    if spec.api != API_VERSION:
        raise PluginError(
            f"{what} is written for engine API {spec.api}, and this wyoming-bodhi has "
            f"{API_VERSION}; upgrade one of them, or {FIX}"
        )
    if spec.name != entry_point.name or not _NAME.fullmatch(spec.name):
        raise PluginError(
            f"{what} is named {spec.name!r}: an engine's name is lower case letters and "
            f"digits, and its entry point's name; {FIX}"
        )
    _check_shape(spec, what)
    return spec


def _check_shape(spec: EngineSpec[Any], what: str) -> None:
    """What the core reads and calls is of the type it reads and calls it as, and every field
    of its settings is a setting: each would otherwise be a traceback somewhere later."""
    for name, kind in _SHAPE:
        value = getattr(spec, name)
        if not isinstance(value, kind):
            raise PluginError(
                f"{what}: its {name} is a {type(value).__name__}, not {kind.__name__}; {FIX}"
            )
    for name in ("models", "build", "check", *(["demo"] if spec.demo is not None else [])):
        if not callable(getattr(spec, name)):
            raise PluginError(f"{what}: its {name} is not callable; {FIX}")
    if spec.simulator is not None and ":" not in str(spec.simulator):
        raise PluginError(f"{what}: its simulator is not 'module:attribute'; {FIX}")
    if not (isinstance(spec.settings, type) and dataclasses.is_dataclass(spec.settings)):
        raise PluginError(f"{what}: its settings are not a dataclass; {FIX}")
    for item in dataclasses.fields(spec.settings):
        if not isinstance(item.metadata.get("spec"), Spec):
            raise PluginError(
                f"{what}: its settings' field {item.name} is not made with setting(), so no "
                f"user could set it; {FIX}"
            )
    declared = declarations_of(spec.settings)
    for setting in declared:
        for flag in filter(None, [setting.flag, *(alias.flag for alias in setting.aliases)]):
            if not _FLAG.fullmatch(flag):
                raise PluginError(
                    f"{what}: its setting {setting.name} has the flag {flag!r}: a flag is -- "
                    f"and lower-case words joined by -; {FIX}"
                )
    names = {setting.name for setting in declared}
    for setting_name in (spec.credential, spec.url_setting):
        if setting_name not in names:
            raise PluginError(f"{what} names {setting_name!r}, which is not one of its settings")
    # Its defaults are what every unconfigured engine runs with.
    with _blame(lambda: what, "failed to make its settings", Secrets()):
        spec.settings()


def discover(
    entry_points: Iterable[metadata.EntryPoint], only: Collection[str] | None = None
) -> tuple[EngineSpec[Any], ...]:
    """The engines of these entry points (all of them, or those named in ``only``), loaded
    and checked, in priority order. Raises :class:`PluginError`."""
    found = list(entry_points)
    if only is not None:
        wanted = set(only)
        missing = wanted - {entry_point.name for entry_point in found}
        if missing:
            raise PluginError(
                f"{ONLY} names {', '.join(sorted(missing))}, which is not installed; "
                f"installed: {', '.join(sorted({e.name for e in found})) or 'none'}"
            )
        found = [entry_point for entry_point in found if entry_point.name in wanted]
    specs: dict[str, EngineSpec[Any]] = {}
    for entry_point in found:
        spec = _load(entry_point)
        if spec.name in specs:
            raise PluginError(
                f"two engine plugins are named {spec.name!r}{_dist(entry_point)}: uninstall "
                f"one, or leave it out with {ONLY}"
            )
        specs[spec.name] = spec
    engines = tuple(sorted(specs.values(), key=lambda spec: (spec.priority, spec.name)))
    check_settings(engines)
    return engines


def check_settings(engines: Iterable[EngineSpec[Any]], reserved: Collection[str] = ()) -> None:
    """No two settings share a way of being given (:meth:`Spec.ways`), and none is given in
    one of the ``reserved`` ways (the server's own flags, variables and setting names): the
    parser could not be built, or one value would set two things. Raises
    :class:`PluginError`."""
    owners: dict[str, tuple[str, str]] = dict.fromkeys(reserved, ("", ""))
    for spec in engines:
        for declared in declarations_of(spec.settings):
            for way in declared.ways():
                engine, setting = owners.setdefault(way, (spec.name, declared.name))
                if (engine, setting) == (spec.name, declared.name):
                    continue
                if not engine:
                    raise PluginError(
                        f"{_what(spec.name)} declares {way}, which is the server's own; {FIX}"
                    )
                if engine == spec.name:
                    raise PluginError(
                        f"{_what(spec.name)} declares {way} for both {setting} and "
                        f"{declared.name}; {FIX}"
                    )
                raise PluginError(
                    f"engine plugins {engine!r} and {spec.name!r} both declare {way}: leave "
                    f"one out with {ONLY}"
                )


def _only(environ: Mapping[str, str]) -> list[str] | None:
    names = [name.strip() for name in environ.get(ONLY, "").split(",") if name.strip()]
    return names or None


@functools.cache
def installed() -> tuple[EngineSpec[Any], ...]:
    """The installed engines (less those ``WYOMING_BODHI_ENGINES`` leaves out), in priority
    order. Raises :class:`PluginError`, also when there is none."""
    engines = discover(metadata.entry_points(group=GROUP), _only(os.environ))
    if not engines:
        raise PluginError(
            f"no engine plugins are installed (entry points {GROUP}): install the package "
            "(pip install -e . in a clone), not just its files"
        )
    return engines


def builtin() -> tuple[EngineSpec[Any], ...]:
    """The engines this project ships, whatever else is installed (the add-on's files)."""
    return discover(
        entry_point
        for entry_point in metadata.entry_points(group=GROUP)
        if _normalised(getattr(entry_point.dist, "name", "")) == DISTRIBUTION
    )


def _normalised(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def simulator(spec: EngineSpec[Any]) -> Simulate | None:
    """The target of an engine's simulator reference, imported now; None if it has none.
    Raises :class:`PluginError` for a reference that does not resolve."""
    if spec.simulator is None:
        return None
    module, _, attribute = spec.simulator.partition(":")
    with blamed(spec, f"load its simulator {spec.simulator}"):
        target: Simulate = getattr(importlib.import_module(module), attribute)
    if not callable(target):
        raise PluginError(f"{_what(spec.name)}: its simulator {spec.simulator} is not callable")
    return target


# -- calling a plugin's code -------------------------------------------------------------


def models(spec: EngineSpec[S], settings: S) -> tuple[Model, ...]:
    """The engine's models under these settings: at least one, each a :class:`Model`, no
    name twice. Raises :class:`PluginError`."""
    with blamed(spec, "list its models", settings):
        offered = tuple(spec.models(settings))
    if not offered:
        raise PluginError(f"{_what(spec.name)} offers no model; {FIX}")
    names: set[str] = set()
    for model in offered:
        if not isinstance(model, Model):
            raise PluginError(
                f"{_what(spec.name)} offers {quoted(model)}, which is not a Model; {FIX}"
            )
        if model.name in names:
            raise PluginError(f"{_what(spec.name)} offers the model {model.name!r} twice; {FIX}")
        names.add(model.name)
    return offered


def check_models(offered: Iterable[tuple[EngineSpec[Any], Sequence[Model]]]) -> None:
    """No model name is offered by two engines: a request naming it could go to either, and
    Home Assistant would list it twice. Raises :class:`PluginError`."""
    owners: dict[str, str] = {}
    for spec, engine_models in offered:
        for model in engine_models:
            owner = owners.setdefault(model.name, spec.name)
            if owner != spec.name:
                raise PluginError(
                    f"engine plugins {owner!r} and {spec.name!r} both offer the model "
                    f"{model.name!r}: a request naming it could go to either; leave one out "
                    f"with {ONLY}"
                )


def build(spec: EngineSpec[S], settings: S, context: EngineContext) -> Engine:
    """The engine, built once at start-up (a request never builds one). Raises
    :class:`PluginError`."""
    with blamed(spec, "build its engine", settings):
        engine = spec.build(settings, context)
    if getattr(engine, "name", None) != spec.name:
        raise PluginError(
            f"{_what(spec.name)}: its build gave {type(engine).__name__}, which is not an "
            f"engine named {spec.name!r}; {FIX}"
        )
    return engine


@contextlib.contextmanager
def blamed(spec: EngineSpec[Any], doing: str, settings: object = None) -> Iterator[None]:
    """Whatever the plugin's code raises while ``doing`` something as one line naming the
    plugin (:class:`PluginError`), with the secrets among ``settings`` (its settings, or a
    mapping of their values) blanked out. Its own :class:`SettingsError` is its own words,
    blanked and made one line; a Ctrl-C is still a Ctrl-C."""

    def value(name: str) -> Any:
        if isinstance(settings, Mapping):
            return settings.get(name)
        return getattr(settings, name, None)

    secrets = Secrets(
        str(value(declared.name))
        for declared in declarations_of(spec.settings)
        if declared.secret and value(declared.name)
    )
    with _blame(lambda: _what(spec.name), f"failed to {doing}", secrets):
        yield


@contextlib.contextmanager
def _blame(what: Callable[[], str], doing: str, secrets: Secrets) -> Iterator[None]:
    with _ctrl_c() as pressed:
        try:
            yield
        except SettingsError as err:
            said = printable(secrets.text(str(err)), None)
            if said == str(err):
                raise
            raise type(err)(said) from None
        except (asyncio.CancelledError, GeneratorExit, Stopped):
            # Stopped: the user's SIGTERM or Ctrl-C while the plugin loads, not its failure.
            raise
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt) and pressed():
                raise
            cause = printable(secrets.text(_cause(err)), 300)
            raise PluginError(f"{what()} {doing}: {cause}; {FIX}") from err


def _cause(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return f"it called sys.exit({err.code!r})"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


@contextlib.contextmanager
def _ctrl_c() -> Iterator[Callable[[], bool]]:
    """Whether a KeyboardInterrupt is the user's (a SIGINT came) rather than a plugin's own
    raise. Only Python's own SIGINT handler, in the main thread, can be watched so; where
    another handles SIGINT (asyncio's runner, a program that ignores it), every
    KeyboardInterrupt is taken to be the user's. Where the command took the stop signals
    (:mod:`..stopping`), a real Ctrl-C raises Stopped, so a KeyboardInterrupt is the plugin's."""
    if stopping.taken():
        yield lambda: False
        return
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield lambda: True
        return
    received: list[int] = []

    def noted(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, noted)
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


__all__ = [
    "DISTRIBUTION",
    "FIX",
    "GROUP",
    "ONLY",
    "PluginError",
    "blamed",
    "build",
    "builtin",
    "check_models",
    "check_settings",
    "discover",
    "installed",
    "models",
    "simulator",
]
