"""The Home Assistant add-on's files: written from the settings' declarations
(scripts/addon_files.py), taken by the Supervisor and its linter, and loaded by the server."""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import tomllib
import zlib
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import voluptuous as vol
import yaml

from wyoming_bodhi import settings
from wyoming_bodhi.declarations import declarations_of, setting, switch, validators
from wyoming_bodhi.declarations.validators import OptionalRanged, Ranged
from wyoming_bodhi.engines import registry
from wyoming_bodhi.engines.bodhi import errors as bodhi_errors
from wyoming_bodhi.engines.bodhi.catalog import Catalog
from wyoming_bodhi.engines.bodhi.engine import VAD_ENDPOINT_SILENCE
from wyoming_bodhi.server.listener import CLOSING_TIME
from wyoming_bodhi.settings import SCHEMA, SettingsError, load, validate

from . import addon_rules
from .harness import API_KEY, CUSTOMER_ID

ROOT = Path(__file__).resolve().parent.parent
ADDON = yaml.safe_load((ROOT / "addon.yaml").read_text(encoding="utf-8"))
TRANSLATIONS = yaml.safe_load((ROOT / "translations" / "en.yaml").read_text(encoding="utf-8"))

# The Supervisor's option types: str, password, int, float, bool, list(a|b), match(re),
# optionally ranged, "?" for optional; a one-element list for a list of such values.
ADDON_TYPE = re.compile(
    r"^(?P<type>str|password|int|float|bool|email|url|port|list|match)"
    r"(?:\((?P<args>.*)\))?(?P<optional>\?)?$"
)
NUMERIC = sorted(
    name
    for name, kind in ADDON["schema"].items()
    if isinstance(kind, str) and kind.startswith(("int", "float"))
)


def load_script(name: str) -> ModuleType:
    """A script of scripts/ as a module, to run it in memory."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ADDON_FILES = load_script("addon_files")


def addon_type(name: str) -> re.Match[str]:
    spec = ADDON["schema"][name]
    if isinstance(spec, list):
        (spec,) = spec
    match = ADDON_TYPE.match(spec)
    assert match is not None, f"{name}: {spec!r} is not a Supervisor option type"
    return match


def accepts(name: str, value: Any) -> bool:
    try:
        SCHEMA({"api_key": API_KEY, name: value})
    except vol.Invalid:
        return False
    return True


def addon_options(**changes: Any) -> dict[str, Any]:
    """options.json as the Supervisor writes it: the defaults, the user's changes."""
    options = {**ADDON["options"], "api_key": API_KEY, "customer_id": CUSTOMER_ID}
    options.update(changes)
    return options


def test_the_manifest_has_the_official_add_ons_fields() -> None:
    for field in ("name", "version", "slug", "description", "url", "arch", "homeassistant"):
        assert ADDON[field], field
    assert ADDON["slug"] == "bodhi"
    assert ADDON["init"] is False
    assert ADDON["discovery"] == ["wyoming"]
    assert ADDON["ports"] == {"10300/tcp": None}
    assert set(ADDON["ports_description"]) == {"10300/tcp"}
    # armv7: numpy and soxr publish no armv7 wheels, and the official add-ons dropped it.
    assert ADDON["arch"] == ["amd64", "aarch64"]
    assert re.fullmatch(r"\d{4}\.\d+\.\d+", str(ADDON["homeassistant"]))


def test_the_supervisor_waits_for_a_clean_stop() -> None:
    # After SIGTERM the add-on's server (no drain delay: run-addon.sh) gives in-flight
    # requests shutdown_timeout to finish, then answers the rest and closes within
    # CLOSING_TIME; the Supervisor's stop timeout (10 to 300 s) must cover that, with room.
    assert "--drain-delay 0" in (ROOT / "docker" / "run-addon.sh").read_text(encoding="utf-8")
    shutdown_timeout = SCHEMA({"api_key": API_KEY})["shutdown_timeout"]
    # Left out, the Supervisor's default (the linter's too): 10 s.
    timeout = ADDON.get("timeout", addon_rules.LINTER_DEFAULTS["timeout"])
    assert 10 <= timeout <= 300
    assert timeout >= shutdown_timeout + CLOSING_TIME + 2


