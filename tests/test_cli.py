"""The command line as a user meets it: real processes, real ports, one clear line on error."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient, AsyncUnixClient
from wyoming.info import Describe

from wyoming_bodhi.__main__ import ServeError, event_loop_factory

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    bridge_command,
    clean_env,
    free_port,
    process,
    self_signed_certificate,
    transcribe,
    unavailable,
    wait_for_port,
)
from .signals import encode, utterances


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wyoming_bodhi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, "no engine configured: set BODHI_API_KEY"),
        ([], {"BODHI_API_KEY": API_KEY}, "missing the Bodhi customer id"),
        ([], {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": "12345"}, "is not a UUID"),
        (
            ["--model", "xx-general-v2-8khz"],
            {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID},
            "valid models: hi-general-v2-8khz, hi-banking-v2-8khz",
        ),
        (
            ["--chunk-ms", "1000"],
            {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID},
            "invalid chunk_ms '1000' (--chunk-ms): value must be at most 500",
        ),
        (
            ["--bodhi-url", "http://example.com"],
            {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID},
            "invalid bodhi_url 'http://example.com' (--bodhi-url): is not a ws:// or wss:// URL",
        ),
    ],
)
def test_start_up_validation_is_one_clear_line(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    result = run_cli(args, clean_env(**env))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wyoming-bodhi: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert API_KEY not in result.stderr and CUSTOMER_ID not in result.stderr


CONTROL_KEY = "SUPERSECRET9876"


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("BODHI_API_KEY", CONTROL_KEY + "\x01", "api_key"),
        ("BODHI_API_KEY", CONTROL_KEY + "\rabc", "api_key"),
        ("BODHI_API_KEY", "SUPER\x1bSECRET9876", "api_key"),
        ("BODHI_CUSTOMER_ID", CUSTOMER_ID[:-1] + "\x01" + CUSTOMER_ID[-1], "customer_id"),
        ("IAPP_API_KEY", CONTROL_KEY + "\x7f", "iapp_api_key"),
    ],
)
def test_a_credential_with_a_control_character_stops_the_start_in_one_line(
    variable: str, value: str, setting: str
) -> None:
    """Accepted, such a key would fail every request in its header with a traceback: it is
    refused at start-up instead, as any invalid setting is, and never shown."""
    env = {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID, variable: value}
    result = run_cli(["--uri", "tcp://127.0.0.1:0"], clean_env(**env))
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr == (
        f"wyoming-bodhi: invalid {setting} ({variable}): holds a control character or other "
        "invisible character: copy it again, without it\n"
    )
    for piece in (CONTROL_KEY, "SUPER", value[:8], value[-8:]):
        assert piece not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--hotword", f"{API_KEY}:99"], ["--model", API_KEY], ["--bodhi-url", API_KEY]],
)
def test_a_key_pasted_into_another_setting_is_not_shown_in_its_error(args: list[str]) -> None:
    # The error quotes the value given, which may go to a shared log: not when it is a key.
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
    result = run_cli(["--uri", "tcp://127.0.0.1:0", *args], env)
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr.startswith("wyoming-bodhi: invalid "), result.stderr
    assert "…" in result.stderr and API_KEY[:8] not in result.stderr, result.stderr


def test_an_engine_plugin_that_cannot_be_used_stops_the_start_in_one_line() -> None:
    env = clean_env(BODHI_API_KEY=API_KEY, WYOMING_BODHI_ENGINES="bodhi,nosuchengine")
    for args in ([], ["--health-check"], ["--list-models"]):
        result = run_cli(args, env)
        assert (result.returncode, result.stdout) == (2, ""), result
        assert result.stderr.startswith(
            "wyoming-bodhi: WYOMING_BODHI_ENGINES names nosuchengine, which is not installed; "
            "installed: "
        ), result.stderr
        assert "bodhi, iapp" in result.stderr and result.stderr.count("\n") == 1
    only = run_cli(["--list-models"], clean_env(WYOMING_BODHI_ENGINES="iapp"))
    assert (only.returncode, only.stdout.split()[0]) == (0, "iapp-asrx")


# A plugin as a distribution ships one, found through its dist-info on PYTHONPATH: Zeta, a
# Swahili engine speaking iApp's protocol, wrong in the way each case below says.
ZETA = """
import dataclasses

from wyoming_bodhi.declarations import setting, validators
from wyoming_bodhi.engines.base import Model
from wyoming_bodhi.engines.iapp.engine import IappEngine
from wyoming_bodhi.engines.iapp.plugin import ENGINE as IAPP

{at_import}

MODEL = Model({model!r}, "zeta", ("sw",), "Swahili", "1")


