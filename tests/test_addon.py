"""The Home Assistant add-on manifest agrees with the settings schema and the catalogue."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml

from wyoming_bodhi import catalog, settings
from wyoming_bodhi.catalog import Catalog
from wyoming_bodhi.settings import SCHEMA, SettingsError, load, validate

from .harness import API_KEY, CUSTOMER_ID

ROOT = Path(__file__).resolve().parent.parent
ADDON = yaml.safe_load((ROOT / "addon.yaml").read_text(encoding="utf-8"))
TRANSLATIONS = yaml.safe_load((ROOT / "translations" / "en.yaml").read_text(encoding="utf-8"))
BUILD = yaml.safe_load((ROOT / "build.yaml").read_text(encoding="utf-8"))

# The Supervisor's option types: str, password, int, float, bool, list(a|b), match(re),
# optionally ranged, "?" for optional; a one-element list for a list of such values.
ADDON_TYPE = re.compile(
    r"^(?P<type>str|password|int|float|bool|email|url|port|list|match)"
    r"(?:\((?P<args>.*)\))?(?P<optional>\?)?$"
)
SECRETS = {"api_key", "customer_id"}
# The start script fixes the URI; discovery replaces zeroconf; the add-on log has its own
# format; hass_names reaches Home Assistant through the Supervisor, with no URL or token; the
# manifest's stop timeout covers shutdown_timeout's default; a CA file would need a folder
# mapped into the container. A new setting fails the test below until it is added to the
# add-on or to this set.
NOT_FOR_THE_ADDON = {"uri", "zeroconf", "log_format", "hass_url", "hass_token"}
NOT_FOR_THE_ADDON |= {"shutdown_timeout", "bodhi_ca"}
NUMERIC = ["chunk_ms", "lead", "connect_timeout", "response_timeout"]
NUMERIC += ["endpoint_silence", "no_speech_timeout", "max_command", "min_confidence"]
NUMERIC += ["retries", "retry_budget", "max_sessions", "max_audio"]


def schema_keys() -> dict[str, Any]:
    """The settings schema's keys (names) and their validators."""
    return {str(key.schema): value for key, value in SCHEMA.schema.items()}


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
    # After SIGTERM the server gives in-flight requests shutdown_timeout to finish.
    shutdown_timeout = SCHEMA({"api_key": API_KEY})["shutdown_timeout"]
    assert ADDON["timeout"] >= shutdown_timeout + 5


def test_the_version_is_the_package_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert ADDON["version"] == project["version"]


def test_every_option_is_a_setting_and_every_setting_that_belongs_is_an_option() -> None:
    keys = schema_keys()
    assert set(ADDON["options"]) <= set(keys)
    assert set(ADDON["schema"]) <= set(keys)
    assert set(ADDON["schema"]) == set(keys) - NOT_FOR_THE_ADDON
    assert {setting.name for setting in settings.SETTINGS} == set(keys)


def test_every_schema_entry_has_a_default_or_is_optional() -> None:
    for name in ADDON["schema"]:
        assert name in ADDON["options"] or addon_type(name)["optional"], name
    assert set(ADDON["options"]) <= set(ADDON["schema"])
    for name in ADDON["schema"]:
        addon_type(name)  # a type the Supervisor knows


def test_the_defaults_pass_the_settings_schema() -> None:
    defaults = {key: value for key, value in ADDON["options"].items() if value not in (None, "")}
    assert "api_key" not in defaults  # the user must give it
    result = validate({**defaults, "api_key": API_KEY, "customer_id": CUSTOMER_ID})
    data = SCHEMA({**defaults, "api_key": API_KEY})
    server_defaults = SCHEMA({"api_key": API_KEY})
    for name, value in defaults.items():
        assert data[name] == value, name
        assert getattr(result, name) == (tuple(value) if isinstance(value, list) else value)
        # An add-on user gets what a standalone user gets.
        assert server_defaults[name] == value, name


def test_secrets_are_passwords_and_only_the_key_is_required() -> None:
    assert set(settings.SECRETS) & set(ADDON["schema"]) == SECRETS
    for name in SECRETS:
        assert addon_type(name)["type"] == "password", name
    assert not addon_type("api_key")["optional"]
    assert ADDON["options"]["api_key"] is None  # the Supervisor asks for it before starting
    assert addon_type("customer_id")["optional"]  # key-only platforms do without


def test_the_model_list_is_the_catalogue() -> None:
    match = addon_type("model")
    assert match["type"] == "list"
    assert match["args"].split("|") == Catalog().names
    assert ADDON["options"]["model"] == catalog.DEFAULT_MODEL


def test_the_domain_list_is_the_catalogues() -> None:
    match = addon_type("domain")
    assert match["type"] == "list"
    assert tuple(match["args"].split("|")) == catalog.DOMAINS
    assert ADDON["options"]["domain"] == catalog.DEFAULT_DOMAIN


@pytest.mark.parametrize("name", ["extra_models", "hotwords"])
def test_lists_are_lists_of_strings_empty_by_default(name: str) -> None:
    assert ADDON["schema"][name] == ["str"]
    assert ADDON["options"][name] == []


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


def test_chunk_ms_range_is_the_documented_one() -> None:
    assert addon_type("chunk_ms")["args"] == "50,500"
    assert settings.CHUNK_MS_RANGE == (50, 500)


SWITCHES = ["demo", "debug", "endpointing", "parse_number", "language_id", "transliterate"]
SWITCHES += ["allow_insecure"]


@pytest.mark.parametrize("name", [*SWITCHES, "hass_names"])
def test_switches_are_booleans_off_by_default(name: str) -> None:
    assert addon_type(name)["type"] == "bool"
    assert ADDON["options"][name] is False


def test_the_translations_name_every_option_and_nothing_else() -> None:
    configuration = TRANSLATIONS["configuration"]
    assert set(configuration) == set(ADDON["schema"])
    for name, text in configuration.items():
        assert set(text) == {"name", "description"}, name
        assert text["name"].strip() and text["description"].strip(), name
    assert set(TRANSLATIONS["network"]) == set(ADDON["ports"])


def test_the_build_covers_every_arch() -> None:
    assert set(BUILD["build_from"]) == set(ADDON["arch"])
    for arch, image in BUILD["build_from"].items():
        assert image == f"ghcr.io/home-assistant/{arch}-base-debian:bookworm"


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
    with pytest.raises(SettingsError, match=r"^missing customer_id"):
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
        ({"chunk_ms": 20}, "invalid chunk_ms (--chunk-ms / BODHI_CHUNK_MS) '20': "),
        ({"customer_id": "not-a-uuid"}, "invalid customer_id (BODHI_CUSTOMER_ID): is not a UUID"),
        ({"domain": "retail"}, "invalid domain (--domain / BODHI_DOMAIN) 'retail'"),
        ({"lead": 31}, "invalid lead (--lead / BODHI_LEAD) '31'"),
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
    assert message.startswith(expected), message
    assert "\n" not in message
    assert CUSTOMER_ID not in message and API_KEY not in message
    if "customer_id" in changes:
        assert changes["customer_id"] not in message  # a credential is never echoed