def test_the_version_is_the_package_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert ADDON["version"] == project["version"]


# -- written from the declarations (scripts/addon_files.py) ----------------------------------


def test_the_committed_addon_files_are_what_the_script_writes() -> None:
    for path, text in ADDON_FILES.render().items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, (
            f"{path} is not what the settings' declarations give: run "
            "python scripts/addon_files.py and commit the result"
        )


def test_an_installed_plugin_is_no_add_on_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # The add-on ships this project's engines only, whatever else the developer installed.
    installed = metadata.entry_points

    def with_another(**params: Any) -> list[metadata.EntryPoint]:
        echo = metadata.EntryPoint("echo", "tests.engine_fixtures:ECHO", registry.GROUP)
        return [*installed(**params), echo]

    monkeypatch.setattr(metadata, "entry_points", with_another)
    registry.installed.cache_clear()
    try:
        assert "echo" in [spec.name for spec in registry.installed()]
        files = ADDON_FILES.render()
    finally:
        registry.installed.cache_clear()
    assert files[Path("addon.yaml")] == (ROOT / "addon.yaml").read_text(encoding="utf-8")
    assert "echo" not in files[Path("translations/en.yaml")]


@dataclasses.dataclass(frozen=True)
class ToySettings:
    """One setting of each shape the script knows."""

    toy_key: str | None = setting(None, validators.secret(), "TOY_KEY", "toy key", secret=True)
    toy_url: str = setting("wss://toy.example", validators.websocket_url, "TOY_URL", "toy URL")
    toy_domain: str = setting("a", vol.In(("a", "b")), "TOY_DOMAIN", "a or b")
    toy_words: tuple[str, ...] = setting((), validators.items, "TOY_WORDS", "words", kind="list")
    toy_count: int = setting(
        2, Ranged(int, 0, 1_000_000), "TOY_COUNT", "count", description="Count, {range}."
    )
    toy_frame: int | None = setting(None, OptionalRanged(int, 20, 500), "TOY_FRAME", "frame ms")
    toy_silence: float = setting(0.5, Ranged(float, 0.44, 1.2), "TOY_SILENCE", "silence")
    toy_model: str = setting("", validators.text, "TOY_MODEL", "the model", addon_type="str?")
    toy_on: bool = switch("TOY_ON", "turn it on", title="Toy on", description="Turns it on.")


TOY = {spec.name: spec for spec in declarations_of(ToySettings)}


@pytest.mark.parametrize(
    ("name", "kind", "default"),
    [
        ("toy_key", "password?", ""),  # a secret: a password field, shown empty, never a value
        ("toy_url", "str", "wss://toy.example"),
        ("toy_domain", "list(a|b)", "a"),
        ("toy_words", ["str"], []),
        ("toy_count", "int(0,1000000)", 2),  # never 1e+06, which the Supervisor cannot read
        ("toy_frame", "int(20,500)?", None),  # no default: in the schema only
        ("toy_silence", "float(0.44,1.2)", 0.5),
        ("toy_model", "str?", None),  # as declared; an empty default is no default
        ("toy_on", "bool", False),
    ],
)
def test_each_declaration_gives_its_option_type_and_default(
    name: str, kind: str | list[str], default: Any
) -> None:
    spec = TOY[name]
    assert ADDON_FILES.option_type(spec) == kind
    if default is None:
        assert ADDON_FILES.unset_by_default(spec)
        assert addon_rules.option_problems({name: kind}, {}) == []  # the Supervisor leaves it
    else:
        assert not ADDON_FILES.unset_by_default(spec)
        assert ADDON_FILES.option_default(spec) == default
        assert addon_rules.option_problems({name: kind}, {name: default}) == []


