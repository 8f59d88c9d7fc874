"""One setting's declaration: a dataclass field whose metadata says how it is given.

A settings class (the core's, or an engine's) is a frozen dataclass; each field is made with
:func:`setting`, which attaches a :class:`Spec`. :func:`declarations_of` reads them back, with
the field's name, default and flag filled in. The schema, the command-line flags, ``--help``,
the status page and the add-on's files are all built from these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal

from .validators import boolean

Kind = Literal["value", "switch", "list", "optional"]


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it, where it came from, and what is
    expected, in one line."""


@dataclass(frozen=True, slots=True)
class Alias:
    """An old name of a setting, still read (with a deprecation warning): its config key,
    environment variable and flag."""

    name: str
    env: str
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is given and checked (the metadata of a settings field)."""

    env: str
    flag: str | None
    help: str
    validator: Callable[[Any], Any]
    kind: Kind = "value"
    """How the flag is given: a value, a ``switch`` (no value), a repeatable ``list``, or an
    ``optional`` value."""
    secret: bool = False
    """Never a flag (flags show in process listings); never shown, never logged: redacted
    wherever an engine or a server could echo it."""
    name: str = ""
    default: Any = None
    aliases: tuple[Alias, ...] = ()
    """Old names still read, with a warning."""
    addon: bool = True
    """An option of the Home Assistant add-on."""
    why_not_addon: str = ""
    """Why not, when it is not (the add-on file generator and its test ask)."""
    addon_type: str | None = None
    """The Supervisor's option type, where the validator's does not say it (``str?``)."""
    title: str = ""
    """The add-on's name for it ("Chunk length (ms)"); empty: derived from the name."""
    description: str = ""
    """The add-on's longer text for it; empty: the help. ``{range}`` in it stands for the
    validator's range in words ("20 to 500"), so that the text cannot drift from it."""


def setting(
    default: Any,
    validator: Callable[[Any], Any],
    env: str,
    help: str,
    *,
    flag: str | Literal["auto"] | None = "auto",
    kind: Kind = "value",
    secret: bool = False,
    aliases: tuple[Alias, ...] = (),
    addon: bool = True,
    why_not_addon: str = "",
    addon_type: str | None = None,
    title: str = "",
    description: str = "",
) -> Any:
    """A settings field; ``flag="auto"`` is ``--`` and the name with dashes. A secret is never
    a flag, and never in the dataclass's repr."""
    if secret and flag not in ("auto", None):
        raise ValueError(f"{env}: a secret is never a flag (flags show in process listings)")
    if not addon and not why_not_addon:
        raise ValueError(f"{env}: say why it is not an add-on option (why_not_addon)")
    spec = Spec(
        env,
        None if flag == "auto" or secret else flag,
        help,
        validator,
        kind,
        secret,
        aliases=aliases,
        addon=addon,
        why_not_addon=why_not_addon,
        addon_type=addon_type,
        title=title,
        description=description,
    )
    auto = flag == "auto" and not secret
    return field(default=default, repr=not secret, metadata={"spec": spec, "auto_flag": auto})


def switch(env: str, help: str, **options: Any) -> Any:
    """An on/off setting: off unless given (a flag without a value)."""
    return setting(False, boolean, env, help, kind="switch", **options)


def declarations_of(cls: type[Any]) -> tuple[Spec, ...]:
    """The declarations of a settings dataclass, in field order, with their names, defaults
    and flags filled in."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a settings dataclass")
    specs = []
    for item in fields(cls):
        spec = item.metadata.get("spec")
        if not isinstance(spec, Spec):
            continue
        flag = "--" + item.name.replace("_", "-") if item.metadata["auto_flag"] else spec.flag
        specs.append(replace(spec, name=item.name, flag=flag, default=item.default))
    return tuple(specs)
