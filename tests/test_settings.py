"""One voluptuous schema: flags, environment, secret files; clear one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from wyoming_bodhi.engines import registry
from wyoming_bodhi.settings import (
    SettingsError,
    declarations,
    load,
    load_client_settings,
    validate,
)

KEY = "sk-test-0123456789abcdef"
CUSTOMER = str(uuid.uuid4())
BASE_ENV = {"BODHI_API_KEY": KEY, "BODHI_CUSTOMER_ID": CUSTOMER}


def test_defaults() -> None:
    settings = load([], BASE_ENV)
    assert settings.uri == "tcp://0.0.0.0:10300"
    assert settings.bodhi_url == "wss://bodhi.navana.ai"
    assert settings.model == "hi-general-v2-8khz"
    assert settings.domain == "general"
    assert settings.chunk_ms is None  # unset: chosen per engine, see below
    assert settings.lead == 1.0
    assert settings.response_timeout == 5.0
    assert not settings.debug
    assert settings.is_legacy_platform


BODHI_FRAMES = (50, 500)
IAPP_FRAMES = (20, 500)


def test_frames_are_50ms_only_while_endpointing_unless_chunk_ms_is_set() -> None:
    # Unset: 100 ms frames, and 50 ms while Bodhi ends the command (the frame that completes
    # the endpoint waits for its last sample: half the wait).
    assert load([], BASE_ENV).frame_ms(BODHI_FRAMES) == 100
    assert load(["--endpointing"], BASE_ENV).frame_ms(BODHI_FRAMES) == 50
    # What the user sets is what is sent, endpointing or not.
    for flags in (["--chunk-ms", "100", "--endpointing"], ["--chunk-ms", "100"]):
        assert load(flags, BASE_ENV).frame_ms(BODHI_FRAMES) == 100
    env = {**BASE_ENV, "BODHI_CHUNK_MS": "250", "BODHI_ENDPOINTING": "1"}
    assert load([], env).frame_ms(BODHI_FRAMES) == 250
    # Within what the engine takes.
    assert load(["--endpointing"], BASE_ENV).frame_ms((60, 500)) == 60
    assert load([], BASE_ENV).frame_ms((20, 80)) == 80
    thai = {"IAPP_API_KEY": KEY}
    assert load([], thai).frame_ms(IAPP_FRAMES) == 100
    assert load(["--chunk-ms", "20"], thai).frame_ms(IAPP_FRAMES) == 20


def test_an_empty_chunk_ms_is_unset() -> None:
    assert load([], {**BASE_ENV, "BODHI_CHUNK_MS": ""}).chunk_ms is None


def test_flags_override_environment() -> None:
    env = {**BASE_ENV, "BODHI_MODEL": "ta-general-v2-8khz", "BODHI_CHUNK_MS": "200"}
    settings = load(["--model", "bn-banking-v2-8khz", "--lead", "0", "--debug"], env)
    assert settings.model == "bn-banking-v2-8khz"
    assert settings.chunk_ms == 200
    assert settings.lead == 0.0
    assert settings.debug


def test_every_flag_has_an_environment_variable() -> None:
    env = {
        **BASE_ENV,
        "WYOMING_URI": "unix:///tmp/bodhi.sock",
        "BODHI_URL": "ws://127.0.0.1:8765",
        "BODHI_MODEL": "pa-general-v3-8khz",
        "BODHI_EXTRA_MODELS": "pa-general-v3-8khz, as-general-v3-8khz",
        "BODHI_DOMAIN": "banking",
        "BODHI_CHUNK_MS": "50",
        "BODHI_LEAD": "0.5",
        "BODHI_CONNECT_TIMEOUT": "2",
        "BODHI_RESPONSE_TIMEOUT": "3",
        "WYOMING_DEBUG": "true",
        "WYOMING_LOG_FORMAT": "%(message)s",
    }
    settings = load([], env)
    assert settings.uri == "unix:///tmp/bodhi.sock"
    assert settings.bodhi_url == "ws://127.0.0.1:8765"
    assert settings.model == "pa-general-v3-8khz"
    assert settings.extra_models == ("pa-general-v3-8khz", "as-general-v3-8khz")
    assert settings.domain == "banking"
    assert (settings.chunk_ms, settings.lead) == (50, 0.5)
    assert (settings.connect_timeout, settings.response_timeout) == (2.0, 3.0)
    assert settings.debug and settings.log_format == "%(message)s"


def test_newer_platform_needs_no_customer_id() -> None:
    settings = load(["--bodhi-url", "wss://stt.navana.ai"], {"BODHI_API_KEY": KEY})
    assert settings.customer_id is None


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    (tmp_path / "customer").write_text(CUSTOMER)
    env = {
        "BODHI_API_KEY_FILE": str(tmp_path / "key"),
        "BODHI_CUSTOMER_ID_FILE": str(tmp_path / "customer"),
    }
    settings = load([], env)
    assert (settings.api_key, settings.customer_id) == (KEY, CUSTOMER)


def test_secrets_are_not_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load(["--api-key", KEY], {})


def test_settings_repr_hides_secrets() -> None:
    text = repr(load([], BASE_ENV))
    assert KEY not in text and CUSTOMER not in text


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            [],
            {},
            # Every installed engine is named (here, the shipped two and any other).
            "no engine configured: set BODHI_API_KEY (Bodhi: Indian languages; or BODHI_API_KEY_FILE, or api_key in a config file), IAPP_API_KEY (iApp ASRx: Thai)",
        ),
        (
            [],
            {"BODHI_API_KEY": KEY},
            "missing the Bodhi customer id: wss://bodhi.navana.ai needs it as well as the API key",
        ),
        (
            [],
            {"BODHI_API_KEY": KEY, "BODHI_CUSTOMER_ID": "not-a-uuid"},
            "invalid customer_id (BODHI_CUSTOMER_ID): is not a UUID",
        ),
        (
            ["--model", "zz-general-v2-8khz"],
            BASE_ENV,
            "invalid model 'zz-general-v2-8khz' (--model): not a model of a configured engine; valid models: hi-general-v2-8khz",
        ),
        (
            ["--chunk-ms", "10"],
            BASE_ENV,
            "invalid chunk_ms '10' (--chunk-ms): value must be at least 20",
        ),
        (["--chunk-ms", "501"], BASE_ENV, "value must be at most 500"),
        (
            ["--bodhi-url", "https://bodhi.navana.ai"],
            BASE_ENV,
            "invalid bodhi_url 'https://bodhi.navana.ai' (--bodhi-url): is not a ws:// or wss:// URL",
        ),
        (
            ["--bodhi-url", "ws://127.0.0.1:99999"],
            BASE_ENV,
            "invalid bodhi_url 'ws://127.0.0.1:99999' (--bodhi-url): has a port out of range: use 1-65535",
        ),
        (
            ["--bodhi-url", "ws://192.0.2.10\\@127.0.0.1"],
            BASE_ENV,
            "must be a plain ws[s]://HOST[:PORT][/PATH] URL, with no user part",
        ),
        (
            ["--bodhi-url", "wss://user:pw@bodhi.navana.ai"],
            BASE_ENV,
            "'wss://…@bodhi.navana.ai' (--bodhi-url): must be a plain",
        ),
        (["--bodhi-url", "ws://127.0.0.1:0"], BASE_ENV, "has a port out of range"),
        (["--bodhi-url", "wss://bodhi.navana.ai/#x"], BASE_ENV, "with no user part or fragment"),
        (["--iapp-url", "wss://u@api.iapp.co.th/asrx"], {"IAPP_API_KEY": KEY}, "invalid iapp_url"),
        (
            ["--uri", "tcp://h:99999"],
            BASE_ENV,
            "invalid uri 'tcp://h:99999' (--uri): has a port out of range",
        ),
        (
            ["--hass-url", "http://ha:99999"],
            BASE_ENV,
            "invalid hass_url 'http://ha:99999' (--hass-url)",
        ),
        (
            ["--max-connections", "0"],
            BASE_ENV,
            "invalid max_connections '0' (--max-connections)",
        ),
        (
            ["--idle-timeout", "0.5"],
            BASE_ENV,
            "invalid idle_timeout '0.5' (--idle-timeout)",
        ),
        (["--uri", "http://0.0.0.0:10300"], BASE_ENV, "invalid uri 'http://0.0.0.0:10300' (--uri)"),
        (["--uri", "tcp://0.0.0.0"], BASE_ENV, "needs a host and a port"),
        (["--domain", "medical"], BASE_ENV, "invalid domain 'medical' (--domain)"),
        (["--extra-model", "punjabi"], BASE_ENV, "'punjabi' is not a Bodhi model name"),
        (["--lead", "-1"], BASE_ENV, "invalid lead"),
        (
            ["--http-host", "http://bodhi.lan:10301"],
            BASE_ENV,
            "(--http-host): 'http://bodhi.lan:10301' is not a host name: give a name alone",
        ),
    ],
)
def test_validation_errors_name_the_setting(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load(argv, env)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert KEY not in text and CUSTOMER not in text


def test_no_engine_configured_names_each_engine_and_its_credential() -> None:
    with pytest.raises(SettingsError) as info:
        validate({}, registry.builtin())
    assert str(info.value) == (
        "no engine configured: set BODHI_API_KEY (Bodhi: Indian languages; or "
        "BODHI_API_KEY_FILE, or api_key in a config file), IAPP_API_KEY (iApp ASRx: Thai), or "
        "both; see 'Getting credentials' in the README, or try --demo"
    )


def test_customer_id_value_is_never_echoed() -> None:
    secret_looking = "my-secret-customer"
    with pytest.raises(SettingsError) as info:
        load([], {"BODHI_API_KEY": KEY, "BODHI_CUSTOMER_ID": secret_looking})
    assert secret_looking not in str(info.value)


def test_secret_file_problems(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read BODHI_API_KEY_FILE="):
        load([], {"BODHI_API_KEY_FILE": str(tmp_path / "missing"), "BODHI_CUSTOMER_ID": CUSTOMER})
    (tmp_path / "key").write_text(KEY)
    with pytest.raises(SettingsError, match="not both"):
        load([], {**BASE_ENV, "BODHI_API_KEY_FILE": str(tmp_path / "key")})


# -- the config file ---------------------------------------------------------------------

EXAMPLE = Path(__file__).parent.parent / "config" / "wyoming-bodhi.example.yaml"


def test_example_config_shows_every_setting_and_loads() -> None:
    import yaml

    # The shipped engines' settings: another installed engine documents its own.
    SETTINGS = declarations(registry.builtin())

    text = EXAMPLE.read_text()
    data = yaml.safe_load(text)
    # Optional settings with no default are shown commented out.
    shown = set(data) | {
        line[2:].split(":")[0]
        for line in text.splitlines()
        if line.startswith("# ") and ": " in line and " " not in line[2:].split(":")[0]
    }
    assert {setting.name for setting in SETTINGS} <= shown
    for name in data:
        # Each option has a comment right above it.
        before = text[: text.index(f"\n{name}:")].rstrip().splitlines()[-1]
        assert before.startswith("#"), name
    # The example's credentials are placeholders, refused with a pointer to how to get real ones.
    with pytest.raises(SettingsError, match="is the example's placeholder"):
        load(["--config", str(EXAMPLE)], {})
    settings = load(["--config", str(EXAMPLE)], BASE_ENV)
    assert settings.hotwords == ()  # samples only, commented out
    assert settings.model == "hi-general-v2-8khz" and settings.chunk_ms is None
    assert settings.zeroconf is None and not settings.demo


def test_precedence_flags_then_environment_then_file_then_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"api_key: {KEY}\ncustomer_id: {CUSTOMER}\nmodel: ta-general-v2-8khz\n"
        "chunk_ms: 200\nlead: 0.5\ndomain: banking\n"
    )
    env = {"BODHI_CHUNK_MS": "300", "BODHI_LEAD": "0.25"}
    settings = load(["--config", str(path), "--lead", "0"], env)
    assert settings.lead == 0.0  # flag
    assert settings.chunk_ms == 300  # environment over file
    assert settings.model == "ta-general-v2-8khz"  # file
    assert settings.domain == "banking"  # file
    assert settings.response_timeout == 5.0  # default
    assert (settings.api_key, settings.customer_id) == (KEY, CUSTOMER)  # secrets from the file
    env_key = load(["--config", str(path)], {"BODHI_API_KEY": "another-key-123456"})
    assert env_key.api_key == "another-key-123456"


def test_addon_options_json_loads_directly(tmp_path: Path) -> None:
    import json

    path = tmp_path / "options.json"
    options = {
        "api_key": KEY,
        "customer_id": "",  # the Supervisor leaves unset optional strings empty
        "bodhi_url": "wss://stt.navana.ai",
        "model": "bn-general-v2-8khz",
        "domain": "general",
        "extra_models": [],
        "chunk_ms": 100,
        "lead": 1.0,
        "debug": True,
    }
    path.write_text(json.dumps(options))
    settings = load(["--config", str(path)], {"BODHI_CONFIG": "/nonexistent"})
    assert settings.model == "bn-general-v2-8khz" and settings.debug
    assert settings.customer_id is None


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "settings.yml"
    path.write_text(f"api_key: {KEY}\ncustomer_id: {CUSTOMER}\nchunk_ms: 250\n")
    assert load([], {"BODHI_CONFIG": str(path)}).chunk_ms == 250


def test_a_client_loads_the_environment_secret_files_and_config_without_flags(
    tmp_path: Path,
) -> None:
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"api_key": KEY, "model": "ta-general-v2-8khz", "lead": 3}))
    secret = tmp_path / "customer"
    secret.write_text(CUSTOMER)
    env = {"BODHI_CUSTOMER_ID_FILE": str(secret), "BODHI_MODEL": "bn-general-v2-8khz"}
    settings = load_client_settings(str(config), env)
    assert (settings.api_key, settings.customer_id) == (KEY, CUSTOMER)
    # The environment over the file, as for the server.
    assert (settings.model, settings.lead) == ("bn-general-v2-8khz", 3.0)
    assert load_client_settings(None, {**env, "BODHI_CONFIG": str(config)}) == settings
    with pytest.raises(SettingsError, match=r"invalid lead '99' \(BODHI_LEAD\)"):
        load_client_settings(str(config), {**env, "BODHI_LEAD": "99"})


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            "chunk_ms: 10\n",
            "a.yaml",
            "invalid chunk_ms '10' (config file FILE): value must be at least 20",
        ),
        (
            "chunk_ms: 20\n",
            "a.yaml",
            "invalid chunk_ms 20 (config file FILE): Bodhi takes frames of 50 to 500 ms",
        ),
        (
            "chunk_size: 100\n",
            "a.yaml",
            "unknown setting 'chunk_size' in config file FILE; did you mean 'chunk_ms'?",
        ),
        (
            "BODHI_API_KEY: x\n",
            "a.yaml",
            "unknown setting 'BODHI_API_KEY' in config file FILE; did you mean 'api_key'?",
        ),
        (
            "chunk-ms: 100\n",
            "a.yaml",
            "unknown setting 'chunk-ms' in config file FILE; did you mean 'chunk_ms'?",
        ),
        (
            "zzzz: 1\n",
            "a.yaml",
            "unknown setting 'zzzz' in config file FILE; see config/wyoming-bodhi.example.yaml",
        ),
        ("- a\n- b\n", "a.yaml", "config file FILE must hold a mapping"),
        (
            "model: [unclosed\n",
            "a.yaml",
            "config file FILE is not valid YAML: expected ',' or ']', but got '<stream end>' at line 2, column 1",
        ),
        (
            "model: a\n  b: c\n",
            "a.yaml",
            "config file FILE is not valid YAML: mapping values are not allowed here at line 2, column 4",
        ),
        (
            '{"model": }',
            "a.json",
            "config file FILE is not valid JSON: Expecting value at line 1, column 11",
        ),
        (
            "demo: maybe\n",
            "a.yaml",
            "invalid demo 'maybe' (config file FILE): expected true or false",
        ),
        (
            f"customer_id: not-a-uuid-{KEY}\n",
            "a.yaml",
            "invalid customer_id (config file FILE): is not a UUID",
        ),
        (
            "api_key: your-bodhi-api-key\n",
            "a.yaml",
            "invalid api_key (config file FILE): is the example's placeholder, not a real credential; see 'Getting credentials' in the README",
        ),
        (
            "customer_id: 00000000-0000-0000-0000-000000000000\n",
            "a.yaml",
            "invalid customer_id (config file FILE): is the example's placeholder",
        ),
    ],
)
def test_bad_config_files_are_rejected_clearly(
    tmp_path: Path, content: str, name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SettingsError) as info:
        load(["--config", str(path)], {"BODHI_API_KEY": KEY} if "api_key" not in content else {})
    assert message.replace("FILE", str(path)) in str(info.value)
    assert "\n" not in str(info.value) and KEY not in str(info.value)


def test_missing_config_file() -> None:
    with pytest.raises(SettingsError, match="cannot read config file /nonexistent/x.yaml"):
        load(["--config", "/nonexistent/x.yaml"], BASE_ENV)


def test_demo_needs_no_credentials() -> None:
    settings = load(["--demo"], {})
    assert settings.demo and settings.api_key


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], None), (["--zeroconf"], ""), (["--zeroconf", "kitchen"], "kitchen")],
)
def test_zeroconf_flag(argv: list[str], expected: str | None) -> None:
    assert load(argv, BASE_ENV).zeroconf == expected


def test_zeroconf_needs_tcp() -> None:
    with pytest.raises(SettingsError, match="zeroconf advertises a TCP port"):
        load(["--zeroconf", "--uri", "unix:///tmp/x.sock"], BASE_ENV)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--http-uri", "tcp://127.0.0.1:10300"], "http_uri (--http-uri) and uri (--uri / WYOMING_URI) both name port 10300"),
        (["--uri", "tcp://0.0.0.0:10301", "--http-uri", "tcp://127.0.0.1:10301"], "http_uri (--http-uri) and uri (--uri) both name port 10301"),
        (["--http-uri", "tcp://127.0.0.1:10302", "--metrics-uri", "tcp://:10302"], "metrics_uri (--metrics-uri) and http_uri (--http-uri) both name port 10302"),
    ],
)  # fmt: skip
def test_two_listeners_on_one_port_are_named_at_start_up(argv: list[str], said: str) -> None:
    # Else the second to bind says "already in use", and one looks for another program.
    with pytest.raises(SettingsError) as caught:
        load(argv, BASE_ENV)
    assert str(caught.value).startswith(said), caught.value


def test_one_port_on_two_addresses_is_two_listeners() -> None:
    argv = ["--uri", "tcp://127.0.0.1:10300", "--http-uri", "tcp://127.0.0.2:10300"]
    assert load(argv, BASE_ENV).http_uri == "tcp://127.0.0.2:10300"


def test_git_ignores_a_local_config_file_that_holds_the_key() -> None:
    root = EXAMPLE.parent.parent
    for name in ("wyoming-bodhi.yaml", "wyoming-bodhi.json", "secrets/api_key"):
        result = subprocess.run(["git", "check-ignore", "-q", name], cwd=root, check=False)
        assert result.returncode == 0, name
    assert subprocess.run(["git", "check-ignore", "-q", "config/wyoming-bodhi.example.yaml"],
                          cwd=root, check=False).returncode == 1  # fmt: skip


def test_every_setting_is_documented_with_its_flag_variable_and_default() -> None:
    SETTINGS = declarations(registry.builtin())

    doc = (EXAMPLE.parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ")]
    for spec in SETTINGS:
        (row,) = [row for row in rows if f"`{spec.env}`" in row]
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[0] == "—" if spec.flag is None else cells[0].startswith(f"`{spec.flag}"), row
        if isinstance(spec.default, bool) or spec.default in (None, (), ""):
            continue
        if isinstance(spec.default, int | float):
            numbers = re.findall(r"\d+(?:\.\d+)?", cells[2])
            assert any(float(n) == spec.default for n in numbers), (spec.name, row)
        else:
            assert f"`{spec.default}`" in cells[2], (spec.name, row)


# -- the engines' settings: declared by each engine, checked by the same rules ------------


def test_each_engine_s_settings_are_its_own_and_typed() -> None:
    from wyoming_bodhi.engines.bodhi.plugin import ENGINE as BODHI
    from wyoming_bodhi.engines.iapp.plugin import ENGINE as IAPP

    settings = load(["--bodhi-url", "wss://stt.navana.ai"], {**BASE_ENV, "IAPP_API_KEY": KEY})
    assert settings.of(BODHI).bodhi_url == "wss://stt.navana.ai"
    assert settings.of(IAPP).iapp_api_key == KEY
    assert [entry.plugin.name for entry in settings.configured] == ["bodhi", "iapp"]
    # Every value declared secret, whoever declared it.
    assert set(settings.secrets) == {KEY, CUSTOMER}


def test_endpointing_is_refused_for_an_engine_that_cannot_end_a_phrase() -> None:
    # iApp completes a sentence only when the next begins: it declares ends_phrases=False.
    with pytest.raises(SettingsError) as info:
        load(["--endpointing"], {**BASE_ENV, "IAPP_API_KEY": KEY})
    assert str(info.value).startswith(
        "invalid endpointing (--endpointing): iApp ASRx does not complete a phrase on silence "
        "by itself, so it cannot end a voice command; turn endpointing off, or serve Thai from "
        "a separate instance without it"
    )
    assert load(["--endpointing"], BASE_ENV).endpointing


def test_the_default_model_is_the_first_configured_engine_s_first() -> None:
    assert load([], BASE_ENV).model == "hi-general-v2-8khz"
    assert load([], {"IAPP_API_KEY": KEY}).model == "iapp-asrx"
    assert load([], {**BASE_ENV, "IAPP_API_KEY": KEY}).model == "hi-general-v2-8khz"
    assert load([], {**BASE_ENV, "BODHI_MODEL": ""}).model == "hi-general-v2-8khz"


def test_help_lists_the_core_then_each_engine_s_settings() -> None:
    from wyoming_bodhi.settings import build_parser

    help_text = build_parser().format_help()
    text = help_text[help_text.index("\noptions:") :]  # after the usage, which lists all flags
    core, bodhi, iapp = (text.index(flag) for flag in ("--lead", "--bodhi-url", "--iapp-url"))
    assert core < text.index("Bodhi (Indian languages):") < bodhi
    assert bodhi < text.index("iApp ASRx (Thai):") < iapp
    description = " ".join(help_text.split())
    assert "(BODHI_API_KEY, BODHI_CUSTOMER_ID, IAPP_API_KEY" in description
    assert "or their *_FILE forms) or from the --config file" in description


def test_a_hotword_scored_above_what_a_configured_engine_takes_is_refused() -> None:
    import dataclasses

    from wyoming_bodhi.engines import registry
    from wyoming_bodhi.engines.base import Capabilities, HotwordPolicy
    from wyoming_bodhi.settings import validate

    from .engine_fixtures import ECHO_ENGINE

    strict = dataclasses.replace(
        ECHO_ENGINE, capabilities=Capabilities(hotwords=HotwordPolicy(1.0, 2.0, 1.5, 3.0))
    )
    engines = [*registry.installed(), strict]
    raw = {"echo_api_key": KEY, "echo_url": "ws://127.0.0.1:9"}
    assert validate({**raw, "hotwords": ["batti:3"]}, engines).hotwords[0].score == 3.0
    with pytest.raises(SettingsError) as info:
        validate({**raw, "hotwords": ["pankha:2", "batti:4.5"]}, engines)
    assert str(info.value) == (
        "invalid hotwords (--hotword / BODHI_HOTWORDS): Echo takes scores up to 3, and 'batti' has 4.5"
    )


# -- renamed settings: the old names still work, with a warning -----------------------------


def test_ca_file_is_the_engine_neutral_name_of_bodhi_ca(tmp_path: Path) -> None:
    from .harness import self_signed_certificate

    cert, _ = self_signed_certificate(tmp_path)
    config = tmp_path / "old.yaml"
    config.write_text(f"bodhi_ca: {cert}\n")
    new = load(["--ca-file", str(cert)], BASE_ENV)
    assert (new.ca_file, new.deprecations) == (str(cert), ())
    assert load([], {**BASE_ENV, "BODHI_CA_FILE": str(cert)}).ca_file == str(cert)
    for argv, env, given in (
        (["--bodhi-ca", str(cert)], BASE_ENV, "--bodhi-ca"),
        ([], {**BASE_ENV, "BODHI_CA": str(cert)}, "BODHI_CA"),
        (["--config", str(config)], BASE_ENV, f"config file {config}"),
    ):
        old = load(argv, env)
        assert old.ca_file == str(cert), given
        assert old.deprecations == (
            f"bodhi_ca ({given}) is deprecated: use ca_file (--ca-file, BODHI_CA_FILE); the "
            "old names will be removed in a later release",
        )
    with pytest.raises(SettingsError) as info:
        load(["--ca-file", str(cert)], {**BASE_ENV, "BODHI_CA": str(cert)})
    assert str(info.value) == (
        "set ca_file (--ca-file) or its old name bodhi_ca (BODHI_CA), not both"
    )
    with pytest.raises(SettingsError, match=r"^invalid ca_file '.*' \(--bodhi-ca\): cannot load"):
        load(["--bodhi-ca", str(tmp_path / "missing.pem")], BASE_ENV)


def test_help_shows_the_new_name_only() -> None:
    from wyoming_bodhi.settings import build_parser

    text = build_parser().format_help()
    assert "--ca-file" in text and "--bodhi-ca" not in text


def test_the_settings_that_are_not_add_on_options_say_why() -> None:
    # What the add-on file generator will read: each declaration says whether it is an
    # add-on option, and why not when it is not.
    import yaml

    from wyoming_bodhi.engines import registry
    from wyoming_bodhi.settings import declarations

    addon = yaml.safe_load((EXAMPLE.parent.parent / "addon.yaml").read_text(encoding="utf-8"))
    specs = declarations(registry.builtin())
    assert {spec.name for spec in specs if spec.addon} == set(addon["schema"])
    assert all(spec.why_not_addon for spec in specs if not spec.addon)


def test_the_old_module_names_are_what_this_project_ships(monkeypatch: pytest.MonkeyPatch) -> None:
    """``settings.SETTINGS``, ``SCHEMA`` and ``SECRETS`` are from before engines were plugins:
    what they named was what the project ships (the add-on's and the deployments' tests read
    them so), whatever other engine is installed beside it."""
    from wyoming_bodhi import settings

    from .engine_fixtures import ECHO_ENGINE

    monkeypatch.setattr(settings, "installed", lambda: (*registry.builtin(), ECHO_ENGINE))
    shipped = {spec.name for spec in declarations(registry.builtin())}
    assert {spec.name for spec in settings.SETTINGS} == shipped
    assert {str(key.schema) for key in settings.SCHEMA.schema} == shipped
    assert set(settings.SECRETS) == {"api_key", "customer_id", "iapp_api_key", "hass_token"}


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("BODHI_API_KEY", "api_key"),
        ("BODHI_CUSTOMER_ID", "customer_id"),
        ("IAPP_API_KEY", "iapp_api_key"),
        ("HASS_TOKEN", "hass_token"),
    ],
)
@pytest.mark.parametrize("character", ["\x01", "\r", "\n", "\x00", "\x1b", "\x7f", "\u200b"])
def test_a_secret_with_a_control_character_inside_is_refused(
    variable: str, setting: str, character: str
) -> None:
    """It could never go in a request's header; stripped at the ends, refused inside, and
    neither the value nor where the character is is told."""
    value = CUSTOMER if variable == "BODHI_CUSTOMER_ID" else KEY
    bad = value[:12] + character + value[12:]
    env = {**BASE_ENV, "HASS_URL": "http://ha.lan:8123", "HASS_TOKEN": "ha-token-5e0d7c31"}
    with pytest.raises(SettingsError) as info:
        load([], {**env, variable: bad})
    message = str(info.value)
    assert message == (
        f"invalid {setting} ({variable}): holds a control character or other invisible "
        "character: copy it again, without it"
    )
    assert value[:6] not in message and value[-6:] not in message
    # At the ends, it is what a file or a paste leaves: stripped, as before.
    if character.isspace():
        loaded = load([], {**env, variable: value + character})
        assert loaded.value(setting) == value