def test_the_texts_come_from_the_declaration_with_its_range() -> None:
    assert (ADDON_FILES.title(TOY["toy_on"]), ADDON_FILES.description(TOY["toy_on"])) == (
        "Toy on",
        "Turns it on.",
    )
    # Without texts: the name and the help.
    assert ADDON_FILES.title(TOY["toy_url"]) == "Toy url"
    assert ADDON_FILES.description(TOY["toy_url"]) == "Toy URL."
    assert ADDON_FILES.description(TOY["toy_count"]) == "Count, 0 to 1000000."
    rangeless = dataclasses.replace(TOY["toy_url"], description="From {range}.")
    with pytest.raises(ADDON_FILES.AddonFilesError, match="says {range}, but it has none"):
        ADDON_FILES.description(rangeless)


def test_the_options_come_in_the_documentations_order_and_all_of_them() -> None:
    specs = [TOY["toy_key"], TOY["toy_url"], TOY["toy_on"]]
    table = "\n## Options\n\n| option | default | what |\n|---|---|---|\n"
    rows = "| `toy_on` | off | x |\n| `toy_key` | empty | x |\n| `toy_url` | x | x |\n"
    ordered = ADDON_FILES.in_documented_order(specs, table + rows + "\n## Next\n| `a` |")
    assert [spec.name for spec in ordered] == ["toy_on", "toy_key", "toy_url"]
    with pytest.raises(ADDON_FILES.AddonFilesError) as caught:
        ADDON_FILES.in_documented_order(specs, table + rows.replace("toy_url", "toy_gone"))
    assert str(caught.value) == (
        "DOCS.md's option table: add a row for toy_url where it belongs in the add-on's form; "
        "remove the rows of toy_gone, which is not an option"
    )