class ZetaEngine(IappEngine):
    name = "zeta"
    title = "Zeta"
    models = (MODEL,)


@dataclasses.dataclass(frozen=True)
class ZetaSettings:
    zeta_api_key: str | None = setting(
        None, validators.secret(), "ZETA_API_KEY", "Zeta API key", secret=True
    )
    zeta_url: str = setting("wss://zeta.example", validators.websocket_url, "ZETA_URL", "URL")
    {setting}


def check(settings, context):
    {check}


def build(settings, context):
    {build}


ENGINE = dataclasses.replace(
    IAPP, name="zeta", title="Zeta", priority=100, settings=ZetaSettings,
    credential="zeta_api_key", url_setting="zeta_url", simulator=None,
    models=lambda settings: (MODEL,), check=check, build=build,
)
"""
ZETA_KEY = "zeta-key-5e0b2c8d1f"


def zeta_plugin(
    where: Path,
    *,
    at_import: str = "",
    setting: str = "",
    check: str = "return None",
    build: str = "return ZetaEngine(context.http, settings.zeta_url, settings.zeta_api_key)",
    model: str = "zeta-sw",
) -> dict[str, str]:
    """Zeta, installed as a distribution (``zeta-engine 0.1``) under ``where``: the
    environment that finds it."""
    (where / "zeta_engine.py").write_text(
        ZETA.format(at_import=at_import, setting=setting, check=check, build=build, model=model),
        encoding="utf-8",
    )
    info = where / "zeta_engine-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zeta-engine\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[wyoming_bodhi.engines]\nzeta = zeta_engine:ENGINE\n")
    return clean_env(PYTHONPATH=str(where), ZETA_API_KEY=ZETA_KEY)


FIX = "uninstall it, or leave it out with WYOMING_BODHI_ENGINES=<the engines to use>"


@pytest.mark.parametrize(
    ("args", "plugin", "said"),
    [
        (
            ["--help"],
            {"setting": 'uri: str = setting("", str, "ZETA_URI", "steals --uri")'},
            f"engine plugin 'zeta' (zeta-engine 0.1) declares uri, which is the server's own; "
            f"{FIX}",
        ),
        (
            ["--list-models"],
            {"at_import": 'import sys; sys.exit("zeta needs a GPU")'},
            "engine plugin 'zeta' (zeta-engine 0.1) failed to load: it called sys.exit('zeta "
            f"needs a GPU'); {FIX}",
        ),
        (
            ["--list-models"],
            {"at_import": "raise KeyboardInterrupt"},
            f"engine plugin 'zeta' (zeta-engine 0.1) failed to load: KeyboardInterrupt; {FIX}",
        ),
        (
            [],
            {"check": 'raise KeyError("boom")'},
            f"engine plugin 'zeta' (zeta-engine 0.1) failed to check its settings: KeyError: "
            f"'boom'; {FIX}",
        ),
        (
            ["--uri", "tcp://127.0.0.1:0"],
            {"build": "raise ZeroDivisionError(settings.zeta_api_key)"},
            "engine plugin 'zeta' (zeta-engine 0.1) failed to build its engine: "
            f"ZeroDivisionError: …; {FIX}",
        ),
        (
            ["--list-models"],
            {"model": "iapp-asrx"},
            "engine plugins 'iapp' and 'zeta' both offer the model 'iapp-asrx': a request naming "
            "it could go to either; leave one out with WYOMING_BODHI_ENGINES",
        ),
    ],
    ids=["core flag", "sys.exit", "KeyboardInterrupt", "check", "build", "model"],
)
def test_an_installed_plugin_that_does_not_fit_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], plugin: dict[str, str], said: str
) -> None:
    result = run_cli(args, zeta_plugin(tmp_path, **plugin))
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr == f"wyoming-bodhi: {said}\n"
    assert ZETA_KEY not in result.stderr


def test_a_plugin_whose_build_fails_stops_direct_in_one_line(tmp_path: Path) -> None:
    # --direct builds the engines itself, with no server in between: the same line.
    env = zeta_plugin(tmp_path, build="raise ZeroDivisionError(settings.zeta_api_key)")
    sample = Path(__file__).parents[1] / "samples" / "batti-jalao.wav"
    result = subprocess.run(
        [sys.executable, "-m", "wyoming_bodhi.transcribe", str(sample), "--direct"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr == (
        "wyoming-bodhi-transcribe: engine plugin 'zeta' (zeta-engine 0.1) failed to build its "
        f"engine: ZeroDivisionError: …; {FIX}\n"
    )


def test_ctrl_c_while_a_plugin_loads_is_a_ctrl_c(tmp_path: Path) -> None:
    env = zeta_plugin(
        tmp_path,
        at_import='import sys, time; print("importing", file=sys.stderr, flush=True); '
        "time.sleep(30)",
    )
    with subprocess.Popen(
        [sys.executable, "-m", "wyoming_bodhi", "--list-models"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stderr is not None
            assert server.stderr.readline() == "importing\n"
            server.send_signal(signal.SIGINT)
            _, stderr = server.communicate(timeout=20)
        finally:
            server.kill()
    # What a Ctrl-C does to any program: it dies of SIGINT, so that its shell stops too.
    assert server.returncode == -signal.SIGINT, stderr
    assert "stopped by SIGINT" in stderr and "engine plugin" not in stderr
    assert "Traceback" not in stderr


SECRET_BYTES = b"ab12\xff\xfe-the-rest-of-the-secret-9f3c"


def assert_one_line_without_the_secret(result: subprocess.CompletedProcess[str], said: str) -> None:
    assert (result.returncode, result.stdout) == (2, ""), result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wyoming-bodhi: "), result.stderr
    assert said in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    # No piece of the secret, nor the byte that could not be read, nor where it was.
    for piece in ("ab12", "the-rest", "9f3c", "xff", "0xff", "position"):
        assert piece not in result.stderr, (piece, result.stderr)


@pytest.mark.parametrize("variable", ["BODHI_API_KEY_FILE", "IAPP_API_KEY_FILE", "HASS_TOKEN_FILE"])
def test_a_secret_file_that_is_not_text_is_one_line_without_the_secret(
    tmp_path: Path, variable: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET_BYTES)
    env = {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID, variable: str(secret)}
    env.pop(variable.removesuffix("_FILE"), None)
    result = run_cli([], clean_env(**env))
    assert_one_line_without_the_secret(result, f"{variable}={secret} is not UTF-8 text")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep.yaml", "hotwords: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        ("deep.json", '{"hotwords": ' + "[" * 10_000 + "]" * 10_000 + "}"),
        ("deep-map.yaml", "hotwords:\n" + "".join(" " * n + "a:\n" for n in range(1, 3000))),
    ],
)
def test_a_config_file_nested_too_deeply_is_one_line(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = run_cli(["--config", str(path)], clean_env(BODHI_API_KEY=API_KEY,
                                                      BODHI_CUSTOMER_ID=CUSTOMER_ID))  # fmt: skip
    assert_one_line_without_the_secret(result, f"config file {path} is nested too deeply")


async def test_readme_flow_simulator_then_bridge_then_a_wyoming_client() -> None:
    """The README's try-it path, as separate processes: simulator, bridge, client."""
    bodhi_port, wyoming_port = free_port(), free_port()
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
    simulator_args = ["-m", "wyoming_bodhi.simulators.bodhi", "--port", str(bodhi_port),
                      "--texts", '["namaste duniya", "batti jalao"]']  # fmt: skip
    bridge_args = bridge_command(wyoming_port, f"ws://127.0.0.1:{bodhi_port}", "--debug")
    with process(simulator_args, env) as simulator, process(bridge_args, env) as bridge:
        await wait_for_port(bodhi_port, simulator)
        await wait_for_port(wyoming_port, bridge)
        async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
            await client.write_event(Describe().event())
            info = await asyncio.wait_for(client.read_event(), 2)
            exchange = await transcribe(client, encode(utterances(16000)))
        bridge.terminate()
        bridge_output, _ = bridge.communicate(timeout=5)
        simulator.terminate()
        simulator_output, _ = simulator.communicate(timeout=5)
    assert info is not None and info.type == "info"
    assert exchange.transcript == "namaste duniya batti jalao"
    assert exchange.types[0] == "transcript-start" and exchange.types[-1] == "transcript-stop"
    # Even at debug level, neither process ever prints a credential.
    for output in (bridge_output, simulator_output):
        assert API_KEY not in output and CUSTOMER_ID not in output
    assert "…" + API_KEY[-4:] in bridge_output  # a fingerprint is enough to tell keys apart
    # Nor does the command line: credentials never were flags.
    assert API_KEY not in " ".join(bridge_args)


