"""Home Assistant voice features end to end: endpointing, sensitivity, hotwords, options."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import Describe, Info

from wyoming_bodhi.engines.bodhi.engine import HOTWORDS, BodhiEngine

from .harness import Exchange, read_until_final, running_bridge, running_simulator, transcribe
from .signals import encode, silence, tone, utterances

MAX_HOTWORDS = HOTWORDS.max_count

TEXTS = ["batti jalao", "pankha band karo"]


async def info_of(**settings: object) -> Info:
    async with running_bridge("ws://127.0.0.1:9", **settings) as bridge, bridge.client() as client:
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), 1)
    assert event is not None
    return Info.from_event(event)


async def test_endpointing_lets_bodhi_end_the_command() -> None:
    assert (await info_of()).asr[0].requires_external_vad is True
    assert (await info_of(endpointing=True)).asr[0].requires_external_vad is False


async def test_endpointing_answers_before_the_audio_has_all_been_sent() -> None:
    audio = encode(utterances(16000, count=2, burst=0.6, gap=1.0))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await transcribe(client, audio, realtime=True)
        answered_after = time.monotonic() - started
        (record,) = simulator.connections
        await asyncio.wait_for(record.closed.wait(), 6)
    audio_seconds = len(audio) / 32000
    assert exchange.types == [
        "transcript-start",
        "transcript-chunk",
        "transcript",
        "transcript-stop",
    ]
    assert exchange.transcript == "batti jalao"
    # The first phrase ends at 0.7 s; Bodhi needs 0.44 s of silence to complete it.
    assert answered_after < audio_seconds - 0.5
    # The bridge stopped sending audio and ended the session with eof.
    assert record.audio_bytes < audio_seconds * 16000 - 8000
    assert record.eof_received and record.ended == "eos"


async def test_without_endpointing_the_whole_audio_is_transcribed() -> None:
    audio = encode(utterances(16000, count=2, burst=0.6, gap=1.0))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, audio)
    assert exchange.transcript == "batti jalao pankha band karo"


async def test_no_speech_ends_with_an_empty_transcript() -> None:
    audio = encode(silence(16000, 4.0))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True, no_speech_timeout=1.0) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await transcribe(client, audio, realtime=True)
        elapsed = time.monotonic() - started
    assert exchange.transcript == ""
    assert 1.0 <= elapsed < 2.5


async def test_maximum_command_length_finalises() -> None:
    # Unbroken sound: Bodhi never hears the end of the phrase by itself.
    audio = encode(tone(16000, 4.0, 440.0, 0.3))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True, max_command=1.0) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await transcribe(client, audio, realtime=True)
        elapsed = time.monotonic() - started
    assert exchange.transcript == "batti jalao"
    assert 1.0 <= elapsed < 2.5


@pytest.mark.parametrize(
    ("sensitivity", "configured", "expected"),
    [
        ("relaxed", None, 1.2),
        ("aggressive", 0.8, 0.44),
        ("default", 0.8, 0.8),
        (None, 0.7, 0.7),
        (None, None, None),
    ],
)
async def test_vad_sensitivity_sets_the_endpoint_silence(
    sensitivity: str | None, configured: float | None, expected: float | None
) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpoint_silence=configured) as bridge,
        bridge.client() as client,
    ):
        request = Transcribe(language="hi", vad_sensitivity=sensitivity)
        await transcribe(client, encode(utterances(16000, count=1)), request=request)
    config = simulator.connections[0].config
    assert config is not None
    assert config.get("endpoint_silence_duration") == expected


async def test_names_terms_and_static_hotwords_reach_bodhi() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, hotwords=["batti:2.0", "Pankha", "geyser"]) as bridge,
        bridge.client() as client,
    ):
        request = Transcribe(
            language="hi",
            transcript_names=["Rasoi ki batti", "pankha", "Bedroom"],
            transcript_terms=["geyser", "AC"],
        )
        await transcribe(client, encode(utterances(16000, count=1)), request=request)
    config = simulator.connections[0].config
    assert config is not None
    assert config["hotwords"] == [
        {"phrase": "Rasoi ki batti", "score": 2.5},
        {"phrase": "pankha", "score": 2.5},  # a name and a static hotword: the higher score
        {"phrase": "Bedroom", "score": 2.5},
        {"phrase": "batti", "score": 2.0},
        {"phrase": "geyser"},  # static, without score: Bodhi's default; not repeated as a term
        {"phrase": "AC"},
    ]


async def test_hotwords_are_capped() -> None:
    names = [f"light {i}" for i in range(MAX_HOTWORDS + 50)]
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        request = Transcribe(language="hi", transcript_names=names)
        await transcribe(client, encode(utterances(16000, count=1)), request=request)
    config = simulator.connections[0].config
    assert config is not None
    assert [h["phrase"] for h in config["hotwords"]] == names[:MAX_HOTWORDS]


async def test_number_language_id_and_transliteration_options() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(
            simulator.url, parse_number=True, language_id=True, transliterate=True
        ) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(
            client, encode(utterances(16000, count=1)), request=Transcribe(language="ta-IN")
        )
    config = simulator.connections[0].config
    assert config is not None
    assert (config["parse_number"], config["at_start_lid"], config["transliterate"]) == (
        True,
        True,
        True,
    )
    # The language Bodhi identified ("ta"), not the tag the client sent ("ta-IN").
    (final,) = exchange.of_type("transcript")
    assert final.data["language"] == "ta"


async def test_options_are_left_out_when_off() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(
            client, encode(utterances(16000, count=1)), request=Transcribe(language="ta-IN")
        )
    config = simulator.connections[0].config
    assert config is not None
    # Partials are only needed by endpointing and the debug log.
    assert config == {
        "model": "ta-general-v2-8khz",
        "transaction_id": config["transaction_id"],
        "sample_rate": 8000,
        "exclude_partial": True,
    }
    assert exchange.of_type("transcript")[0].data["language"] == "ta-IN"


@pytest.mark.parametrize("setting", ["endpointing", "debug"])
async def test_partials_are_asked_for_when_they_are_used(setting: str) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, **{setting: True}) as bridge,
        bridge.client() as client,
    ):
        await transcribe(client, encode(utterances(16000, count=1)))
    config = simulator.connections[0].config
    assert config is not None and "exclude_partial" not in config
    assert simulator.connections[0].partials


async def test_min_confidence_leaves_out_unsure_phrases() -> None:
    async with (
        running_simulator(texts=TEXTS, confidences=[0.3, 0.9]) as simulator,
        running_bridge(simulator.url, min_confidence=0.5) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, encode(utterances(16000, count=2)))
    assert exchange.transcript == "pankha band karo"
    assert exchange.chunks == ["pankha band karo"]


async def test_min_confidence_keeps_phrases_without_a_confidence() -> None:
    async with (
        running_simulator(texts=TEXTS, confidences=[None, 0.2]) as simulator,
        running_bridge(simulator.url, min_confidence=0.5) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, encode(utterances(16000, count=2)))
    assert exchange.transcript == "batti jalao"


# -- a client that pauses its audio without audio-stop ------------------------------------


@pytest.fixture
def quick_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real timings (8 s, then every 5 s, against Bodhi's 15 s idle close) scaled down.
    quick = dataclasses.replace(BodhiEngine.audio, keepalive_after=0.3, keepalive_interval=0.2)
    monkeypatch.setattr(BodhiEngine, "audio", quick)


async def send_with_pause(client: object, first: bytes, pause: float, second: bytes) -> Exchange:
    exchange = Exchange()
    reader = asyncio.create_task(read_until_final(client, exchange))  # type: ignore[arg-type]
    await client.write_event(Transcribe(language="hi").event())  # type: ignore[attr-defined]
    await client.write_event(AudioStart(16000, 2, 1).event())  # type: ignore[attr-defined]
    await client.write_event(AudioChunk(16000, 2, 1, first).event())  # type: ignore[attr-defined]
    done, _ = await asyncio.wait({reader}, timeout=pause)
    if not done:
        await client.write_event(AudioChunk(16000, 2, 1, second).event())  # type: ignore[attr-defined]
        await client.write_event(AudioStop().event())  # type: ignore[attr-defined]
    await asyncio.wait_for(reader, 10)
    return exchange


@pytest.mark.usefixtures("quick_keepalive")
async def test_paused_audio_keeps_the_bodhi_session_alive() -> None:
    first = encode(utterances(16000, count=1, burst=0.5))
    second = encode(utterances(16000, count=1, burst=0.5))
    async with (
        running_simulator(texts=TEXTS, idle_timeout=0.6) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
        bridge.client() as client,
    ):
        exchange = await send_with_pause(client, first, 1.5, second)
    (record,) = simulator.connections
    assert record.ended == "eos"  # never closed for idleness
    # The first silence flushes the open phrase (1.5 s), the later ones are short.
    audio = len(first) // 2 + len(second) // 2
    assert record.audio_bytes >= audio + 1.5 * 16000
    assert exchange.transcript == "batti jalao pankha band karo"


@pytest.mark.usefixtures("quick_keepalive")
async def test_a_pause_longer_than_the_longest_command_ends_the_utterance() -> None:
    first = encode(utterances(16000, count=1, burst=0.5))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, lead=30, max_command=1.0) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await send_with_pause(client, first, 5.0, b"")
        elapsed = time.monotonic() - started
    assert exchange.transcript == "batti jalao"
    assert elapsed < 3
