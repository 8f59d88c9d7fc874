"""A third engine that this repository does not ship: Acme, a made-up Swahili engine, installed
from a distribution of its own (``tests/engine_plugin/``, which follows docs/development.md's
"Writing an engine" step by step) and found through its entry point alone. No line of the
package names it, yet the server lists it, routes to it, reads its key from everywhere a key
may come from, blanks that key out of everything it shows, serves it in ``--demo``, puts it
on the status page and holds it to the rules every engine is held to.

The README's test command installs the plugin; without it these tests skip, and fail under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from wyoming.asr import Transcribe
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from wyoming_bodhi.engines import registry
from wyoming_bodhi.engines.plugin import EngineSpec, Simulated
from wyoming_bodhi.server.health import check
from wyoming_bodhi.settings import SettingsError, build_parser, load, validate

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    clean_env,
    free_port,
    process,
    running_bridge,
    running_simulator,
    running_status_page,
    serving_bridge,
    transcribe,
    unavailable,
    wait_for_port,
)
from .signals import encode, utterances

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "tests" / "engine_plugin"
INSTALL = ".venv/bin/pip install -e tests/engine_plugin (the README's test command does)"
SAMPLE = ROOT / "samples" / "batti-jalao.wav"
ACME_KEY = "acme-sentinel-key-2b9e6f1d47c3"
SWAHILI = ["habari ya asubuhi", "washa taa"]
SPEECH = encode(utterances(16000, count=2))


@pytest.fixture
def acme() -> EngineSpec[Any]:
    """The plugin, registered, and loaded from this checkout (not from a stale copy)."""
    engine = next((e for e in registry.installed() if e.name == "acme"), None)
    if engine is None:
        unavailable("the third engine", f"its plugin is not installed: {INSTALL}")
    module = importlib.import_module("acme_engine")
    assert Path(str(module.__file__)).resolve().is_relative_to(PLUGIN), module.__file__
    return engine


@contextlib.asynccontextmanager
async def acme_simulator(acme: EngineSpec[Any], **options: Any) -> AsyncIterator[Simulated]:
    """Acme's own simulator, as ``--demo`` finds it: through its spec."""
    simulate = registry.simulator(acme)
    assert simulate is not None
    async with simulate(acme.settings(), texts=SWAHILI, **options) as simulator:
        yield simulator


def swahili(**options: Any) -> Transcribe:
    return Transcribe(**({"language": "sw"} | options))


async def test_info_lists_its_model_and_languages(acme: EngineSpec[Any]) -> None:
    async with (
        running_simulator() as bodhi,
        acme_simulator(acme) as simulator,
        running_bridge(bodhi.url, acme_api_key=ACME_KEY, acme_url=simulator.url) as running,
        running.client() as client,
    ):
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), 5)
    assert event is not None
    (program,) = Info.from_event(event).asr
    models = {model.name: model for model in program.models}
    assert models["acme-sw"].languages == ["sw", "sw-KE"]
    assert models["acme-sw"].attribution.name == "Acme Corp"
    assert "hi-general-v2-8khz" in models  # Bodhi's, beside it
    assert program.description is not None and program.description.endswith("and Acme")


async def test_swahili_goes_to_it_hindi_still_to_bodhi_and_its_model_by_name(
    acme: EngineSpec[Any],
) -> None:
    async with (
        running_simulator(texts=["batti jalao"]) as bodhi,
        acme_simulator(acme) as simulator,
        running_bridge(bodhi.url, acme_api_key=ACME_KEY, acme_url=simulator.url) as running,
        running.client() as client,
    ):
        heard = await transcribe(client, SPEECH, request=swahili())
        hindi = await transcribe(client, SPEECH, request=Transcribe(language="hi"))
        named = await transcribe(client, SPEECH, request=Transcribe(name="acme-sw"))
    assert heard.transcript == named.transcript == " ".join(SWAHILI)
    assert hindi.transcript.startswith("batti jalao")
    assert [record.api_key for record in simulator.connections] == [ACME_KEY, ACME_KEY]
    assert len(bodhi.connections) == 1


def addon_options(**acme: str) -> dict[str, Any]:
    """What the Supervisor writes to /data/options.json: the add-on's options as they are by
    default (engine keys left empty), with Acme's set."""
    addon = yaml.safe_load((ROOT / "addon.yaml").read_text(encoding="utf-8"))
    return {**addon["options"], **acme}


