"""Secrets never leak; TLS is always verified; plain ws:// off this machine needs consent."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.info import Describe

from wyoming_bodhi.settings import SettingsError, load

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    running_bridge,
    running_simulator,
    self_signed_certificate,
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
            running_bridge(simulator.url, bodhi_ca=str(cert)) as bridge,
            bridge.client() as client,
        ):
            trusted = await transcribe(client, AUDIO)
    assert refused.error.data["code"] == "bodhi-tls"
    assert "certificate verification failed" in refused.error.data["text"]
    assert "--bodhi-ca" in refused.error.data["text"]
    assert trusted.transcript == "batti jalao"
    # The refused attempt never got as far as an HTTP request: no key was sent.
    assert len(simulator.connections) == 1


def test_a_ca_file_that_cannot_be_loaded_is_a_clear_start_up_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    env = {"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID}
    with pytest.raises(
        SettingsError, match=r"invalid bodhi_ca '.*' \(--bodhi-ca\): cannot load CA certificates"
    ):
        load(["--bodhi-ca", str(bogus)], env)
    with pytest.raises(SettingsError, match="cannot load CA certificates"):
        load(["--bodhi-ca", str(tmp_path / "missing.pem")], env)


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