def test_the_manifests_head_is_kept_and_nothing_else() -> None:
    head = ADDON_FILES.manifest_head((ROOT / "addon.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(head)["name"] == "Bodhi" and "options" not in yaml.safe_load(head)
    with pytest.raises(ADDON_FILES.AddonFilesError, match="has no line"):
        ADDON_FILES.manifest_head("name: Bodhi\noptions: {}\n")
    text = ADDON_FILES.manifest("name: Toy\n", [TOY["toy_key"], TOY["toy_frame"]])
    assert yaml.safe_load(text) == {
        "name": "Toy",
        "options": {"toy_key": ""},
        "schema": {"toy_key": "password?", "toy_frame": "int(20,500)?"},
    }


def test_the_defaults_pass_the_settings_schema() -> None:
    defaults = {key: value for key, value in ADDON["options"].items() if value not in (None, "")}
    assert "api_key" not in defaults  # the user must give it
    result = validate({**defaults, "api_key": API_KEY, "customer_id": CUSTOMER_ID})
    data = SCHEMA({**defaults, "api_key": API_KEY})
    server_defaults = SCHEMA({"api_key": API_KEY})
    for name, value in defaults.items():
        assert data[name] == (tuple(value) if isinstance(value, list) else value), name
        assert getattr(result, name) == (tuple(value) if isinstance(value, list) else value)
        # An add-on user gets what a standalone user gets.
        assert server_defaults[name] == data[name], name


def test_secrets_are_passwords_and_either_engines_key_will_do(tmp_path: Path) -> None:
    secrets = set(settings.SECRETS) & set(ADDON["schema"])
    assert {"api_key", "customer_id", "iapp_api_key"} <= secrets
    for name in secrets:
        assert addon_type(name)["type"] == "password", name
        # A Thai-only set-up has no Bodhi key, a Bodhi one no iApp key.
        assert addon_type(name)["optional"], name
        assert ADDON["options"][name] == "", name
    thai_only = {**ADDON["options"], "iapp_api_key": API_KEY}
    loaded = load(["--config", write_options(tmp_path, thai_only)], {})
    assert (loaded.api_key, loaded.model) == (None, "iapp-asrx")
    with pytest.raises(SettingsError, match="^no engine configured"):
        load(["--config", write_options(tmp_path, ADDON["options"])], {})


def test_the_model_is_any_name_the_settings_schema_then_checks() -> None:
    # Text, not a list(...) of the built-in catalogue: the Supervisor would refuse a model
    # added with extra_models before the server could accept it.
    match = addon_type("model")
    assert (match["type"], match["args"]) == ("str", None)
    # Unset by default: Bodhi's default model, or iApp's when only iApp is configured.
    assert match["optional"] and "model" not in ADDON["options"]


def test_the_supervisor_takes_a_model_added_with_extra_models(tmp_path: Path) -> None:
    options = addon_options(extra_models=["pa-general-v2-8khz"], model="pa-general-v2-8khz")
    assert addon_rules.option_problems(ADDON["schema"], options) == []
    loaded = load(["--config", write_options(tmp_path, options)], {})
    assert loaded.model == "pa-general-v2-8khz"
    assert "pa-general-v2-8khz" in loaded.catalog


@pytest.mark.parametrize("model", [*Catalog().names, "iapp-asrx"])
def test_the_supervisor_takes_every_built_in_model(model: str) -> None:
    assert addon_rules.option_problems(ADDON["schema"], addon_options(model=model)) == []


def test_a_model_nobody_configured_stops_the_add_on_naming_the_valid_ones(
    tmp_path: Path,
) -> None:
    options = addon_options(model="pa-general-v2-8khz")  # not added with extra_models
    assert addon_rules.option_problems(ADDON["schema"], options) == []  # text, to the Supervisor
    path = write_options(tmp_path, options)
    with pytest.raises(SettingsError) as caught:
        load(["--config", path], {})
    message = str(caught.value)
    assert message.startswith(
        f"invalid model 'pa-general-v2-8khz' (config file {path}): not a model of a configured "
        "engine; valid models: hi-general-v2-8khz, "
    )
    assert "add Bodhi models with extra_models" in message


def test_home_assistant_api_access_only_for_its_names() -> None:
    assert ADDON.get("homeassistant_api", False) == ("hass_names" in ADDON["schema"])


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_ranges_match_the_settings_schema(name: str) -> None:
    match = addon_type(name)
    assert match["type"] in ("int", "float")
    low, high = (float(part) for part in match["args"].split(","))
    step = 1 if match["type"] == "int" else 0.01
    # The settings schema accepts exactly the add-on's range: its ends, nothing beyond.
    assert accepts(name, low) and accepts(name, high)
    assert not accepts(name, low - step) and not accepts(name, high + step)
    if name in ADDON["options"]:
        python_type = int if match["type"] == "int" else float
        assert isinstance(ADDON["options"][name], python_type)
        assert low <= ADDON["options"][name] <= high
    else:
        assert match["optional"]  # unset: the server's default (off / Bodhi's)


# -- the Supervisor's schema and the add-on linter's rules (tests/addon_rules.py) ------------


def test_the_manifest_passes_the_supervisors_schema() -> None:
    assert addon_rules.supervisor_problems(ADDON) == []


def test_the_manifest_passes_the_add_on_linter() -> None:
    assert addon_rules.linter_problems(ADDON) == []
    assert addon_rules.linter_warnings(ADDON) == []


def test_the_defaults_pass_the_supervisors_option_checks() -> None:
    assert addon_rules.option_problems(ADDON["schema"], ADDON["options"]) == []
    assert addon_rules.option_problems(ADDON["schema"], addon_options()) == []


def test_the_translations_pass_the_supervisors_schema() -> None:
    assert addon_rules.translation_problems(TRANSLATIONS) == []


def test_the_supervisor_builds_without_a_build_file() -> None:
    assert addon_rules.build_file_problems(ROOT) == []


def test_the_status_page_is_on_the_supervisors_default_ingress_port() -> None:
    # config.yaml leaves ingress_port at its default (the linter wants it left out), so the
    # start script must serve the status page there.
    assert "ingress_port" not in ADDON
    default = addon_rules.LINTER_DEFAULTS["ingress_port"]
    script = (ROOT / "docker" / "run-addon.sh").read_text(encoding="utf-8")
    assert f"ingress_port=${{ADDON_INGRESS_PORT:-{default}}}" in script


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"timeout": 5}, "value must be at least 10"),
        ({"slug": "bodhi stt"}, "does not match regular expression"),
        ({"arch": ["amd64", "riscv64"]}, "value must be one of"),
        ({"ports": {"10300/tcp": "x"}}, "not a valid value"),
        ({"schema": {"model": "text"}}, "does not match regular expression"),
        ({"schema": {"model": ["str", "int"]}}, "not an option type"),
        ({"ingress_port": 70000}, "value must be at most 65535"),
        ({"build_from": {"amd64": "x"}}, "'build_from' is not a manifest key"),
        ({"arch": ["amd64", "armv7"]}, "uses deprecated 'arch' values: ['armv7']"),
        ({"advanced": True}, "deprecated 'advanced' config field"),
        ({"ingress_port": 0, "ports": {"62000/tcp": None}}, "a dynamic ingress port"),
    ],
)
def test_the_supervisor_rules_find_what_the_supervisor_refuses(
    changes: dict[str, Any], problem: str
) -> None:
    problems = addon_rules.supervisor_problems({**ADDON, **changes})
    assert any(problem in found for found in problems), problems


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"ingress_port": 8099}, "'ingress_port' should be removed, it uses a default value"),
        ({"init": True}, "'init' should be removed, it uses a default value"),
        ({"timeout": 10}, "'timeout' should be removed, it uses a default value"),
        ({"panel_icon": "mdi:puzzle"}, "'panel_icon' should be removed"),
        ({"homeassistant_api": False}, "'homeassistant_api' should be removed"),
        ({"webui": "http://[HOST]:[PORT:8099]/"}, "'webui' should be removed, Ingress is enabled"),
        ({"ingress_port": 0}, "'ingress_port' this does not run on the host network"),
        ({"watchdog": "tcp://[HOST]:[PORT:10300]"}, "'watchdog', is obsolete"),
        ({"codenotary": "a@b.c"}, "'codenotary' is deprecated"),
        ({"timeout": "20"}, "'timeout': '20' is not of type"),
        ({"init": 1}, "'init' should be removed"),  # Python's 1 == True, as in the linter
        ({"startup": "before"}, "'startup': 'before' is not one of"),
        ({"build": "x"}, "'build' was unexpected"),
    ],
)
def test_the_linter_rules_find_what_the_linter_reports(
    changes: dict[str, Any], problem: str
) -> None:
    problems = addon_rules.linter_problems({**ADDON, **changes})
    assert any(problem in found for found in problems), problems


