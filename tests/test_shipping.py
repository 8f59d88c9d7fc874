"""How users meet the server: demo mode, config files, the health check, zeroconf."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Info

from wyoming_bodhi.homeassistant import mdns
from wyoming_bodhi.pipeline.utterance import TRANSCRIPT_LINES
from wyoming_bodhi.server.health import check, client_uri

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    clean_env,
    free_port,
    process,
    running_bridge,
    running_simulator,
    transcribe,
    wait_for_port,
)
from .signals import encode, utterances


def write_wav(path: Path, rate: int = 16000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(encode(utterances(rate), 2, channels))


async def run_module(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
    )


async def test_demo_mode_shows_the_whole_chain_without_an_account(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    write_wav(wav, 44100, 2)
    port = free_port()
    args = ["-m", "wyoming_bodhi", "--demo", "--uri", f"tcp://127.0.0.1:{port}"]
    with process(args, clean_env()) as server:
        await wait_for_port(port, server)
        result = await run_module(
            "wyoming_bodhi.transcribe", str(wav), "--uri", f"tcp://127.0.0.1:{port}", "--stream"
        )
        healthy = await run_module(
            "wyoming_bodhi", "--health-check", "--uri", f"tcp://127.0.0.1:{port}"
        )
        server.terminate()
        log, _ = server.communicate(timeout=5)
    assert result.returncode == 0, result.stderr
    # The demo says plainly where its words come from, in the transcript and in the log.
    assert result.stdout.strip() == (
        "simulated transcript segment 1 from the Bodhi simulator "
        "simulated transcript segment 2 from the Bodhi simulator"
    )
    assert result.stderr.count("… ") == 2  # the streamed chunks
    assert "DEMO MODE: transcripts come from the bundled simulators (Bodhi at ws://" in log
    assert healthy.returncode == 0


async def test_the_demo_writes_no_log_line_per_request() -> None:
    # The demo serves on 0.0.0.0 in the image and the add-on, to anyone: its bundled
    # simulators must not log each request (two lines each were 3.6 MB a minute from one
    # client), any more than the server does: it logs a transcript line per request at a
    # human pace, TRANSCRIPT_LINES per 10 s at most, and counts the rest.
    port, requests = free_port(), 40
    args = ["-m", "wyoming_bodhi", "--demo", "--uri", f"tcp://127.0.0.1:{port}"]
    with process(args, clean_env()) as server:
        await wait_for_port(port, server)
        for _ in range(requests):
            async with AsyncTcpClient("127.0.0.1", port) as client:
                exchange = await transcribe(client, bytes(640))
            assert exchange.types[-1] in ("transcript-stop", "error"), exchange.types
        server.terminate()
        log, _ = server.communicate(timeout=10)
    lines = log.splitlines()
    begin = next(i for i, line in enumerate(lines) if " serving tcp://" in line)
    end = next(i for i, line in enumerate(lines) if "Shutting down" in line)
    while_serving = lines[begin + 1 : end]
    assert len(while_serving) <= TRANSCRIPT_LINES + 1, "\n".join(while_serving[:20])


async def test_config_file_settings_reach_bodhi(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    write_wav(wav)
    port = free_port()
    async with running_simulator(texts=["vanakkam"]) as simulator:
        options = tmp_path / "options.json"
        options.write_text(
            json.dumps(
                {
                    "api_key": API_KEY,
                    "customer_id": CUSTOMER_ID,
                    "bodhi_url": simulator.url,
                    "model": "ta-general-v2-8khz",
                    "chunk_ms": 200,
                    "uri": f"tcp://127.0.0.1:{port}",
                }
            )
        )
        args = ["-m", "wyoming_bodhi", "--config", str(options)]
        with process(args, clean_env()) as server:
            await wait_for_port(port, server)
            result = await run_module(
                "wyoming_bodhi.transcribe", str(wav), "--uri", f"tcp://127.0.0.1:{port}"
            )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("vanakkam")
    (record,) = simulator.connections
    assert record.config is not None and record.config["model"] == "ta-general-v2-8khz"
    assert {frame.size for frame in record.frames} == {3200}


async def test_a_bad_config_file_is_rejected_clearly(tmp_path: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"api_key": API_KEY, "customer_id": "12", "chunk_ms": 100}))
    result = await run_module("wyoming_bodhi", "--config", str(options))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"wyoming-bodhi: invalid customer_id (config file {options}): "
        "is not a UUID (expected 8-4-4-4-12 hexadecimal digits)"
    )


# -- health check -----------------------------------------------------------------------


async def test_health_check_tells_a_live_server_from_a_dead_one() -> None:
    async with running_bridge("ws://127.0.0.1:9") as bridge:
        live = await run_module(
            "wyoming_bodhi", "--health-check", "--uri", f"tcp://127.0.0.1:{bridge.port}"
        )
    dead = await run_module(
        "wyoming_bodhi", "--health-check", "--uri", f"tcp://127.0.0.1:{free_port()}"
    )
    assert live.returncode == 0, live.stderr
    assert dead.returncode == 1
    assert "unhealthy: cannot connect to tcp://127.0.0.1:" in dead.stderr


async def test_health_check_needs_no_credentials() -> None:
    # Docker's HEALTHCHECK and the add-on run it without the secrets.
    async with running_bridge("ws://127.0.0.1:9") as bridge:
        result = await run_module(
            "wyoming_bodhi", "--health-check", "--uri", f"tcp://0.0.0.0:{bridge.port}"
        )
    assert result.returncode == 0, result.stderr


async def serve_once(answer: Event | None) -> tuple[asyncio.Server, int]:
    """A stand-in Wyoming server that answers Describe with ``answer`` (or never)."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await async_read_event(reader)
        if answer is not None:
            await async_write_event(answer, writer)
        await reader.read()  # hold the connection until the client goes
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_health_check_wants_the_bodhi_program_within_two_seconds() -> None:
    other, other_port = await serve_once(Info().event())
    silent, silent_port = await serve_once(None)
    async with other, silent:
        assert "not as the bodhi speech-to-text server" in str(
            await check(f"tcp://127.0.0.1:{other_port}")
        )
        started = time.monotonic()
        problem = await check(f"tcp://127.0.0.1:{silent_port}")
        elapsed = time.monotonic() - started
    assert problem is not None and "did not answer Describe within 2 s" in problem
    assert 1.9 < elapsed < 3


