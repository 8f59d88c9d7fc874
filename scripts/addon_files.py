"""Write the add-on's options, schema and translations from the settings' declarations.

    python scripts/addon_files.py [--check]

A build-time tool, like scripts/draw_icons.py: it rewrites what follows the marker line in
addon.yaml (the options and their schema; the hand-written head above the marker stays),
copies addon.yaml to config.yaml, and writes translations/en.yaml. With ``--check`` it writes
nothing and exits 1 if a file differs from what it would write. tests/test_addon.py holds the
committed files to its output, so a new setting is its declaration, a row in DOCS.md's option
table, and a run of this script. Exit status 2: the declarations, the manifest's head and
DOCS.md do not fit together, and the message says what to change.

From each declaration (:class:`~wyoming_bodhi.declarations.Spec`) of the core and of the
engines this project ships (never a plugin that happens to be installed), unless it says
``addon=False``:

- its Supervisor type: ``addon_type`` if given, else from the validator and kind: a secret is
  ``password?``, a switch ``bool``, a list ``[str]``, a range ``int(20,500)`` or
  ``float(0.1,120)``, a choice ``list(a|b)``, anything else ``str``; ``?`` when it may be
  unset (a secret, or no default);
- its default in ``options``: a secret as ``""`` (so that the form shows it), any other set
  default as it is; a setting without one is in the schema only;
- its translation: ``title`` and ``description`` (``{range}`` in it stands for the
  validator's range in words), falling back on the name and the help.

The options come in the order of DOCS.md's option table: the form and its Documentation tab
list them alike, and a setting missing from the table (or a row for none) stops the script.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import voluptuous as vol
import yaml

from wyoming_bodhi.declarations import Spec
from wyoming_bodhi.declarations.validators import Ranged
from wyoming_bodhi.engines import registry
from wyoming_bodhi.settings import declarations

ROOT: Final = Path(__file__).resolve().parent.parent
MANIFEST: Final = Path("addon.yaml")
SUPERVISOR_MANIFEST: Final = Path("config.yaml")
TRANSLATIONS: Final = Path("translations/en.yaml")
DOCUMENTATION: Final = Path("DOCS.md")
MARKER: Final = (
    "# -- written by scripts/addon_files.py from the settings' declarations: edit those --"
)
GENERATED: Final = (
    "# Written by scripts/addon_files.py from the settings' declarations: edit those, not this."
)
WIDTH: Final = 92
"""Where the translations' descriptions wrap (a folded scalar: a line break reads as a
space)."""


class AddonFilesError(Exception):
    """The declarations, the manifest's head or DOCS.md do not fit together; the message says
    what to change."""


# -- one declaration ---------------------------------------------------------------------------


def _number(value: float) -> str:
    """As the Supervisor's type and a reader want it: ``20``, ``0.44``, never ``1e+06``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _range(spec: Spec) -> tuple[str, str] | None:
    if isinstance(spec.validator, Ranged):
        return _number(spec.validator.low), _number(spec.validator.high)
    return None


def unset_by_default(spec: Spec) -> bool:
    """Left out of ``options``: no default to show, so the Supervisor leaves it unset."""
    return not spec.secret and spec.default in (None, "")


def option_type(spec: Spec) -> str | list[str]:
    """The Supervisor's type for the option (its ``schema`` entry)."""
    if spec.addon_type is not None:
        return spec.addon_type
    if spec.kind == "list":
        return ["str"]
    bounds = _range(spec)
    if spec.secret:
        kind = "password"
    elif spec.kind == "switch":
        kind = "bool"
    elif bounds is not None:
        assert isinstance(spec.validator, Ranged)
        kind = f"{spec.validator.kind.__name__}({','.join(bounds)})"
    elif isinstance(spec.validator, vol.In) and isinstance(spec.validator.container, Iterable):
        kind = f"list({'|'.join(str(choice) for choice in spec.validator.container)})"
    else:
        kind = "str"
    return f"{kind}?" if spec.secret or unset_by_default(spec) else kind


def option_default(spec: Spec) -> Any:
    """Its value in ``options`` (only for one that is not :func:`unset_by_default`)."""
    if spec.secret:
        return ""  # never a value: the form shows an empty password field
    if isinstance(spec.default, tuple):
        return list(spec.default)
    return spec.default


def title(spec: Spec) -> str:
    return spec.title or spec.name.replace("_", " ").capitalize()


def description(spec: Spec) -> str:
    text = spec.description or f"{spec.help[:1].upper()}{spec.help[1:]}."
    bounds = _range(spec)
    if "{range}" in text:
        if bounds is None:
            raise AddonFilesError(f"{spec.name}: its description says {{range}}, but it has none")
        text = text.replace("{range}", " to ".join(bounds))
    return " ".join(text.split())


# -- the files ---------------------------------------------------------------------------------


def addon_settings() -> tuple[Spec, ...]:
    """The add-on's settings: the core's and the shipped engines' that are options."""
    return tuple(spec for spec in declarations(registry.builtin()) if spec.addon)


