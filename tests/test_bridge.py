"""The bridge end to end: a Wyoming client, the bridge and the Bodhi simulator, all on loopback."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import Describe, Info

from wyoming_bodhi.pipeline.audio import FrameStream

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    read_until_final,
    running_bridge,
    running_simulator,
    transcribe,
)
from .signals import decode_s16, encode, level_db, tone, utterances

TEXTS = ["namaste duniya", "batti jalao"]


async def test_describe_answers_info_with_every_model() -> None:
    async with running_bridge("ws://127.0.0.1:9") as bridge:
        # The Bodhi URL points nowhere: Info must not need the cloud.
        async with bridge.client() as client:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), 1.0)
    assert event is not None and Info.is_type(event.type)
    info = Info.from_event(event)
    (program,) = info.asr
    assert program.name == "bodhi"
    assert program.attribution.name == "Navana"
    assert program.supports_transcript_streaming
    assert program.installed
    names = [model.name for model in program.models]
    assert len(names) == 21
    assert "hi-en-general-v2-8khz" in names and "or-general-v3-8khz" in names
    hindi = next(m for m in program.models if m.name == "hi-general-v2-8khz")
    assert hindi.installed and hindi.languages == ["hi", "hi-IN"]
    assert all(model.installed for model in program.models)
    assert API_KEY not in str(event.data) and CUSTOMER_ID not in str(event.data)


async def test_two_segment_utterance_streams_chunks_then_transcript() -> None:
    async with (
        running_simulator(texts=TEXTS, revise=True, empty_partials=True) as simulator,
        # With --debug the bridge asks for partials, to log them.
        running_bridge(simulator.url, debug=True) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, encode(utterances(16000)), rate=16000)
    assert exchange.types == [
        "transcript-start",
        "transcript-chunk",
        "transcript-chunk",
        "transcript",
        "transcript-stop",
    ]
    assert exchange.transcript == "namaste duniya batti jalao"
    assert exchange.chunks == ["namaste duniya", " batti jalao"]
    assert "".join(exchange.chunks) == exchange.transcript
    (final,) = exchange.of_type("transcript")
    assert final.data["language"] == "hi"
    assert exchange.of_type("transcript-start")[0].data["language"] == "hi"
    (record,) = simulator.connections
    # Partials were sent (revised and empty ones too) but none became a chunk.
    assert record.partials
    assert record.auth_headers and set(record.auth_headers) == {"x-api-key", "x-customer-id"}


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [(44100, 2, 2), (8000, 1, 1), (48000, 4, 6), (22050, 1, 2), (8000, 2, 1)],
)
async def test_any_pcm_format_is_transcribed(rate: int, width: int, channels: int) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        audio = encode(utterances(rate), width, channels)
        exchange = await transcribe(client, audio, rate=rate, width=width, channels=channels)
    assert exchange.transcript == "namaste duniya batti jalao"
    (record,) = simulator.connections
    assert record.config is not None and record.config["sample_rate"] == 8000


@pytest.mark.parametrize("chunk_ms", [50, 100, 320])
async def test_frames_on_the_wire_are_fixed_size_8khz_and_exactly_the_audio(
    chunk_ms: int,
) -> None:
    seconds = utterances(16000).size / 16000
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, chunk_ms=chunk_ms, lead=30) as bridge,
        bridge.client() as client,
    ):
        # Odd-sized chunks, so nothing lines up with a frame by luck.
        await transcribe(client, encode(utterances(16000)), chunk_seconds=0.0173)
    (record,) = simulator.connections
    frame_bytes = 8000 * 2 * chunk_ms // 1000
    assert {frame.size for frame in record.frames} == {frame_bytes}
    assert record.config is not None and record.config["sample_rate"] == 8000
    # Billing: the client's audio, converted, with at most the last frame padded.
    expected_frames = math.ceil(seconds * 8000 * 2 / frame_bytes)
    assert len(record.frames) == expected_frames
    assert record.eof_received


@pytest.mark.parametrize(
    ("settings", "frame_ms"),
    [
        ({}, 100),
        ({"endpointing": True}, 50),
        # What the user sets is sent, endpointing or not.
        ({"endpointing": True, "chunk_ms": 100}, 100),
        ({"chunk_ms": 50}, 50),
    ],
)
async def test_frames_are_50ms_only_while_bodhi_ends_the_command(
    settings: dict[str, object], frame_ms: int
) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, lead=30, **settings) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, encode(utterances(16000)), chunk_seconds=0.01)
    assert exchange.transcript
    (record,) = simulator.connections
    assert {frame.size for frame in record.frames} == {16 * frame_ms}


@pytest.mark.parametrize("chunk_seconds", [0.01, 0.0173, 4096 / 32000])
async def test_audio_stop_flushes_the_filter_and_pads_only_the_last_frame(
    chunk_seconds: float,
) -> None:
    # Home Assistant's 16 kHz s16 mono: the half-band filter's delay line is flushed at
    # audio-stop, so Bodhi gets every output sample (⌈n / 2⌉), then zeros to the frame.
    audio = encode(utterances(16000)) + encode(tone(16000, 0.0371, 440.0))
    count = (len(audio) // 2 + 1) // 2
    async with (
        running_simulator(texts=TEXTS, record_audio=True) as simulator,
        running_bridge(simulator.url, lead=30, endpointing=False, chunk_ms=50) as bridge,
        bridge.client() as client,
    ):
        await transcribe(client, audio, chunk_seconds=chunk_seconds)
    (record,) = simulator.connections
    assert record.eof_received
    assert len(record.frames) == math.ceil(count / 400)
    received = np.frombuffer(bytes(record.audio), "<i2")
    assert not received[count:].any()
    # The same samples, bit for bit, as the bridge's frame stream run on the whole audio.
    stream = FrameStream(8000, 800)
    expected = b"".join(stream.push(audio, 16000, 2, 1) + stream.flush())
    assert bytes(record.audio) == expected
    # And the tone that ends the audio made it out whole, up to its last samples.
    assert np.abs(received[count - 150 : count - 50]).max() > 1000


@pytest.mark.parametrize(
    ("request_", "expected_model"),
    [
        (Transcribe(language="ta-IN"), "ta-general-v2-8khz"),
        (Transcribe(language="bn_IN"), "bn-general-v2-8khz"),
        (Transcribe(language="hi"), "hi-general-v2-8khz"),
        (Transcribe(name="mr-banking-v2-8khz", language="hi"), "mr-banking-v2-8khz"),
        (Transcribe(name="bodhi", language="te"), "te-general-v2-8khz"),
        (Transcribe(language="fr"), "hi-general-v2-8khz"),
        (None, "hi-general-v2-8khz"),
    ],
)
async def test_model_choice(request_: Transcribe | None, expected_model: str) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, encode(utterances(16000, count=1)), request=request_)
    assert exchange.transcript == "namaste duniya"
    (record,) = simulator.connections
    assert record.config is not None and record.config["model"] == expected_model


async def test_language_in_the_configured_domain() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, domain="banking") as bridge,
        bridge.client() as client,
    ):
        await transcribe(
            client, encode(utterances(16000, count=1)), request=Transcribe(language="kn-IN")
        )
    assert simulator.connections[0].config["model"] == "kn-banking-v2-8khz"  # type: ignore[index]


async def test_several_utterances_on_one_connection() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        first = await transcribe(client, encode(utterances(16000, count=1)))
        second = await transcribe(client, encode(utterances(8000, count=2), 1), rate=8000, width=1)
        third = await transcribe(
            client, encode(utterances(48000, count=1), 2, 2), rate=48000, channels=2
        )
    assert first.transcript == "namaste duniya"
    assert second.transcript == "namaste duniya batti jalao"
    assert third.transcript == "namaste duniya"
    assert len(simulator.connections) == 3
    transaction_ids = {record.config["transaction_id"] for record in simulator.connections}  # type: ignore[index]
    assert len(transaction_ids) == 3


async def test_audio_start_without_transcribe_uses_the_default_model() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, model="gu-general-v2-8khz") as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, encode(utterances(16000, count=1)), request=None)
    assert exchange.transcript == "namaste duniya"
    assert exchange.of_type("transcript")[0].data["language"] == "gu"
    assert simulator.connections[0].config["model"] == "gu-general-v2-8khz"  # type: ignore[index]


async def test_slow_handshake_loses_no_audio() -> None:
    audio = encode(utterances(16000))
    async with (
        running_simulator(texts=TEXTS, handshake_delay=0.4) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, audio)
    assert exchange.transcript == "namaste duniya batti jalao"
    (record,) = simulator.connections
    # 16 kHz s16 → 8 kHz s16 halves the bytes; 1600 bytes a 100 ms frame.
    assert len(record.frames) == math.ceil(len(audio) / 2 / 1600)


async def test_burst_is_paced_to_at_most_lead_ahead_of_real_time() -> None:
    lead = 0.2
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, chunk_ms=50, lead=lead) as bridge,
        bridge.client() as client,
    ):
        # 1.1 s of audio, all at once.
        sent_at = time.monotonic()
        await transcribe(client, encode(utterances(16000, count=1, burst=0.9)))
    (record,) = simulator.connections
    # Frame i may not arrive before its audio would exist had the client spoken it from
    # sent_at, less the lead (a little slack for the loopback). Anchored on the client's
    # start, not on the first frame's arrival: a handshake slowed by a loaded machine delays
    # the first frames, and those queued meanwhile may then rightly go out together.
    for index, frame in enumerate(record.frames):
        assert frame.at >= sent_at + index * 0.05 - lead - 0.02, index
    # Paced, not sent at once: the last frame no sooner than its audio, less the lead.
    audio_span = (len(record.frames) - 1) * 0.05
    assert record.frames[-1].at - sent_at >= audio_span - lead - 0.02


async def test_live_audio_is_not_delayed() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, chunk_ms=100, lead=0) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(
            client, encode(utterances(16000, count=1, burst=0.5)), realtime=True
        )
    assert exchange.transcript == "namaste duniya"
    (record,) = simulator.connections
    # Strict real time (lead 0) and the client sends in real time: each frame leaves as
    # soon as its audio is complete, so arrivals track the audio clock with no backlog.
    first = record.frames[0].at
    for index, frame in enumerate(record.frames[:-1]):
        assert frame.at - first <= index * 0.1 + 0.08


async def test_client_disconnect_closes_the_bodhi_socket_at_once() -> None:
    async with running_simulator() as simulator, running_bridge(simulator.url) as bridge:
        client = bridge.client()
        await client.connect()
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        audio = encode(utterances(16000, count=1))
        await client.write_event(AudioChunk(16000, 2, 1, audio[:16000]).event())
        (record,) = await simulator.wait_for_connections(1, timeout=5)
        await client.disconnect()
        await asyncio.wait_for(record.closed.wait(), 1.0)
    assert not record.eof_received


async def received_audio(audio: bytes, rate: int) -> bytes:
    """What Bodhi receives when a client sends ``audio``."""
    async with (
        running_simulator(record_audio=True) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
        bridge.client() as client,
    ):
        await transcribe(client, audio, rate=rate)
    (record,) = simulator.connections
    return bytes(record.audio)


async def test_out_of_band_audio_is_filtered_not_aliased_on_the_wire() -> None:
    # A 6 kHz tone cannot exist at 8 kHz; a converter without an anti-aliasing filter
    # folds it to 2 kHz at full level. It must arrive at least 60 dB below a 1 kHz tone.
    in_band = decode_s16(await received_audio(encode(tone(16000, 1.0, 1000.0, 0.5)), 16000))
    out_of_band = decode_s16(await received_audio(encode(tone(16000, 1.0, 6000.0, 0.5)), 16000))
    assert len(in_band) == len(out_of_band) == 8000
    # Away from the edges, where the resampler's filter settles.
    assert level_db(in_band[800:-800]) - level_db(out_of_band[800:-800]) >= 60
    spectrum = np.abs(np.fft.rfft(in_band[800:-800]))
    peak_hz = np.argmax(spectrum) * 8000 / len(in_band[800:-800])
    assert abs(peak_hz - 1000) < 10


async def test_format_change_within_an_utterance() -> None:
    first = encode(utterances(16000, count=1, edge=0.5))
    second = encode(utterances(44100, count=1, edge=0.5), 2, 2)
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
        bridge.client() as client,
    ):
        exchange = Exchange()
        reader = asyncio.create_task(read_until_final(client, exchange))
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        await client.write_event(AudioChunk(16000, 2, 1, first).event())
        # The format changes mid-utterance, without a new audio-start.
        for offset in range(0, len(second), 44100 * 4):
            await client.write_event(
                AudioChunk(44100, 2, 2, second[offset : offset + 44100 * 4]).event()
            )
        await client.write_event(AudioStop().event())
        await asyncio.wait_for(reader, 10)
    assert exchange.transcript == "namaste duniya batti jalao"
    (record,) = simulator.connections
    seconds = len(first) / 32000 + len(second) / (44100 * 4)
    assert abs(record.audio_bytes / 16000 - seconds) < 0.1 + 0.1  # + at most one padded frame
