"""Where setting values come from: the environment (``*_FILE`` for secrets), a YAML or JSON
file, and (:mod:`.command_line`) flags; each value remembers its source, so an error names
what the user actually wrote.

Every function here works over :class:`Declared`: the declarations of the core and of every
registered engine, one flat namespace of names, variables and flags.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import voluptuous as vol
import yaml

from ..declarations import SettingsError, Spec

MAX_SECRET_FILE_BYTES: Final = 64 * 1024
"""A key or token is tens or hundreds of bytes; a longer file is not the one meant."""

CONFIG_ENV: Final = "BODHI_CONFIG"


class Declared:
    """Every setting's declaration: the core's first, then each engine's."""

    def __init__(self, specs: Iterable[Spec]) -> None:
        self.specs = tuple(specs)
        self.by_name: Final = {spec.name: spec for spec in self.specs}
        self.secrets: Final = frozenset(spec.name for spec in self.specs if spec.secret)
        self.aliases: Final = {
            alias.name: (alias, spec) for spec in self.specs for alias in spec.aliases
        }
        """Old names, each with the setting it now is."""

    def schema(self) -> vol.Schema:
        """One voluptuous schema over them all: each value validated, defaults filled in."""
        return vol.Schema(
            {vol.Optional(spec.name, default=spec.default): spec.validator for spec in self.specs}
        )

    def canonical(self, data: dict[str, Any], sources: dict[str, str]) -> tuple[str, ...]:
        """Old names in ``data`` moved to their new ones (in place, ``sources`` too), and a
        deprecation notice for each; both names given is an error."""
        notes = []
        for old, (_, spec) in self.aliases.items():
            if old not in data:
                continue
            given = sources.get(old, old)
            if spec.name in data:
                raise SettingsError(
                    f"set {spec.name} ({self.where(spec.name, sources)}) or its old name "
                    f"{old} ({given}), not both"
                )
            data[spec.name] = data.pop(old)
            sources[spec.name] = sources.pop(old, given)
            ways = ", ".join(filter(None, [spec.flag, spec.env]))
            notes.append(
                f"{old} ({given}) is deprecated: use {spec.name} ({ways}); the old names will "
                "be removed in a later release"
            )
        return tuple(notes)

    def where(self, name: str, sources: Mapping[str, str]) -> str:
        """How the user gave ``name``: a flag, a variable, a config file; or every way they
        could."""
        source = sources.get(name)
        if source is not None:
            return source
        spec = self.by_name.get(name)
        if spec is None:
            return name
        ways = [spec.flag] if spec.flag else []
        ways.append(spec.env)
        return " / ".join(ways)

    def shown(self, name: str, value: Any) -> str:
        """The value as a message shows it: never a secret's, never a URL's user part."""
        if value is None or name in self.secrets:
            return ""
        text = str(value)
        # A URL's user part may be a password: never echo it.
        text = re.sub(r"(//)[^/@]*@", r"\1…@", text)
        return f" '{text[:60]}'"

    def unknown(self, key: str, source: str | None) -> str:
        """'unknown setting' with the nearest known name, also for a variable or flag written
        as a key (``BODHI_LEAD: …`` or ``chunk-ms: …`` in a file)."""
        names = {spec.name: spec.name for spec in self.specs}
        for spec in self.specs:
            names[spec.env.lower()] = spec.name
            if spec.flag:
                names[spec.flag.lstrip("-")] = spec.name
        wanted = key.lower().lstrip("-")
        match = names.get(wanted) or next(
            iter(names[m] for m in difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.6)),
            None,
        )
        where = f" in {source}" if source else ""
        hint = f"; did you mean '{match}'?" if match else "; see config/wyoming-bodhi.example.yaml"
        return f"unknown setting {key!r}{where}{hint}"


class RawSettings(dict[str, Any]):
    """Unvalidated setting values, each with where it came from (for error messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, str] = {}

    def put(self, name: str, value: Any, source: str) -> None:
        self[name] = value
        self.sources[name] = source


def _read_secret_file(env_name: str, path: str) -> str:
    # Every message here names the file, never what is in it: the exception of a failed
    # decode would show a byte of the secret and where it is.
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as err:
        raise SettingsError(f"cannot read {env_name}={path}: {err.strerror}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SettingsError(
            f"{env_name}={path} is longer than {MAX_SECRET_FILE_BYTES} bytes: not a secret file"
        )
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingsError(f"{env_name}={path} is not UTF-8 text") from None


def from_environment(declared: Declared, environ: Mapping[str, str], raw: RawSettings) -> None:
    """Settings given by environment variables (``*_FILE`` for the secrets), under their
    old names too."""
    for spec in declared.specs:
        for name, env in ((spec.name, spec.env), *((a.name, a.env) for a in spec.aliases)):
            file_env = f"{env}_FILE"
            if spec.secret and environ.get(file_env):
                if environ.get(env):
                    raise SettingsError(f"set {env} or {file_env}, not both")
                raw.put(name, _read_secret_file(file_env, environ[file_env]), file_env)
            elif environ.get(env, "") != "":
                raw.put(name, environ[env], env)


def read_config_file(declared: Declared, path: str, raw: RawSettings) -> None:
    """Settings from a YAML or JSON file (JSON is YAML, so one parser serves both)."""
    source = f"config file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read config file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{source} is not UTF-8 text") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except RecursionError:
        # Both parsers recurse per level: a file nested thousands deep is not a config.
        raise SettingsError(f"{source} is nested too deeply") from None
    except json.JSONDecodeError as err:
        raise SettingsError(
            f"{source} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    except yaml.YAMLError as err:
        raise SettingsError(f"{source} is not valid YAML: {_yaml_reason(err)}") from None
    if data is None:
        return
    if not isinstance(data, dict):
        raise SettingsError(f"{source} must hold a mapping of setting: value")
    for key, value in data.items():
        if str(key) not in declared.by_name and str(key) not in declared.aliases:
            raise SettingsError(declared.unknown(str(key), source))
        # Add-on options leave optional strings empty rather than absent.
        if value != "":
            raw.put(str(key), value, source)


def _yaml_reason(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def environment_and_file(
    declared: Declared, config_path: str | None, environ: Mapping[str, str]
) -> RawSettings:
    """The raw layers below the flags: the environment over the config file (``config_path``,
    else ``BODHI_CONFIG``)."""
    raw = RawSettings()
    config_path = config_path or environ.get(CONFIG_ENV)
    if config_path:
        read_config_file(declared, config_path, raw)
    from_environment(declared, environ, raw)
    return raw
