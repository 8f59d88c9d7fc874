"""Secrets never leak; TLS is always verified; plain ws:// off this machine needs consent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.info import Describe

from wyoming_bodhi.engines import registry
from wyoming_bodhi.engines.plugin import EngineSpec
from wyoming_bodhi.settings import SettingsError, load, validate

from .engine_fixtures import ECHO_ENGINE
from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    RunningBridge,
    clean_env,
    running_bridge,
    running_metrics_listener,
    running_simulator,
    running_status_page,
    self_signed_certificate,
    serving_bridge,
    transcribe,
)
from .signals import encode, utterances
from .test_fault_matrix import FAULTS, serving

AUDIO = encode(utterances(16000, count=1))
SECRETS = (API_KEY, CUSTOMER_ID)


def assert_secret_free(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


async def test_no_path_leaks_the_key_or_customer_id_even_at_debug(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Every fault, misuse and success path, with every logger at DEBUG (aiohttp's too)."""
    caplog.set_level(logging.DEBUG)
    seen: list[Exchange] = []
    for fault in FAULTS:
        async with serving(fault, debug=True) as (_simulator, bridge), bridge.client() as client:
            seen.append(await transcribe(client, fault.audio, request=fault.request))
    cert, key = self_signed_certificate(tmp_path)
    async with running_simulator(tls_cert=str(cert), tls_key=str(key)) as simulator:
        async with running_bridge(simulator.url) as bridge, bridge.client() as client:
            seen.append(await transcribe(client, AUDIO))  # TLS refused
    async with running_simulator(texts=["batti jalao"]) as simulator:
        async with (
            running_bridge(simulator.url, endpointing=True, max_sessions=1, max_audio=5) as bridge,
            bridge.client() as client,
            bridge.client() as other,
        ):
            await client.write_event(Describe().event())
            info = await asyncio.wait_for(client.read_event(), 2)
            assert info is not None
            seen.append(Exchange([info]))
            seen.append(await transcribe(client, AUDIO, realtime=False))
            seen.append(await transcribe(client, b"\x00" * 100, width=3))
            await client.write_event(Transcribe(language="hi").event())
            await client.write_event(AudioStart(16000, 2, 1).event())
            seen.append(await transcribe(other, AUDIO))  # busy
            await client.write_event(AudioChunk(16000, 2, 1, AUDIO).event())
        # ... and the client above vanished mid-utterance.
    assert any(e.types and e.types[-1] == "error" for e in seen)
    assert any("transcript" in e.types for e in seen)
    assert_secret_free(caplog.text, *(str(event.data) for e in seen for event in e.events))
    for record in caplog.records:
        if record.exc_info and record.exc_info[1] is not None:
            assert_secret_free(repr(record.exc_info[1]), str(record.exc_info[1]))


async def test_an_engine_that_echoes_the_key_back_does_not_leak_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hostile (or careless) server quoting our credentials in its error, in the socket
    and in a refused handshake: blanked out before it is logged or sent to the client."""
    caplog.set_level(logging.DEBUG)
    echo = json.dumps({"error": f"bad key {API_KEY} for customer {CUSTOMER_ID}", "code": 400})
    seen: list[Exchange] = []
    async with (
        running_simulator(raw_before_results=[echo]) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        seen.append(await transcribe(client, AUDIO))
    assert seen[0].error.data["code"] == "bodhi-400"
    assert "bad key … for customer …" in seen[0].error.data["text"]
    assert_secret_free(caplog.text, *(str(event.data) for e in seen for event in e.events))


# Every installed engine, and one that no list in the package names.
ENGINES = [*registry.installed(), ECHO_ENGINE]


@contextlib.asynccontextmanager
async def serving_only(engine: EngineSpec[Any], **raw: Any) -> AsyncIterator[RunningBridge]:
    """The bridge with this one engine configured, and its status page."""
    settings = validate(
        {
            "uri": "tcp://127.0.0.1:0",
            "http_uri": "tcp://127.0.0.1:0",
            "metrics_uri": "tcp://127.0.0.1:0",
            **raw,
        },
        engines=[*registry.installed(), *([engine] if engine is ECHO_ENGINE else [])],
    )
    async with serving_bridge(settings) as running:
        yield running


@pytest.mark.parametrize("engine", ENGINES, ids=lambda engine: engine.name)
async def test_every_engine_s_key_is_blanked_when_its_server_echoes_it(
    engine: EngineSpec[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody lists an engine's secrets: what it declares secret is blanked out of what its
    server says, in the log, the client's error, the status page and /metrics."""
    caplog.set_level(logging.DEBUG)
    secret = f"{engine.name}-key-5d1f9a3c7e2b4068"
    simulate = registry.simulator(engine)
    assert simulate is not None, engine.name
    async with (
        simulate(engine.settings(), history=10, echo_credentials=True) as simulator,
        serving_only(
            engine, **{engine.credential: secret, engine.url_setting: simulator.url}, retries=0
        ) as running,
        running_status_page(running) as page,
        running_metrics_listener(running) as probes,
        aiohttp.ClientSession() as http,
    ):
        model = engine.models(engine.settings())[0]
        async with running.client() as client:
            exchange = await transcribe(client, AUDIO, request=Transcribe(name=model.name))
        served = []
        for url in (f"http://127.0.0.1:{page.port}/api/status",
                    f"http://127.0.0.1:{page.port}/metrics",
                    f"http://127.0.0.1:{probes.port}/metrics"):  # fmt: skip
            async with http.get(url) as response:
                served.append(await response.text())
        async with http.ws_connect(f"http://127.0.0.1:{page.port}/api/live") as live:
            served.append(str(await live.receive_json()))
        assert running.bridge.settings.secrets == (secret,)
    # The server did quote the key back, and it was blanked out.
    assert simulator.connections[0].api_key == secret
    error = exchange.error.data
    assert "credentials not accepted: api key …" in error["text"], error
    assert secret not in caplog.text
    assert secret not in str(exchange.events)
    for text in served:
        assert secret not in text
    assert secret not in repr(running.bridge.settings)