def test_the_linter_warns_about_deprecated_arches() -> None:
    warnings = addon_rules.linter_warnings({**ADDON, "arch": ["amd64", "aarch64", "armv7"]})
    assert warnings == ["Architecture 'armv7' is deprecated"]


@pytest.mark.parametrize(
    ("schema", "options", "problem"),
    [
        ({"model": "list(a|b)?"}, {"model": "c"}, "Option 'model': 'c': value must be one of"),
        ({"n": "int(1,5)"}, {"n": 6}, "value must be at most 5"),
        ({"n": "float(0.5,)"}, {"n": 0.1}, "value must be at least 0.5"),
        ({"words": ["str"]}, {"words": "batti"}, "Option 'words': expected a list"),
        ({"key": "password"}, {}, "Missing option 'key'"),
        ({"key": "str"}, {"key": "x", "other": 1}, "Option 'other' does not exist"),
    ],
)
def test_the_option_rules_find_what_the_supervisor_refuses(
    schema: dict[str, Any], options: dict[str, Any], problem: str
) -> None:
    problems = addon_rules.option_problems(schema, options)
    assert any(problem in found for found in problems), problems


def test_the_translation_rules_find_what_the_supervisor_refuses() -> None:
    problems = addon_rules.translation_problems({"configuration": {"model": {"title": "x"}}})
    assert any("required key not provided" in problem for problem in problems), problems


def test_a_build_file_is_found_as_the_supervisor_finds_it(tmp_path: Path) -> None:
    (tmp_path / "build.yaml").write_text("{}", encoding="utf-8")
    (tmp_path / "build.txt").write_text("", encoding="utf-8")
    assert addon_rules.build_file_problems(tmp_path) == [
        "App uses build.yaml which is deprecated. Move build parameters into the Dockerfile"
    ]