@pytest.mark.parametrize("source", ["env", "file", "config", "addon"])
async def test_its_key_is_read_from_wherever_a_key_may_be_given(
    acme: EngineSpec[Any], tmp_path: Path, source: str
) -> None:
    """ACME_API_KEY, ACME_API_KEY_FILE, the config file, and the add-on's options.json (which
    docker/run-addon.sh hands to the server with --config), each as the simulator received it."""
    async with acme_simulator(acme) as simulator:
        # The address as docker/run-addon.sh gives it; the rest from where the test says.
        argv = ["--uri", "tcp://127.0.0.1:0"]
        environ = {"ACME_URL": simulator.url}
        if source == "env":
            environ["ACME_API_KEY"] = ACME_KEY
        elif source == "file":
            (tmp_path / "acme.key").write_text(ACME_KEY + "\n", encoding="utf-8")
            environ["ACME_API_KEY_FILE"] = str(tmp_path / "acme.key")
        elif source == "config":
            config = tmp_path / "config.yaml"
            config.write_text(
                yaml.safe_dump({"acme_api_key": ACME_KEY, "acme_url": simulator.url}),
                encoding="utf-8",
            )
            argv, environ = [*argv, "--config", str(config)], {}
        else:
            options = tmp_path / "options.json"
            options.write_text(
                json.dumps(addon_options(acme_api_key=ACME_KEY, acme_url=simulator.url))
            )
            argv, environ = [*argv, "--config", str(options)], {}
        settings = load(argv, environ)
        assert settings.of(acme).acme_api_key == ACME_KEY
        assert settings.model == "acme-sw"  # the only engine configured: its model is the default
        async with serving_bridge(settings) as running, running.client() as client:
            exchange = await transcribe(client, SPEECH, request=swahili())
    assert exchange.transcript == " ".join(SWAHILI)
    (record,) = simulator.connections
    assert record.api_key == ACME_KEY