def test_health_check_reaches_wildcard_binds_on_loopback() -> None:
    assert client_uri("tcp://0.0.0.0:10300") == "tcp://127.0.0.1:10300"
    assert client_uri("tcp://192.0.2.7:10300") == "tcp://192.0.2.7:10300"
    assert client_uri("unix:///run/bodhi.sock") == "unix:///run/bodhi.sock"


# -- zeroconf ---------------------------------------------------------------------------


def test_wildcard_bind_advertises_the_lan_address_not_0000() -> None:
    host, port = mdns.advertised_address("tcp://0.0.0.0:10300")
    assert port == 10300
    assert host == mdns.lan_address()
    assert host != "0.0.0.0"
    socket.inet_aton(host)
    assert mdns.advertised_address("tcp://127.0.0.1:10301") == ("127.0.0.1", 10301)


async def test_zeroconf_registers_a_wyoming_service_that_can_be_resolved() -> None:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncZeroconf

    # Kept to the loopback interface: the test publishes nothing on any real network.
    advertisement = await mdns.advertise(
        "tcp://127.0.0.1:10399", "bodhi-test", interfaces=["127.0.0.1"]
    )
    browser = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        found = await browser.async_get_service_info(
            mdns.SERVICE_TYPE, f"bodhi-test.{mdns.SERVICE_TYPE}", timeout=3000
        )
    finally:
        await browser.async_close()
        await advertisement.close()
    assert found is not None
    assert found.port == 10399
    assert found.parsed_addresses() == ["127.0.0.1"]


def test_zeroconf_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zeroconf", None)
    with pytest.raises(RuntimeError, match=r"pip install zeroconf \(in a clone"):
        asyncio.run(mdns.advertise("tcp://127.0.0.1:10300", None))