async def test_serves_on_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "bodhi.sock"
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
    with process(["-m", "wyoming_bodhi", "--uri", f"unix://{socket_path}"], env) as bridge:
        deadline = time.monotonic() + 15
        while not socket_path.exists():
            assert bridge.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        async with AsyncUnixClient(str(socket_path)) as client:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), 2)
    assert event is not None and event.type == "info"


@pytest.mark.parametrize(
    ("choice", "loop"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
async def test_serves_on_the_event_loop_asked_for(choice: str, loop: str) -> None:
    if importlib.util.find_spec("uvloop") is None:
        unavailable("uvloop", "not installed (pip install -e '.[test]' installs it)")
    bodhi_port, wyoming_port = free_port(), free_port()
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, WYOMING_EVENT_LOOP=choice)
    simulator_args = ["-m", "wyoming_bodhi.simulators.bodhi", "--port", str(bodhi_port)]
    bridge_args = bridge_command(wyoming_port, f"ws://127.0.0.1:{bodhi_port}")
    with process(simulator_args, env) as simulator, process(bridge_args, env) as bridge:
        await wait_for_port(bodhi_port, simulator)
        await wait_for_port(wyoming_port, bridge)
        async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
            exchange = await transcribe(client, encode(utterances(16000)))
        bridge.terminate()
        output, _ = bridge.communicate(timeout=5)
    assert exchange.types[-1] == "transcript-stop"
    (line,) = [line for line in output.splitlines() if " serving " in line]
    assert line.endswith(f"; event loop {loop}"), line


def test_uvloop_asked_for_but_missing_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(ServeError, match=r"pip install uvloop \(in a clone"):
        event_loop_factory("uvloop")
    # auto falls back to asyncio's own loop; asyncio never asks.
    assert event_loop_factory("auto") is None
    assert event_loop_factory("asyncio") is None


# -- what a newcomer sees ---------------------------------------------------------------


async def test_serving_is_logged_once_bound_with_credentials_described_not_shown() -> None:
    port = free_port()
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
    with process(bridge_command(port, "ws://127.0.0.1:9"), env) as bridge:
        await wait_for_port(port, bridge)
        bridge.terminate()
        output, _ = bridge.communicate(timeout=5)
    (line,) = [line for line in output.splitlines() if " serving " in line]
    # The default format has a timestamp, then the level and the logger.
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO wyoming_bodhi: ", line), line
    assert (
        f"with Bodhi at ws://127.0.0.1:9 (api key …{API_KEY[-4:]}, customer id set, 21 models)"
        in line
    )
    assert "BodhiCredentials" not in output and API_KEY not in output


async def test_an_old_setting_name_is_logged_once_as_deprecated(tmp_path: Path) -> None:
    cert, _ = self_signed_certificate(tmp_path)
    port = free_port()
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, BODHI_CA=str(cert))
    with process(bridge_command(port, "ws://127.0.0.1:9"), env) as bridge:
        await wait_for_port(port, bridge)
        bridge.terminate()
        output, _ = bridge.communicate(timeout=5)
    (line,) = [line for line in output.splitlines() if "deprecated" in line]
    assert line.endswith(
        " WARNING wyoming_bodhi: bodhi_ca (BODHI_CA) is deprecated: use ca_file (--ca-file, "
        "BODHI_CA_FILE); the old names will be removed in a later release"
    ), line