# -- options.json through the real loader -----------------------------------------------


def write_options(tmp_path: Path, options: dict[str, Any]) -> str:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options), encoding="utf-8")
    return str(path)


def test_the_supervisors_options_json_loads(tmp_path: Path) -> None:
    path = write_options(tmp_path, addon_options(model="ta-banking-v2-8khz", chunk_ms=200))
    loaded = load(["--config", path], {})
    assert loaded.api_key == API_KEY
    assert loaded.customer_id == CUSTOMER_ID
    assert loaded.model == "ta-banking-v2-8khz"
    assert loaded.chunk_ms == 200
    assert loaded.bodhi_url == ADDON["options"]["bodhi_url"]
    assert loaded.uri == settings.DEFAULT_URI  # run-addon.sh passes --uri


def test_an_empty_customer_id_is_no_customer_id(tmp_path: Path) -> None:
    # The default endpoint needs one; a key-only platform does not.
    options = addon_options(customer_id="", bodhi_url="wss://key-only.example")
    assert load(["--config", write_options(tmp_path, options)], {}).customer_id is None
    with pytest.raises(SettingsError, match=r"^missing the Bodhi customer id"):
        load(["--config", write_options(tmp_path, addon_options(customer_id=""))], {})


def test_demo_needs_no_credentials(tmp_path: Path) -> None:
    options = {**ADDON["options"], "api_key": "anything", "demo": True}
    assert load(["--config", write_options(tmp_path, options)], {}).demo is True


