"""The server's command line: one flag per declared setting that has one (secrets never do),
the core's first, then each engine's under its title."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any, Final

from ..declarations import Spec, declarations_of
from ..declarations.validators import Ranged
from ..engines.plugin import EngineSpec
from .sources import CONFIG_ENV, Declared, RawSettings

OWN_FLAGS: Final = frozenset(
    {"-h", "--help", "--config", "--health-check", "--list-models", "--version"}
)
"""The flags of :func:`build_parser` that are not settings': no setting may take one."""
OWN_NAMES: Final = frozenset({"help", "config", "health_check", "list_models", "version"})
"""The names argparse stores those flags' values under: a setting of one of these names (with
a flag of its own) would share its value, so that ``--acme-check x`` ran a health check."""


def help_for(spec: Spec) -> str:
    extras = []
    if spec.kind != "switch" and spec.default not in (None, (), ""):
        default = spec.default
        extras.append(
            f"default {default.replace('%', '%%') if isinstance(default, str) else default}"
        )
    if isinstance(spec.validator, Ranged):
        extras.append(spec.validator.describe())
    extras.append(f"env {spec.env}")
    return f"{spec.help} ({'; '.join(extras)})"


def _add_flags(parser: argparse._ActionsContainer, specs: Iterable[Spec]) -> None:
    for spec in specs:
        if spec.flag is None:
            continue
        help_text = help_for(spec)
        if spec.kind == "switch":
            parser.add_argument(spec.flag, action="store_true", default=None, help=help_text)
        elif spec.kind == "optional":
            parser.add_argument(
                spec.flag, nargs="?", const=True, default=None, metavar="NAME", help=help_text
            )
        elif spec.kind == "list":
            parser.add_argument(
                spec.flag, dest=spec.name, action="append", default=None,
                help=f"{help_text}; repeatable",
            )  # fmt: skip
        else:
            parser.add_argument(spec.flag, dest=spec.name, default=None, help=help_text)
        for alias in spec.aliases:
            if alias.flag:
                # Still taken, not shown: the new name is the one to learn.
                parser.add_argument(
                    alias.flag, dest=alias.name, default=None, help=argparse.SUPPRESS
                )


def build_parser(
    core: Sequence[Spec], engines: Sequence[EngineSpec[Any]]
) -> argparse.ArgumentParser:
    titles = ", ".join(f"{engine.title} ({engine.vendor})" for engine in engines)
    credentials = ", ".join(
        spec.env for engine in engines for spec in declarations_of(engine.settings) if spec.secret
    )
    parser = argparse.ArgumentParser(
        prog="wyoming-bodhi",
        description=f"Wyoming speech-to-text server for real-time ASR: {titles}. Credentials "
        f"come only from the environment ({credentials}, or their *_FILE forms) or from the "
        "--config file.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"YAML or JSON settings file, e.g. the add-on's /data/options.json (env {CONFIG_ENV})",
    )
    parser.add_argument(
        "--health-check",
        action="store_true",
        help="exit 0 if the wyoming-bodhi server at --uri answers Describe within 2 s",
    )
    parser.add_argument(
        "--list-models", action="store_true", help="print every engine's models and exit"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_flags(parser, core)
    for engine in engines:
        group = parser.add_argument_group(f"{engine.title} ({engine.languages})")
        _add_flags(group, declarations_of(engine.settings))
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def from_arguments(declared: Declared, args: argparse.Namespace, raw: RawSettings) -> None:
    for spec in declared.specs:
        value = getattr(args, spec.name, None) if spec.flag else None
        if value is not None:
            raw.put(spec.name, value, spec.flag or spec.name)
        for alias in spec.aliases:
            value = getattr(args, alias.name, None) if alias.flag else None
            if value is not None:
                raw.put(alias.name, value, alias.flag or alias.name)
