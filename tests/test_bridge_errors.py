"""Every failure ends the request with an error event, in bounded time, and nothing else breaks."""

from __future__ import annotations

import asyncio
import time

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    read_until_final,
    running_bridge,
    running_simulator,
    transcribe,
)
from .signals import encode, utterances

AUDIO = encode(utterances(16000, count=1))


def assert_no_secrets(exchange: Exchange) -> None:
    for event in exchange.events:
        assert API_KEY not in str(event.data) and CUSTOMER_ID not in str(event.data)


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "check BODHI_API_KEY and BODHI_CUSTOMER_ID"),
        (402, "insufficient balance"),
        (403, "deactivated"),
        (500, "internal error"),
        (503, "unavailable or overloaded"),
    ],
)
async def test_handshake_refusal_becomes_an_error_event(status: int, hint: str) -> None:
    async with (
        running_simulator(refuse_status=status) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO)
        # The bridge keeps serving: the same client asks again and gets the same answer.
        again = await transcribe(client, AUDIO)
    assert exchange.types == ["transcript-start", "error"]
    assert exchange.error.data["code"] == f"bodhi-{status}"
    assert hint in exchange.error.data["text"]
    assert again.error.data["code"] == f"bodhi-{status}"
    assert_no_secrets(exchange)


async def test_in_socket_400_names_the_cause() -> None:
    # The bridge knows a model (added by the user) that this Bodhi does not serve.
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, extra_models=["pa-general-v3-8khz"]) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO, request=Transcribe(name="pa-general-v3-8khz"))
    assert exchange.error.data["code"] == "bodhi-400"
    assert "model 'pa-general-v3-8khz' is not available" in exchange.error.data["text"]


async def test_unreachable_bodhi() -> None:
    async with running_bridge("ws://127.0.0.1:9") as bridge, bridge.client() as client:
        exchange = await transcribe(client, AUDIO)
    assert exchange.error.data["code"] == "bodhi-unreachable"
    assert "cannot connect to Bodhi at 127.0.0.1:9" in exchange.error.data["text"]


async def test_handshake_timeout() -> None:
    async with (
        running_simulator(handshake_delay=10) as simulator,
        running_bridge(simulator.url, connect_timeout=0.5) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await transcribe(client, AUDIO)
    assert exchange.error.data["code"] == "bodhi-timeout"
    assert time.monotonic() - started < 3


async def test_silent_after_eof_times_out_within_response_timeout() -> None:
    async with (
        running_simulator(silent_after_eof=True) as simulator,
        running_bridge(simulator.url, response_timeout=0.5, lead=30) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO)
        (record,) = simulator.connections
        stopped_at = max(frame.at for frame in record.frames)
        await asyncio.wait_for(record.closed.wait(), 2)
    assert exchange.error.data["code"] == "bodhi-timeout"
    assert "no final result within 0.5 s" in exchange.error.data["text"]
    assert record.ended_at is not None and record.ended_at - stopped_at < 2


@pytest.mark.parametrize(
    ("fault", "code"),
    [({"drop_after_frames": 3}, "bodhi-connection-lost"), ({"error_after_frames": 3}, "bodhi-500")],
)
async def test_failure_mid_utterance(fault: dict[str, int], code: str) -> None:
    async with (
        running_simulator(**fault) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO)
    assert exchange.error.data["code"] == code


async def test_malformed_results_are_skipped() -> None:
    async with (
        running_simulator(texts=["namaste"], malformed_results=True) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO)
    assert exchange.transcript == "namaste"


async def test_unsupported_audio_format_is_an_error_event() -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, b"\x00" * 3000, rate=16000, width=3)
        again = await transcribe(client, AUDIO)
    assert exchange.error.data["code"] == "audio-format"
    assert "width 3" in exchange.error.data["text"]
    assert again.types[-1] == "transcript-stop"


async def test_audio_stop_alone_is_answered() -> None:
    async with running_bridge("ws://127.0.0.1:9") as bridge, bridge.client() as client:
        exchange = Exchange()
        await client.write_event(AudioStop().event())
        await asyncio.wait_for(read_until_final(client, exchange), 2)
    assert exchange.error.data["code"] == "protocol"


async def test_one_failing_client_does_not_disturb_another() -> None:
    async with (
        running_simulator(texts=["namaste"]) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as good,
        bridge.client() as bad,
    ):
        # The bad client starts an utterance and vanishes mid-stream.
        await bad.write_event(Transcribe(language="hi").event())
        await bad.write_event(AudioStart(16000, 2, 1).event())
        await bad.write_event(AudioChunk(16000, 2, 1, AUDIO[:8000]).event())
        await bad.disconnect()
        exchange = await transcribe(good, AUDIO)
    assert exchange.transcript == "namaste"