def test_lists_and_optional_numbers_load(tmp_path: Path) -> None:
    options = addon_options(
        extra_models=["pa-general-v2-8khz"],
        hotwords=["batti:2.0", "pankha"],
        endpoint_silence=0.7,
        min_confidence=0.5,
    )
    loaded = load(["--config", write_options(tmp_path, options)], {})
    assert "pa-general-v2-8khz" in loaded.catalog
    assert [hotword.phrase for hotword in loaded.hotwords] == ["batti", "pankha"]
    assert (loaded.endpoint_silence, loaded.min_confidence) == (0.7, 0.5)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"chunk_ms": 10},
            "invalid chunk_ms '10' (config file OPTIONS): value must be at least 20",
        ),
        (
            {"chunk_ms": 20},
            "invalid chunk_ms 20 (config file OPTIONS): Bodhi takes frames of 50 to 500 ms",
        ),
        ({"customer_id": "not-a-uuid"}, "invalid customer_id (config file OPTIONS): is not a UUID"),
        ({"domain": "retail"}, "invalid domain 'retail' (config file OPTIONS)"),
        ({"lead": 31}, "invalid lead '31' (config file OPTIONS)"),
        ({"extra_models": ["not a model"]}, "invalid extra_models"),
        ({"bodhi_url": "https://bodhi.navana.ai"}, "invalid bodhi_url"),
        ({"hotwords": ["batti:99"]}, "invalid hotwords"),
        ({"endpoint_silence": 2}, "invalid endpoint_silence"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    path = write_options(tmp_path, addon_options(**changes))
    with pytest.raises(SettingsError) as caught:
        load(["--config", path], {})
    message = str(caught.value)
    assert message.startswith(expected.replace("OPTIONS", path)), message
    assert "\n" not in message
    assert CUSTOMER_ID not in message and API_KEY not in message
    if "customer_id" in changes:
        assert changes["customer_id"] not in message  # a credential is never echoed


# -- the add-on store ---------------------------------------------------------------------
# How the Supervisor reads an add-on repository (home-assistant/supervisor, read at 090ef31,
# August 2026):
# - supervisor/store/repository.py, RepositoryGit.validate: the clone must hold
#   repository.(yaml|yml|json) at its root, valid under SCHEMA_REPOSITORY_CONFIG
#   (supervisor/store/validate.py: name required; url a URL and maintainer a string, optional;
#   other keys dropped).
# - supervisor/store/data.py, StoreData._find_app_configs: an add-on is every file matching
#   path.glob("**/config.*") whose suffix is .yaml/.yml/.json and none of whose path parts
#   starts with "." or is "rootfs"; "**" includes the root itself. Its folder is the add-on's
#   location: translations/ there (_read_app_translations), and supervisor/apps/model.py reads
#   icon.png, logo.png, CHANGELOG.md, DOCS.md and README.md from it.
# - supervisor/utils/common.py, find_one_filetype: repository.* and build.* are the first
#   match of a recursive glob, so no other file may carry those names.
# Our add-on lives at the root, beside the Dockerfile its build needs as its context.

PROJECT_URL = "https://github.com/wyoming-bodhi/wyoming-bodhi"
CONFIGURATION_SUFFIXES = {".yaml", ".yml", ".json"}


def store_files(root: Path, stem: str) -> list[Path]:
    """What the Supervisor's glob for ``**/STEM.*`` keeps under ``root`` (_find_app_configs).

    Hidden folders are pruned rather than walked and filtered, as .venv is large; the
    Supervisor drops everything under them all the same.
    """
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        if "rootfs" in Path(folder).relative_to(root).parts:
            continue
        for name in files:
            path = Path(folder, name)
            if fnmatch.fnmatchcase(name, f"{stem}.*") and path.suffix in CONFIGURATION_SUFFIXES:
                found.append(path.relative_to(root))
    return sorted(found)


def test_config_yaml_is_addon_yaml() -> None:
    # The Supervisor reads only config.yaml; addon.yaml is the same manifest under its own name.
    assert (ROOT / "config.yaml").read_bytes() == (ROOT / "addon.yaml").read_bytes(), (
        "config.yaml differs from addon.yaml: cp addon.yaml config.yaml"
    )


def test_the_store_finds_one_add_on_at_the_root() -> None:
    assert store_files(ROOT, "config") == [Path("config.yaml")]
    # The example config folder is not mistaken for an add-on: "config.*" needs the dot.
    assert (ROOT / "config").is_dir()
    assert store_files(ROOT, "repository") == [Path("repository.yaml")]
    assert store_files(ROOT, "build") == []  # the Dockerfile holds the build (DOCS.md)
    for name in ("Dockerfile", "DOCS.md", "CHANGELOG.md", "README.md", "icon.png", "logo.png"):
        assert (ROOT / name).is_file(), name
    assert (ROOT / "translations" / "en.yaml").is_file()


def test_the_store_search_finds_what_the_supervisor_would(tmp_path: Path) -> None:
    # The rule above, on a tree where it must find a second add-on and skip the rest.
    for name in (
        "config.yaml",
        "sub/config.json",
        "sub/config.txt",
        "config/example.yaml",
        ".hidden/config.yaml",
        "rootfs/etc/config.yaml",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}", encoding="utf-8")
    assert store_files(tmp_path, "config") == [Path("config.yaml"), Path("sub/config.json")]


def test_repository_yaml_is_what_the_supervisor_requires() -> None:
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text(encoding="utf-8"))
    # name is required; url and maintainer are all else it keeps.
    assert set(repository) == {"name", "url", "maintainer"}
    assert isinstance(repository["name"], str) and repository["name"].strip()
    assert isinstance(repository["maintainer"], str) and repository["maintainer"].strip()
    url = urlsplit(repository["url"])
    assert url.scheme == "https" and url.netloc and not url.query


def test_the_project_url_is_the_same_everywhere() -> None:
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert repository["url"] == ADDON["url"] == project["urls"]["Homepage"] == PROJECT_URL


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The chunks of a PNG, each checked against its CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        position += 12 + length
    assert position == len(data)
    return chunks


def png_size(path: Path) -> tuple[int, int]:
    chunks = png_chunks(path.read_bytes())
    kind, header = chunks[0]
    assert kind == b"IHDR" and len(header) == 13
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, color, interlace) == (8, 6, 0)  # 8-bit RGBA, not interlaced
    assert chunks[-1] == (b"IEND", b"")
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * 4)
    return width, height


