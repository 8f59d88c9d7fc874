"""The installed engines: every :class:`~.plugin.EngineSpec` registered under the entry-point
group ``wyoming_bodhi.engines``, the shipped ones included.

A distribution registers an engine in its ``pyproject.toml``::

    [project.entry-points."wyoming_bodhi.engines"]
    acme = "acme_engine:ENGINE"

A plugin that cannot be loaded, or that does not fit (another API version, a name taken, a
setting whose name, variable or flag another engine or the server has), stops the start with
one line that names it and says what to do: a server that silently lost an engine would take
its key as an unknown setting and send its language to another engine.
``WYOMING_BODHI_ENGINES`` (names, comma-separated) leaves the others out without uninstalling
them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import re
from collections.abc import Collection, Iterable, Mapping
from importlib import metadata
from typing import Any, Final

from ..declarations import SettingsError, declarations_of
from .plugin import API_VERSION, EngineSpec, Simulate

GROUP: Final = "wyoming_bodhi.engines"
ONLY: Final = "WYOMING_BODHI_ENGINES"
"""An environment variable, not a setting: which settings exist depends on it."""
DISTRIBUTION: Final = "wyoming-bodhi"
"""This project's distribution: its engines are the shipped ones."""

_NAME = re.compile(r"[a-z][a-z0-9]*")
FIX: Final = f"uninstall it, or leave it out with {ONLY}=<the engines to use>"


class PluginError(SettingsError):
    """An engine plugin cannot be used; the message names it and says what to do."""


def _dist(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return f" ({dist.name} {dist.version})" if dist is not None else ""


def _load(entry_point: metadata.EntryPoint) -> EngineSpec[Any]:
    what = f"engine plugin {entry_point.name!r}{_dist(entry_point)}"
    try:
        spec = entry_point.load()
    except Exception as err:
        raise PluginError(
            f"{what} failed to load: {err.__class__.__name__}: {err}; {FIX}"
        ) from None
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
    if not dataclasses.is_dataclass(spec.settings):
        raise PluginError(f"{what}: its settings are not a dataclass; {FIX}")
    names = {declared.name for declared in declarations_of(spec.settings)}
    for setting in (spec.credential, spec.url_setting):
        if setting not in names:
            raise PluginError(f"{what} names {setting!r}, which is not one of its settings")
    return spec


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
                        f"engine plugin {spec.name!r} declares {way}, which is the server's "
                        f"own; leave it out with {ONLY}=<the engines to use>"
                    )
                if engine == spec.name:
                    raise PluginError(
                        f"engine plugin {spec.name!r} declares {way} for both {setting} and "
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
    try:
        target: Simulate = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise PluginError(
            f"engine plugin {spec.name!r}: its simulator {spec.simulator} does not load "
            f"({err.__class__.__name__}: {err})"
        ) from None
    return target


__all__ = [
    "DISTRIBUTION",
    "FIX",
    "GROUP",
    "ONLY",
    "PluginError",
    "builtin",
    "check_settings",
    "discover",
    "installed",
    "simulator",
]