def documented_order(documentation: str) -> list[str]:
    """The option names of DOCS.md's option table (``| `name` | default | what |``), in order."""
    start = documentation.find("\n## Options\n")
    if start < 0:
        raise AddonFilesError(f"{DOCUMENTATION} has no '## Options' section")
    section = documentation[start:]
    end = section.find("\n## ", 1)
    section = section if end < 0 else section[:end]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.MULTILINE)


def in_documented_order(specs: Iterable[Spec], documentation: str) -> list[Spec]:
    by_name = {spec.name: spec for spec in specs}
    order = documented_order(documentation)
    missing = [name for name in by_name if name not in order]
    unknown = [name for name in order if name not in by_name]
    repeated = sorted({name for name in order if order.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"add a row for {', '.join(missing)} where it belongs in the add-on's form")
    if unknown:
        problems.append(f"remove the rows of {', '.join(unknown)}, which is not an option")
    if repeated:
        problems.append(f"{', '.join(repeated)} has more than one row")
    if problems:
        raise AddonFilesError(f"{DOCUMENTATION}'s option table: {'; '.join(problems)}")
    return [by_name[name] for name in order]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list) and not value:
        return "[]"
    if not isinstance(value, str):
        raise AddonFilesError(f"{value!r} has no YAML form here")
    plain = value and value == value.strip() and yaml.safe_load(f"x: {value}") == {"x": value}
    return value if plain else json.dumps(value)


def _mapping(name: str, items: dict[str, Any]) -> list[str]:
    lines = [f"{name}:"]
    for key, value in items.items():
        if isinstance(value, list) and value:
            lines.append(f"  {key}:")
            lines.extend(f"    - {_scalar(item)}" for item in value)
        else:
            lines.append(f"  {key}: {_scalar(value)}")
    return lines


def manifest_head(manifest: str) -> str:
    """What is hand-written: everything above the marker line."""
    head, marker, _ = manifest.partition(f"\n{MARKER}\n")
    if not marker:
        raise AddonFilesError(f"{MANIFEST} has no line {MARKER!r} to write below")
    parsed = yaml.safe_load(head) or {}
    if {"options", "schema"} & set(parsed):
        raise AddonFilesError(f"{MANIFEST}'s head has options or a schema: they are written")
    return head + "\n"


def manifest(head: str, specs: Sequence[Spec]) -> str:
    """The manifest: its head, then the options and their schema."""
    options = {spec.name: option_default(spec) for spec in specs if not unset_by_default(spec)}
    schema = {spec.name: option_type(spec) for spec in specs}
    lines = [
        MARKER,
        "# Credentials are empty by default: one engine's key is needed (the server says so if",
        "# none is given), and any text will do with demo.",
        *_mapping("options", options),
        *_mapping("schema", schema),
    ]
    text = head + "\n".join(lines) + "\n"
    parsed = yaml.safe_load(text)
    if (parsed["options"], parsed["schema"]) != (options, schema):
        raise AddonFilesError(f"{MANIFEST} would not read back as written")
    return text


def translations(ports_description: dict[str, str], specs: Sequence[Spec]) -> str:
    """translations/en.yaml: each option's name and description, then the ports'."""
    configuration = {
        spec.name: {"name": title(spec), "description": description(spec)} for spec in specs
    }
    lines = [GENERATED, "---", "configuration:"]
    for name, entry in configuration.items():
        lines += [f"  {name}:", f"    name: {_scalar(entry['name'])}", "    description: >-"]
        lines += textwrap.wrap(
            entry["description"],
            WIDTH,
            initial_indent=" " * 6,
            subsequent_indent=" " * 6,
            break_long_words=False,
            break_on_hyphens=False,  # a hyphen is no space: hi-general-v2-8khz stays whole
        )
    lines += _mapping("network", ports_description)
    text = "\n".join(lines) + "\n"
    expected = {"configuration": configuration, "network": ports_description}
    if yaml.safe_load(text) != expected:
        raise AddonFilesError(f"{TRANSLATIONS} would not read back as written")
    return text


def render(root: Path = ROOT) -> dict[Path, str]:
    """Every file this script writes, by its path under ``root``, as it would write it."""
    head = manifest_head((root / MANIFEST).read_text(encoding="utf-8"))
    documentation = (root / DOCUMENTATION).read_text(encoding="utf-8")
    specs = in_documented_order(addon_settings(), documentation)
    text = manifest(head, specs)
    ports = yaml.safe_load(head).get("ports_description", {})
    return {
        MANIFEST: text,
        SUPERVISOR_MANIFEST: text,
        TRANSLATIONS: translations(ports, specs),
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is not up to date"
    )
    check = parser.parse_args(argv).check
    try:
        files = render()
    except AddonFilesError as err:
        print(f"addon_files: {err}", file=sys.stderr)
        return 2
    stale = []
    for path, text in files.items():
        target = ROOT / path
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(path))
        if not check:
            target.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"addon_files: not what the declarations give: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
