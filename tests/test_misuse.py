"""Clients that misuse the protocol get an error event or a defined recovery, never a crash."""

from __future__ import annotations

import asyncio
import json

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe

from .harness import (
    Exchange,
    RunningBridge,
    read_until_final,
    running_bridge,
    running_simulator,
    transcribe,
)
from .signals import encode, utterances

AUDIO = encode(utterances(16000, count=1))
TEXTS = ["batti jalao", "pankha chalao"]


async def still_serves(bridge: RunningBridge) -> None:
    """A fresh client gets a full answer: the server was not disturbed."""
    async with bridge.client() as client:
        exchange = await transcribe(client, AUDIO)
    assert exchange.types[-1] == "transcript-stop"


async def test_audio_chunk_before_audio_start_starts_the_request() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO, request=None, send_audio_start=False)
    assert exchange.transcript == "batti jalao"


async def test_transcribe_twice_drops_the_first_request_and_serves_the_second() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        first = Exchange()
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        await client.write_event(AudioChunk(16000, 2, 1, AUDIO[:8000]).event())
        await client.write_event(Transcribe(language="ta").event())
        await asyncio.wait_for(read_until_final(client, first), 5)
        second = await transcribe(client, AUDIO, request=None)
    assert first.types == ["transcript-start", "error"]
    assert first.error.data["code"] == "protocol"
    assert second.transcript == "batti jalao"
    assert simulator.connections[-1].config["model"] == "ta-general-v2-8khz"  # type: ignore[index]


async def test_audio_stop_with_no_audio_is_an_empty_transcript() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, b"")
    assert exchange.transcript == ""
    assert simulator.connections[0].eof_received and not simulator.connections[0].frames


async def test_audio_stop_with_no_request_is_answered() -> None:
    async with running_bridge("ws://127.0.0.1:9") as bridge, bridge.client() as client:
        exchange = Exchange()
        await client.write_event(AudioStop().event())
        await asyncio.wait_for(read_until_final(client, exchange), 2)
    assert exchange.error.data["code"] == "protocol"


@pytest.mark.parametrize(
    ("rate", "width", "channels", "message"),
    [
        (0, 2, 1, "unsupported audio rate 0 Hz"),
        (
            1,
            2,
            1,
            "unsupported audio rate 1 Hz: expected a whole number of samples per second "
            "from 8000 to 192000",
        ),
        (16000, 5, 1, "unsupported audio width 5 bytes: expected 1, 2, 3 or 4"),
        (16000, 2, 0, "unsupported audio channel count 0"),
        (10**9, 2, 1, "unsupported audio rate 1000000000 Hz"),
    ],
)
async def test_absurd_formats_are_refused_and_the_connection_goes_on(
    rate: int, width: int, channels: int, message: str
) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(
            client, b"\x00" * 3000, rate=rate, width=width, channels=channels
        )
        # Chunks in the same bad format, without audio-start.
        chunks_only = await transcribe(
            client,
            b"\x00" * 3000,
            rate=rate,
            width=width,
            channels=channels,
            send_audio_start=False,
        )
        again = await transcribe(client, AUDIO)
    for refused in (exchange, chunks_only):
        assert refused.events[-1].type == "error"
        assert refused.events[-1].data["code"] == "audio-format"
        assert message in refused.events[-1].data["text"]
    assert again.transcript == "batti jalao"


async def test_malformed_event_is_an_error_and_the_connection_goes_on() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = Exchange()
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(Event("audio-chunk", {"width": 2, "channels": 1}, b"\x00" * 64))
        await asyncio.wait_for(read_until_final(client, exchange), 5)
        await client.write_event(AudioStop().event())
        again = await transcribe(client, AUDIO)
    assert exchange.types == ["transcript-start", "error"]
    assert exchange.error.data["code"] == "protocol"
    assert "malformed 'audio-chunk' event" in exchange.error.data["text"]
    assert again.transcript == "batti jalao"


@pytest.mark.parametrize(
    "frame",
    [
        b"this is not json\n",
        b'["a", "list"]\n',
        b'{"no": "type"}\n',
        json.dumps({"type": "audio-chunk", "payload_length": 100 * 1024 * 1024}).encode() + b"\n",
        json.dumps({"type": "transcribe", "data_length": 10 * 1024 * 1024}).encode() + b"\n",
        json.dumps({"type": "audio-chunk", "payload_length": -1}).encode() + b"\n",
        json.dumps({"type": "describe", "data": [1, 2]}).encode() + b"\n",
        b'{"type": "describe", "pad": "' + b"x" * (70 * 1024) + b'"}\n',
    ],
    ids=[
        "garbage",
        "not-an-object",
        "no-type",
        "huge-payload",
        "huge-data",
        "negative",
        "bad-data",
        "long-header",
    ],
)
async def test_broken_framing_closes_only_that_connection(frame: bytes) -> None:
    async with running_simulator(texts=TEXTS) as simulator, running_bridge(simulator.url) as bridge:
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        writer.write(frame)
        await writer.drain()
        # The server closes the connection at once, without waiting for the announced bytes.
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await still_serves(bridge)


async def test_too_many_concurrent_utterances_are_refused() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, max_sessions=1) as bridge,
        bridge.client() as holder,
        bridge.client() as other,
    ):
        await holder.write_event(Transcribe(language="hi").event())
        await holder.write_event(AudioStart(16000, 2, 1).event())
        await simulator.wait_for_connections(1)
        refused = await transcribe(other, AUDIO)
        await holder.write_event(AudioStop().event())
        held = Exchange()
        await asyncio.wait_for(read_until_final(holder, held), 5)
        # The slot is free again.
        served = await transcribe(other, AUDIO)
    assert refused.types == ["error"]
    assert refused.error.data["code"] == "busy"
    assert held.types[-1] == "transcript-stop"
    assert served.types[-1] == "transcript-stop"


async def test_audio_longer_than_max_audio_is_an_error() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, max_audio=1.0, lead=30) as bridge,
        bridge.client() as client,
    ):
        audio = encode(utterances(16000, count=2))
        # The Bodhi session open first (the request starts it), then the rest at once: sent
        # all at once, the audio passes the limit before the handshake is done.
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        await client.write_event(AudioChunk(16000, 2, 1, audio[:3200]).event())
        (record,) = await simulator.wait_for_connections(1, timeout=5)
        exchange = await transcribe(client, audio[3200:], request=None, send_audio_start=False)
        # The Bodhi session is closed, and got no more than the limit (with a lead of 30 s,
        # the limit is what held the rest back, not the pacing).
        await asyncio.wait_for(record.closed.wait(), 2)
    assert 0 < record.audio_bytes <= 1.1 * 16000, record
    assert exchange.error.data["code"] == "audio-too-long"


async def test_one_failing_client_does_not_disturb_another() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
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
        await good.write_event(Describe().event())
    assert exchange.transcript == "batti jalao"


async def test_a_bug_in_an_utterance_still_answers_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wyoming_bodhi.pipeline.transcript import TranscriptAssembler

    def broken(self: TranscriptAssembler, result: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(TranscriptAssembler, "feed", broken)
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, AUDIO)
    assert exchange.error.data["code"] == "internal"