def test_the_icon_and_logo_have_the_documented_sizes() -> None:
    # Home Assistant's developer docs (docs/apps/presentation.md): icon.png square, 128×128
    # recommended; logo.png about 250×100.
    assert png_size(ROOT / "icon.png") == (128, 128)
    assert png_size(ROOT / "logo.png") == (250, 100)


def test_png_size_rejects_a_damaged_file(tmp_path: Path) -> None:
    data = bytearray((ROOT / "icon.png").read_bytes())
    data[20] ^= 1  # the width, inside IHDR: its CRC no longer matches
    (tmp_path / "icon.png").write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="bad CRC"):
        png_size(tmp_path / "icon.png")


def test_the_drawing_script_reproduces_the_committed_images(tmp_path: Path) -> None:
    # The script is the source of truth: a hand-edited PNG, or a script change whose output
    # was not committed, fails here.
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "draw_icons.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in ("icon.png", "logo.png"):
        assert (tmp_path / name).read_bytes() == (ROOT / name).read_bytes(), (
            f"{name} is not what scripts/draw_icons.py draws: run it and commit the result"
        )


def test_the_license_is_mit_as_pyproject_says() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert project["license"] == "MIT"  # an SPDX expression
    assert license_text.splitlines()[0] == "MIT License"
    assert "Permission is hereby granted, free of charge" in license_text
    assert 'org.opencontainers.image.licenses="MIT"' in (ROOT / "Dockerfile").read_text()


def test_the_changelog_describes_this_version() -> None:
    # The Supervisor shows CHANGELOG.md when it offers an update.
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[?(\d+\.\d+\.\d+)", changelog, re.MULTILINE)
    assert versions and versions[0] == ADDON["version"]


DOCS = (ROOT / "DOCS.md").read_text(encoding="utf-8")


def docs_options_table() -> dict[str, str]:
    """DOCS.md's option table: option name → the rest of its row."""
    section = DOCS[DOCS.index("\n## Options\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+) \|$", section, re.MULTILINE)
    return dict(rows)


def test_the_documentation_tab_gives_every_default() -> None:
    for name, row in docs_options_table().items():
        default = row.split(" | ")[0]
        value = ADDON["options"].get(name)
        if isinstance(value, bool):
            assert default == ("on" if value else "off"), name
        elif isinstance(value, int | float) or value:
            assert default == f"`{value}`", name


def test_the_documentation_tab_covers_every_bodhi_error() -> None:
    codes = {
        cls.code
        for cls in vars(bodhi_errors).values()
        if isinstance(cls, type) and issubclass(cls, bodhi_errors.BodhiError)
    }
    # A message Bodhi sent that we could not read, which is skipped rather than reported.
    codes -= {"bodhi-protocol"}
    assert codes, "no error codes found"
    for code in sorted(codes):
        assert f"`{code}`" in DOCS, code


def test_every_text_agrees_on_vad_sensitivity() -> None:
    # Home Assistant sends only Transcribe(language=...); other clients may send a
    # sensitivity, mapped to Bodhi's endpoint silence by the bridge.
    endpoint = TRANSLATIONS["configuration"]["endpoint_silence"]["description"]
    guide = (ROOT / "docs" / "home-assistant.md").read_text(encoding="utf-8")
    section = guide[guide.index("### How quickly a command ends") :]
    section = section[: section.index("\n#")]
    aggressive, relaxed = VAD_ENDPOINT_SILENCE["aggressive"], VAD_ENDPOINT_SILENCE["relaxed"]
    for text in (endpoint, DOCS, section):
        flat = " ".join(text.split())
        assert "vad_sensitivity" in flat
        for name, seconds in (("aggressive", aggressive), ("relaxed", relaxed)):
            # The name, then its number, within the same clause.
            assert re.search(rf"\b{name}\b[^.;:]{{0,20}}\b{re.escape(str(seconds))}\b", flat), (
                name,
                flat,
            )
        assert "2026.11" in flat  # the Home Assistant version this was checked against
        assert re.search(r"Home Assistant\b.{0,60}?\bsends (only|no)\b", flat), flat