def test_a_port_in_use_says_how_to_pick_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
        result = run_cli(["--uri", f"tcp://127.0.0.1:{port}"], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"wyoming-bodhi: cannot serve tcp://127.0.0.1:{port}: port {port} is already in use "
        "(another wyoming-bodhi or Wyoming server?); pick another with "
        f"--uri tcp://127.0.0.1:{port + 10} (or WYOMING_URI)"
    )
    assert "Traceback" not in result.stderr and " serving " not in result.stderr


def test_list_models_needs_no_credentials() -> None:
    # The shipped engines only (any other installed engine lists its own models too).
    env = clean_env(WYOMING_BODHI_ENGINES="bodhi,iapp")
    result = run_cli(["--list-models", "--extra-model", "pa-general-v3-8khz"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Every engine's models, in priority order: Bodhi's 21 and the one added, then iApp's.
    assert len(lines) == 23
    assert re.match(r"hi-general-v2-8khz +hi, hi-IN +Hindi \+ English, general domain", lines[0])
    assert lines[21].startswith("pa-general-v3-8khz ")
    assert re.match(r"iapp-asrx +th, th-TH +Thai, real-time \(iApp ASRx\)", lines[22])


def test_help_shows_defaults_ranges_and_variables() -> None:
    result = run_cli(["--help"], clean_env())
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert (
        "--chunk-ms CHUNK_MS audio frame length sent to the engines, in ms, within what each takes (unset: 50 with --endpointing, else 100) (20-500; env BODHI_CHUNK_MS)"
        in text
    )
    assert (
        "(default %(asctime)s %(levelname)s %(name)s: %(message)s; env WYOMING_LOG_FORMAT)" in text
    )
    assert "--list-models" in text and "--api-key" not in text