async def test_the_add_on_serves_it_from_its_options_and_never_shows_the_key(
    acme: EngineSpec[Any], tmp_path: Path
) -> None:
    """docker/run-addon.sh, for real, with Acme's key in the options the Supervisor writes:
    Swahili is transcribed by Acme, and the key is in neither the log nor the status page."""
    port, ingress = free_port(), free_port()
    async with acme_simulator(acme) as simulator:
        options = tmp_path / "options.json"
        options.write_text(json.dumps(addon_options(acme_api_key=ACME_KEY, acme_url=simulator.url)))
        env = clean_env(
            ADDON_OPTIONS=str(options),
            ADDON_HOST="127.0.0.1",
            ADDON_PORT=str(port),
            ADDON_INGRESS_PORT=str(ingress),
            ADDON_INGRESS_FROM="127.0.0.1",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env.pop("SUPERVISOR_TOKEN", None)
        with process([str(ROOT / "docker" / "run-addon.sh")], env, program="sh") as script:
            await wait_for_port(port, script, timeout=30)
            assert await check(f"tcp://127.0.0.1:{port}") is None
            async with AsyncTcpClient("127.0.0.1", port) as client:
                exchange = await transcribe(client, SPEECH, request=swahili())
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{ingress}/api/status") as response:
                    status = await response.text()
            script.terminate()
            output, _ = script.communicate(timeout=20)
    assert script.returncode == 0, output
    assert exchange.transcript == " ".join(SWAHILI)
    assert simulator.connections[0].api_key == ACME_KEY
    assert '"acme_api_key": "set"' in status
    assert "Acme at ws://127.0.0.1:" in output  # its serving line
    assert ACME_KEY not in output + status


async def test_the_demo_serves_it_through_its_own_simulator(acme: EngineSpec[Any]) -> None:
    """`wyoming-bodhi --demo`, then `wyoming-bodhi-transcribe --language sw`, as processes."""
    port = free_port()
    uri = f"tcp://127.0.0.1:{port}"
    with process(["-m", "wyoming_bodhi", "--demo", "--uri", uri], clean_env()) as server:
        await wait_for_port(port, server)
        heard = await asyncio.to_thread(
            subprocess.run,
            [Path(sys.executable).parent / "wyoming-bodhi-transcribe", SAMPLE, "--uri", uri,
             "--language", "sw"],
            capture_output=True, text=True, timeout=30, env=clean_env(),
        )  # fmt: skip
        server.terminate()
        log, _ = server.communicate(timeout=10)
    assert heard.returncode == 0, heard.stderr
    assert heard.stdout.strip() == (
        "simulated Swahili phrase 1 from the Acme simulator "
        "simulated Swahili phrase 2 from the Acme simulator"
    )
    assert "Acme at ws://127.0.0.1:" in log
    assert "ACME_API_KEY and drop --demo" in log


async def test_the_status_page_shows_it_and_checks_it(acme: EngineSpec[Any]) -> None:
    async with (
        running_simulator() as bodhi,
        acme_simulator(acme) as simulator,
        running_bridge(
            bodhi.url, acme_api_key=ACME_KEY, acme_url=simulator.url, http_uri="tcp://127.0.0.1:0"
        ) as running,
        running_status_page(running) as page,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{page.port}"
        async with http.get(f"{base}/api/status") as response:
            status = await response.json()
        async with http.post(f"{base}/api/check/acme", headers={"Origin": base}) as response:
            checked = await response.json()
    (shown,) = [engine for engine in status["engines"] if engine["name"] == "acme"]
    assert shown["title"] == "Acme"
    assert shown["models"] == [{"name": "acme-sw", "languages": ["sw", "sw-KE"]}]
    assert shown["credentials"] == "api key …47c3"
    assert status["configuration"]["acme_api_key"] == "set"
    assert status["configuration"]["acme_url"] == simulator.url
    assert checked["ok"] is True, checked
    assert checked["summary"].startswith("Acme accepted the credentials")
    assert simulator.connections[-1].api_key == ACME_KEY


def test_list_models_prints_it(acme: EngineSpec[Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wyoming_bodhi", "--list-models"],
        capture_output=True, text=True, timeout=30, env=clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("acme-sw ")]
    assert line.split()[1:4] == ["sw,", "sw-KE", "Swahili,"]


def test_its_settings_are_flags_variables_and_a_secret_nobody_listed(
    acme: EngineSpec[Any],
) -> None:
    helped = build_parser().format_help()
    assert "--acme-url" in helped and "ACME_URL" in helped
    assert "--acme-api-key" not in helped  # a secret is never a flag
    settings = validate({"acme_api_key": ACME_KEY, "api_key": API_KEY, "customer_id": CUSTOMER_ID})
    assert set(settings.secrets) == {ACME_KEY, API_KEY, CUSTOMER_ID}
    assert ACME_KEY not in repr(settings)


def test_endpointing_is_refused_since_it_cannot_end_a_phrase(acme: EngineSpec[Any]) -> None:
    assert not acme.capabilities.ends_phrases
    with pytest.raises(SettingsError, match=r"Acme does not complete a phrase on silence"):
        validate({"acme_api_key": ACME_KEY, "endpointing": True})
    # Without Acme configured, the same settings serve Bodhi with endpointing.
    bodhi = {"api_key": API_KEY, "customer_id": CUSTOMER_ID}
    assert validate({**bodhi, "endpointing": True}).endpointing


def test_the_secrets_tests_run_over_it(acme: EngineSpec[Any]) -> None:
    """tests/test_security.py's echo test is parametrised over the installed engines: Acme's
    simulator quotes the key back, and it must reach no log, error, page or metric."""
    from .test_security import ENGINES

    assert acme in ENGINES


def test_a_developer_s_own_configuration_reaches_no_test_process(
    acme: EngineSpec[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The servers and clients the tests start get none of the variables a setting reads
    (Acme's too, which no list in the tests names), nor the config file or engine filter."""
    own = {
        "ACME_API_KEY": "developer-acme-key-77e0",
        "ACME_API_KEY_FILE": "/run/secrets/acme",
        "ACME_URL": "wss://asr.acme.example",
        "WYOMING_BODHI_ENGINES": "acme",
        "BODHI_CONFIG": "/etc/wyoming-bodhi.yaml",
        "BODHI_CA": "/etc/ssl/ca.pem",  # an old name
    }
    for name, value in own.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ACME_HOME", "/home/acme")  # no setting's
    env = clean_env()
    assert not set(own) & set(env)
    assert env["ACME_HOME"] == "/home/acme"