def test_a_secret_in_any_log_line_is_blanked_at_the_sink() -> None:
    """The server's logging blanks every declared secret (and the Supervisor's token) out of
    each line it writes, tracebacks included: whatever code logged it."""
    script = (
        "import logging, os\n"
        "from wyoming_bodhi.__main__ import configure_logging\n"
        "from wyoming_bodhi.settings import load\n"
        "configure_logging(load([], os.environ))\n"
        "try:\n"
        f"    raise ValueError('a library quoting {API_KEY} and {CUSTOMER_ID}')\n"
        "except ValueError:\n"
        "    logging.getLogger('somewhere').exception('failed: %s', os.environ['SUPERVISOR_TOKEN'])\n"
    )
    token = "supervisor-token-0c4f8e2a9b71"
    env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, SUPERVISOR_TOKEN=token)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=20
    )
    assert "ValueError: a library quoting … and …" in done.stderr, done.stderr
    assert "failed: …" in done.stderr
    assert_secret_free(done.stderr)
    assert token not in done.stderr


def test_settings_never_show_secrets() -> None:
    settings = load([], {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID})
    assert_secret_free(repr(settings), str(settings))


async def test_tls_is_verified_unless_the_ca_is_given(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    async with running_simulator(
        tls_cert=str(cert), tls_key=str(key), texts=["batti jalao"]
    ) as simulator:
        assert simulator.url.startswith("wss://127.0.0.1:")
        async with running_bridge(simulator.url) as bridge, bridge.client() as client:
            refused = await transcribe(client, AUDIO)
        async with (
            running_bridge(simulator.url, ca_file=str(cert)) as bridge,
            bridge.client() as client,
        ):
            trusted = await transcribe(client, AUDIO)
    assert refused.error.data["code"] == "bodhi-tls"
    assert "certificate verification failed" in refused.error.data["text"]
    assert "--ca-file" in refused.error.data["text"]
    assert trusted.transcript == "batti jalao"
    # The refused attempt never got as far as an HTTP request: no key was sent.
    assert len(simulator.connections) == 1


def test_a_ca_file_that_cannot_be_loaded_is_a_clear_start_up_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    env = {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID}
    with pytest.raises(
        SettingsError, match=r"invalid ca_file '.*' \(--ca-file\): cannot load CA certificates"
    ):
        load(["--ca-file", str(bogus)], env)
    with pytest.raises(SettingsError, match="cannot load CA certificates"):
        load(["--ca-file", str(tmp_path / "missing.pem")], env)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("ws://127.0.0.1:8765", True),
        ("ws://localhost:8765", True),
        ("ws://[::1]:8765", True),
        ("ws://192.0.2.10:8765", False),
        ("ws://bodhi.example.com", False),
        ("wss://bodhi.example.com", True),
    ],
)
def test_plain_ws_off_this_machine_needs_allow_insecure(url: str, allowed: bool) -> None:
    env = {"BODHI_API_KEY": API_KEY}
    if allowed:
        load(["--bodhi-url", url], env)
        return
    with pytest.raises(
        SettingsError, match="ws:// would send the API key and your audio unencrypted"
    ):
        load(["--bodhi-url", url], env)
    assert load(["--bodhi-url", url, "--allow-insecure"], env).allow_insecure
