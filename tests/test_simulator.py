"""The Bodhi simulator: its segmenter, its protocol state machine and its server, over sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import aiohttp
import numpy as np
import pytest

from wyoming_bodhi.engines.bodhi.catalog import Catalog
from wyoming_bodhi.simulators.bodhi import (
    BodhiOptions,
    BodhiSession,
    BodhiSimulator,
    ConnectionRecord,
    EnergySegmenter,
    SegmentComplete,
    SegmentOpened,
    SegmentProgress,
    default_text,
)
from wyoming_bodhi.simulators.bodhi.__main__ import build_parser, options_from_args
from wyoming_bodhi.simulators.iapp import IappOptions, IappSimulator
from wyoming_bodhi.simulators.options import SimulatorOptions
from wyoming_bodhi.simulators.segmenter import SegmentEvent

RATE = 8000
MODEL = "hi-general-v2-8khz"
TEXTS = ["namaste duniya", "batti jalao"]
SKELETON_KEYS = {"call_id", "segment_id", "eos", "type", "text", "segment_meta"}
META_KEYS = {"tokens", "timestamps", "start_time", "confidence", "words"}
TIMEOUT = 5.0


# --- audio made on the spot ---


def tone(seconds: float, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * 440.0 * t)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(round(rate * seconds))


def pcm(*parts: np.ndarray) -> bytes:
    return (np.concatenate(parts) * 32767).round().astype("<i2").tobytes()


def two_utterances(tail: float = 0.6) -> bytes:
    """0.2 s silence, 0.8 s burst, 1 s silence, 0.8 s burst, then ``tail`` of silence."""
    return pcm(silence(0.2), tone(0.8), silence(1.0), tone(0.8), silence(tail))


def frames(audio: bytes, ms: int, rate: int = RATE) -> Iterator[bytes]:
    step = rate * 2 * ms // 1000
    for offset in range(0, len(audio), step):
        yield audio[offset : offset + step]


def config(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "model": MODEL,
        "transaction_id": str(uuid.uuid4()),
        "sample_rate": RATE,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


# --- segmenter ---


def feed_in_chunks(segmenter: EnergySegmenter, audio: bytes, size: int) -> list[SegmentEvent]:
    events: list[SegmentEvent] = []
    for offset in range(0, len(audio), size):
        events += segmenter.feed(audio[offset : offset + size])
    return events


def boundaries(events: list[SegmentEvent]) -> list[SegmentEvent]:
    return [event for event in events if not isinstance(event, SegmentProgress)]


def test_segmenter_silence_only_finds_nothing() -> None:
    segmenter = EnergySegmenter(RATE)
    assert feed_in_chunks(segmenter, pcm(silence(3.0)), 320) == []
    assert segmenter.finish() == []
    assert segmenter.received_seconds == pytest.approx(3.0)


def test_segmenter_two_bursts_make_two_segments() -> None:
    segmenter = EnergySegmenter(RATE)
    events = boundaries(feed_in_chunks(segmenter, two_utterances(), 320))
    assert events == [
        SegmentOpened(0, 0.2),
        SegmentComplete(0, 0.2, 0.8),
        SegmentOpened(1, 2.0),
        SegmentComplete(1, 2.0, 0.8),
    ]
    assert segmenter.finish() == []


def test_segmenter_one_big_feed_equals_many_small_odd_ones() -> None:
    audio = two_utterances()
    whole = boundaries(EnergySegmenter(RATE).feed(audio))
    odd = boundaries(feed_in_chunks(EnergySegmenter(RATE), audio, 333))
    single_bytes = boundaries(feed_in_chunks(EnergySegmenter(RATE), audio[:9001], 1))
    assert whole == odd
    assert len(whole) == 4
    assert boundaries(EnergySegmenter(RATE).feed(audio[:9001])) == single_bytes


def test_segmenter_progress_reports_speech_so_far() -> None:
    segmenter = EnergySegmenter(RATE)
    segmenter.feed(pcm(silence(0.1)))
    events = segmenter.feed(pcm(tone(0.3)))
    assert events == [SegmentOpened(0, 0.1), SegmentProgress(0, 0.1, 0.3)]
    # Silence does not add speech time, but the segment is still open.
    assert segmenter.feed(pcm(silence(0.2))) == [SegmentProgress(0, 0.1, 0.3)]


@pytest.mark.parametrize(
    ("configured", "effective"), [(None, 0.44), (0.3, 0.44), (0.8, 0.8), (2.0, 1.2)]
)
def test_segmenter_endpoint_is_clamped(configured: float | None, effective: float) -> None:
    assert EnergySegmenter(RATE, configured).endpoint_seconds == pytest.approx(effective)
    # Completion happens exactly when that much trailing silence has been received.
    segmenter = EnergySegmenter(RATE, configured)
    segmenter.feed(pcm(tone(0.5)))
    before = segmenter.feed(pcm(silence(effective - 0.01)))
    assert not any(isinstance(e, SegmentComplete) for e in before)
    assert segmenter.feed(pcm(silence(0.01))) == [SegmentComplete(0, 0.0, 0.5)]


def test_segmenter_short_gap_does_not_split() -> None:
    segmenter = EnergySegmenter(RATE, 2.0)  # clamped to 1.2 s
    events = boundaries(segmenter.feed(pcm(tone(0.5), silence(1.0), tone(0.5), silence(1.3))))
    assert events == [SegmentOpened(0, 0.0), SegmentComplete(0, 0.0, 2.0)]


def test_segmenter_audio_that_stops_completes_nothing_until_finish() -> None:
    segmenter = EnergySegmenter(RATE)
    events = segmenter.feed(pcm(silence(0.1), tone(0.8), silence(0.2)))
    assert not any(isinstance(e, SegmentComplete) for e in events)
    assert segmenter.in_segment
    assert segmenter.finish() == [SegmentComplete(0, 0.1, 0.8)]
    assert segmenter.feed(pcm(tone(1.0), silence(1.0))) == []


def test_segmenter_threshold() -> None:
    quiet = 10 ** (-50 / 20) * np.sqrt(2)  # a sine at -50 dBFS RMS
    loud = 10 ** (-30 / 20) * np.sqrt(2)
    assert EnergySegmenter(RATE).feed(pcm(tone(0.5, quiet))) == []
    assert EnergySegmenter(RATE, threshold_dbfs=-60).feed(pcm(tone(0.5, quiet)))
    assert EnergySegmenter(RATE).feed(pcm(tone(0.5, loud)))


def test_segmenter_other_rates() -> None:
    audio = pcm(silence(0.5, 16000), tone(0.8, rate=16000), silence(0.5, 16000))
    events = boundaries(EnergySegmenter(16000).feed(audio))
    assert events == [SegmentOpened(0, 0.5), SegmentComplete(0, 0.5, 0.8)]


# --- session (the protocol state machine) ---


def new_session(**options: Any) -> BodhiSession:
    simulator_options = BodhiOptions(**options)
    return BodhiSession(simulator_options, Catalog(simulator_options.extra_models))


def run_session(
    session: BodhiSession,
    audio: bytes,
    *,
    frame_ms: int = 20,
    eof: Any = 1,
    **config_fields: Any,
) -> list[dict[str, Any]]:
    """Config, audio and eof through a session: every message it answered with."""
    reply = session.on_text(json.dumps({"config": config(**config_fields)}))
    assert reply.messages == [] and not reply.close
    messages: list[dict[str, Any]] = []
    for frame in frames(audio, frame_ms):
        reply = session.on_binary(frame)
        assert not reply.close
        messages += reply.messages
    reply = session.on_text(json.dumps({"eof": eof}))
    assert reply.close and reply.answers_eof and reply.outcome == "eos"
    return messages + reply.messages


def completes(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "complete"]


def partials(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "partial"]


def assert_error(reply_messages: list[dict[str, Any]], text: str, code: int = 400) -> None:
    (message,) = reply_messages
    assert set(message) == {"error", "code", "message", "timestamp"}
    assert message["error"] == message["message"] == text
    assert message["code"] == code
    datetime.fromisoformat(message["timestamp"])


# Named by the error they expect: a config with a random transaction_id is not a stable test
# id, and pytest-xdist needs every worker to collect the same ids.
BAD_FIRST_MESSAGES: list[tuple[str | bytes, str]] = [
    (b"\x00\x00" * 160, "config must be sent before audio"),
    ("not json", "invalid JSON message"),
    ("[1, 2]", "unsupported message: expected a JSON object"),
    ('{"hello": 1}', "unsupported message: expected config or eof"),
    ('{"eof": 1}', "config must be the first message"),
    ('{"config": "hi"}', "config must be a JSON object"),
    (
        json.dumps({"config": config(model="zz-banking-v2-8khz")}),
        "model 'zz-banking-v2-8khz' is not available",
    ),
    (json.dumps({"config": config(model=None)}), "model '' is not available"),
    (json.dumps({"config": config(model=123)}), "model '123' is not available"),
    (
        json.dumps({"config": config(transaction_id=None)}),
        "transaction_id must be a valid UUID",
    ),
    (
        json.dumps({"config": config(transaction_id="call-42")}),
        "transaction_id must be a valid UUID",
    ),
    (
        json.dumps({"config": config(sample_rate=None)}),
        "sample_rate is required and must be an integer",
    ),
    (
        json.dumps({"config": config(sample_rate="8000")}),
        "sample_rate is required and must be an integer",
    ),
    (json.dumps({"config": config(sample_rate=7999)}), "sample_rate must be at least 8000"),
    (
        json.dumps({"config": config(endpoint_silence_duration="1")}),
        "endpoint_silence_duration must be a number of seconds",
    ),
    (
        json.dumps({"config": config(hotwords=[{"phrase": "x", "score": None}])}),
        'hotwords must be a list of {"phrase": str, "score"?: number}',
    ),
]


@pytest.mark.parametrize(
    ("first", "error"),
    BAD_FIRST_MESSAGES,
    ids=[error for _, error in BAD_FIRST_MESSAGES],
)
def test_session_refuses_bad_first_messages(first: str | bytes, error: str) -> None:
    session = new_session()
    reply = session.on_binary(first) if isinstance(first, bytes) else session.on_text(first)
    assert_error(reply.messages, error)
    assert reply.close and reply.outcome == "error" and reply.close_code == 1008
    assert session.config is None
    # Once ended, nothing else is answered.
    assert session.on_text(json.dumps({"config": config()})).messages == []
    assert session.on_binary(b"\x00" * 320).messages == []


@pytest.mark.parametrize("message", ['{"config": {}}', '{"eof": 0}', '{"eof": true}', "{}"])
def test_session_refuses_bad_messages_after_config(message: str) -> None:
    session = new_session()
    assert session.on_text(json.dumps({"config": config()})).messages == []
    reply = session.on_text(message)
    assert reply.close and reply.messages[0]["code"] == 400
    if "config" in message:
        assert reply.messages[0]["error"].startswith("config already received")


def test_session_accepts_a_valid_config() -> None:
    session = new_session()
    cfg = config(
        hotwords=[{"phrase": "batti", "score": 2.0}, {"phrase": "pankha"}],
        endpoint_silence_duration=0.6,
        parse_number=True,
        transliterate=False,
    )
    reply = session.on_text(json.dumps({"config": cfg}))
    assert reply.messages == [] and not reply.close
    assert session.config == cfg


@pytest.mark.parametrize("eof", [1, "1"])
def test_session_eof_forms(eof: Any) -> None:
    session = new_session(texts=TEXTS)
    messages = run_session(session, two_utterances(tail=0.2), eof=eof)
    assert session.eof_received
    assert session.eof_message == json.dumps({"eof": eof})
    assert [m["text"] for m in completes(messages)] == TEXTS
    assert messages[-1]["eos"] is True


def test_session_full_skeleton_on_every_message() -> None:
    session = new_session(texts=TEXTS, empty_partials=True)
    messages = run_session(session, two_utterances(), at_start_lid=True, aux=True)
    assert messages
    for message in messages:
        assert set(message) == SKELETON_KEYS | {"language_code", "aux_info"}
        assert message["call_id"] == session.call_id
        assert set(message["segment_meta"]) == META_KEYS
        assert message["language_code"] == "hi"
        assert set(message["aux_info"]) == {
            "request_time",
            "eot_wait_time",
            "processed_audio_duration",
        }
        meta = message["segment_meta"]
        assert meta["tokens"] == message["text"].split()
        assert len(meta["timestamps"]) == len(meta["tokens"])
        assert meta["timestamps"] == sorted(meta["timestamps"])
        assert isinstance(message["segment_id"], int)
    uuid.UUID(session.call_id)
    assert completes(messages)[0]["aux_info"]["eot_wait_time"] == pytest.approx(0.44)
    final = messages[-1]["aux_info"]["processed_audio_duration"]
    assert final == pytest.approx(3.4)


def test_session_plain_messages_carry_no_optional_keys() -> None:
    messages = run_session(new_session(texts=TEXTS), two_utterances())
    assert all(set(m) == SKELETON_KEYS for m in messages)


def test_session_segments_and_ids() -> None:
    messages = run_session(new_session(texts=TEXTS), two_utterances(), frame_ms=100)
    done = completes(messages)
    assert [m["segment_id"] for m in done] == [0, 1, 2]
    assert [m["text"] for m in done] == [*TEXTS, ""]
    assert [m["segment_meta"]["start_time"] for m in done[:2]] == [0.2, 2.0]
    assert done[0]["segment_meta"]["timestamps"] == [0.4, 0.8]
    assert done[0]["segment_meta"]["words"] == [
        {"word": "namaste", "confidence": 0.9},
        {"word": "duniya", "confidence": 0.9},
    ]
    assert all(m["segment_meta"]["words"] == [] for m in partials(messages))
    # Segment ids never go down.
    ids = [m["segment_id"] for m in messages]
    assert ids == sorted(ids)


def test_session_default_texts_after_the_script_runs_out() -> None:
    messages = run_session(new_session(texts=["ek"]), two_utterances())
    assert [m["text"] for m in completes(messages)][:2] == ["ek", default_text(1)]
    assert "simulator" in default_text(0) and default_text(0) != default_text(1)
    unscripted = run_session(new_session(), two_utterances())
    assert [m["text"] for m in completes(unscripted)][:2] == [default_text(0), default_text(1)]


def test_session_partials_are_cumulative() -> None:
    session = new_session(texts=["ek do teen chaar"])
    messages = run_session(session, pcm(tone(1.2), silence(0.6)))
    final = completes(messages)[0]["text"].split()
    counts = []
    for message in partials(messages):
        words = message["text"].split()
        assert words == final[: len(words)]
        counts.append(len(words))
    assert counts[0] == 1 and counts[-1] == 4
    assert counts == sorted(counts)
    # One partial per received frame while the segment is open.
    # 60 frames of speech, then 21 of the 22 silent frames the 0.44 s endpoint needs.
    assert len(partials(messages)) == 60 + 22 - 1


@pytest.mark.parametrize("option", ["exclude_partial", "no-partials"])
def test_session_without_partials(option: str) -> None:
    if option == "exclude_partial":
        messages = run_session(new_session(texts=TEXTS), two_utterances(), exclude_partial=True)
    else:
        messages = run_session(new_session(texts=TEXTS, partials=False), two_utterances())
    assert partials(messages) == []
    assert [m["text"] for m in completes(messages)] == [*TEXTS, ""]


def test_session_revise_shows_one_wrong_word_per_segment_then_corrects_it() -> None:
    messages = run_session(new_session(texts=TEXTS, revise=True), two_utterances())
    for segment_id, text in enumerate(TEXTS):
        segment = [m for m in messages if m["segment_id"] == segment_id]
        final = text.split()
        hypotheses = [m["text"].split() for m in segment]
        wrong = [i for i, words in enumerate(hypotheses) if words != final[: len(words)]]
        assert len(wrong) == 1
        revised, after = segment[wrong[0]], segment[wrong[0] + 1]
        shown = len(revised["text"].split())
        assert after["text"].split()[:shown] == final[:shown]
        assert segment[-1]["type"] == "complete" and segment[-1]["text"] == text


def test_session_empty_partials() -> None:
    messages = run_session(new_session(texts=TEXTS, empty_partials=True), two_utterances())
    for segment_id in (0, 1):
        segment = partials([m for m in messages if m["segment_id"] == segment_id])
        assert segment[0]["text"] == "" and segment[0]["segment_meta"]["tokens"] == []
        # Then the words, partial after partial: only the first one is empty.
        texts = [m["text"] for m in segment]
        assert len(texts) >= 2 and all(texts[1:]), texts


@pytest.mark.parametrize(
    ("model", "confidence"),
    [
        ("hi-general-v2-8khz", 0.9),
        ("ta-banking-v2-8khz", 0.9),
        ("te-general-v2-8khz", None),
        ("en-general-v2-8khz", None),
        ("or-general-v3-8khz", None),
    ],
)
def test_session_confidence_by_language(model: str, confidence: float | None) -> None:
    messages = run_session(new_session(texts=TEXTS), two_utterances(), model=model)
    # Sets equal to {confidence}: never empty, so there were messages, and words in them.
    assert {m["segment_meta"]["confidence"] for m in messages} == {confidence}
    words = [w for m in messages for w in m["segment_meta"]["words"]]
    assert {w["confidence"] for w in words} == {confidence}, words


def test_session_language_code_follows_the_model() -> None:
    session = new_session(extra_models=["kn-insurance-v3-8khz"])
    messages = run_session(
        session, two_utterances(), model="kn-insurance-v3-8khz", at_start_lid=True
    )
    assert {m["language_code"] for m in messages} == {"kn"}


def test_final_last_complete_carries_eos_when_a_segment_is_open() -> None:
    messages = run_session(new_session(texts=TEXTS), two_utterances(tail=0.2))
    done = completes(messages)
    assert [(m["text"], m["eos"]) for m in done] == [(TEXTS[0], False), (TEXTS[1], True)]
    assert messages[-1] is done[-1]
    assert sum(m["eos"] for m in messages) == 1


def test_final_last_complete_sends_a_separate_eos_when_nothing_is_open() -> None:
    messages = run_session(new_session(texts=TEXTS), two_utterances(tail=0.6))
    done = completes(messages)
    assert [(m["text"], m["eos"]) for m in done] == [
        (TEXTS[0], False),
        (TEXTS[1], False),
        ("", True),
    ]
    eos = messages[-1]
    assert eos["segment_meta"]["tokens"] == [] and eos["segment_meta"]["start_time"] == 3.4


@pytest.mark.parametrize("tail", [0.2, 0.6])
def test_final_separate(tail: float) -> None:
    messages = run_session(new_session(texts=TEXTS, final="separate"), two_utterances(tail))
    done = completes(messages)
    assert [(m["text"], m["eos"]) for m in done] == [
        (TEXTS[0], False),
        (TEXTS[1], False),
        ("", True),
    ]
    assert set(done[-1]) == SKELETON_KEYS


def test_session_eof_without_audio() -> None:
    messages = run_session(new_session(), b"")
    assert [(m["type"], m["text"], m["eos"], m["segment_id"]) for m in messages] == [
        ("complete", "", True, 0)
    ]


def test_session_audio_after_eof_is_ignored() -> None:
    session = new_session()
    run_session(session, pcm(tone(0.5)))
    assert session.on_binary(pcm(tone(0.5))).messages == []


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="refuse_status"):
        BodhiOptions(refuse_status=404)
    with pytest.raises(ValueError, match="final"):
        BodhiOptions(final="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="texts"):
        BodhiOptions(texts="namaste")
    assert BodhiOptions(texts=["a", "b"]).texts == ("a", "b")
    assert "secret" not in repr(BodhiOptions(api_key="secret"))


def test_shared_options_given_to_a_vendor_s_simulator_get_its_own_knobs_at_their_defaults() -> None:
    """The knobs every simulator shares are SimulatorOptions'; a vendor's own are its
    subclass's, so that another engine's simulator never changes the shared ones."""
    shared = SimulatorOptions(texts=["ek"], api_key="K", history=3)
    assert not hasattr(shared, "final") and not hasattr(shared, "end_form")
    bodhi = BodhiSimulator(shared).options
    assert isinstance(bodhi, BodhiOptions)
    assert (bodhi.texts, bodhi.api_key, bodhi.history) == (("ek",), "K", 3)
    assert (bodhi.final, bodhi.extra_models) == ("last-complete", ())
    iapp = IappSimulator(BodhiOptions(texts=["ek"], final="separate")).options
    assert isinstance(iapp, IappOptions) and not isinstance(iapp, BodhiOptions)
    assert (iapp.texts, iapp.end_form) == (("ek",), "end_of_process")
    assert BodhiSimulator(bodhi).options is bodhi


def test_cli_flags_map_onto_options() -> None:
    args = build_parser().parse_args(
        [
            "--port", "0", "--texts", '["namaste duniya", "batti jalao"]', "--api-key", "K",
            "--refuse-status", "503", "--refuse-count", "2", "--handshake-delay", "0.5",
            "--final", "separate", "--no-partials", "--revise", "--empty-partials",
            "--idle-timeout", "3", "--model", "hi-general-v9-8khz", "--silent-after-eof",
            "--drop-after-frames", "4", "--error-after-frames", "5", "--malformed-results",
            "--eos-delay", "0.2", "--require-customer-id", "--raw-before-results", '["x", "[[]]"]',
            "--raw-repeat", "3", "--leave-open-after-error", "--history", "7",
        ]
    )  # fmt: skip
    assert options_from_args(args) == BodhiOptions(
        port=0,
        texts=TEXTS,
        api_key="K",
        refuse_status=503,
        refuse_count=2,
        handshake_delay=0.5,
        final="separate",
        partials=False,
        revise=True,
        empty_partials=True,
        idle_timeout=3.0,
        extra_models=["hi-general-v9-8khz"],
        silent_after_eof=True,
        drop_after_frames=4,
        error_after_frames=5,
        malformed_results=True,
        eos_delay=0.2,
        require_customer_id=True,
        raw_before_results=["x", "[[]]"],
        raw_repeat=3,
        leave_open_after_error=True,
        history=7,
    )


# --- over the wire ---

API_KEY = "sim-test-key-7c1e9b2a"
CUSTOMER_ID = str(uuid.uuid4())
HEADERS = {"x-api-key": API_KEY, "x-customer-id": CUSTOMER_ID}


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[BodhiSimulator]:
    async with BodhiSimulator(BodhiOptions(**options)) as simulator:
        yield simulator


class Outcome:
    """What a plain aiohttp client saw on one connection."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.last_type: aiohttp.WSMsgType | None = None


async def read_all(ws: aiohttp.ClientWebSocketResponse, outcome: Outcome) -> None:
    async for msg in ws:
        outcome.last_type = msg.type
        if msg.type is not aiohttp.WSMsgType.TEXT:
            assert msg.type is aiohttp.WSMsgType.ERROR
            break
        outcome.raw.append(msg.data)
        with contextlib.suppress(ValueError):
            outcome.messages.append(json.loads(msg.data))
    outcome.close_code = ws.close_code


async def stream(
    url: str,
    audio: bytes,
    *,
    frame_ms: int = 100,
    headers: dict[str, str] | None = None,
    eof: str = '{"eof": 1}',
    **config_fields: Any,
) -> Outcome:
    """Config, audio as fast as possible, eof; reads results concurrently until the close."""
    outcome = Outcome()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers=HEADERS if headers is None else headers) as ws,
    ):
        reader = asyncio.create_task(read_all(ws, outcome))
        await ws.send_str(json.dumps({"config": config(**config_fields)}))
        # The server may close or drop the connection mid-stream (fault knobs).
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            for frame in frames(audio, frame_ms):
                if ws.closed:
                    break
                await ws.send_bytes(frame)
            if not ws.closed:
                await ws.send_str(eof)
        await asyncio.wait_for(reader, TIMEOUT)
    return outcome


async def test_happy_path_over_the_wire() -> None:
    async with running(texts=TEXTS, api_key=API_KEY) as sim:
        assert sim.url == f"ws://127.0.0.1:{sim.port}"
        audio = two_utterances(tail=0.2)
        outcome = await stream(sim.url, audio, eof='{"eof": "1"}')
        assert [m["text"] for m in outcome.messages if m["type"] == "complete"] == TEXTS
        assert outcome.messages[-1]["eos"] is True
        assert outcome.close_code == 1000
        (record,) = await sim.wait_for_connections(1)
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
    assert record.http_status == 101
    assert record.path == "/"
    assert record.auth_headers == ("x-api-key", "x-customer-id")
    assert record.auth_scheme == "x-api-key"
    assert record.api_key == API_KEY and record.customer_id == CUSTOMER_ID
    assert record.config is not None and record.config["model"] == MODEL
    assert [f.size for f in record.frames] == [len(f) for f in frames(audio, 100)]
    times = [f.at for f in record.frames]
    assert times == sorted(times)
    assert record.audio_bytes == len(audio)
    assert record.eof_received and record.eof_message == '{"eof": "1"}'
    assert record.texts_received[-1] == '{"eof": "1"}'
    assert record.sent == outcome.messages
    assert record.call_id == outcome.messages[0]["call_id"]
    assert (record.ended, record.close_code, record.close_reason) == ("eos", 1000, "eos")
    assert [m["text"] for m in record.completes] == TEXTS
    assert record.partials and record.errors == []


@pytest.mark.parametrize("frame_ms", [20, 50, 100, 250, 500, 1000])
async def test_faster_than_real_time_in_any_frame_size(frame_ms: int) -> None:
    async with running(texts=TEXTS) as sim:
        outcome = await stream(sim.url, two_utterances(), frame_ms=frame_ms)
    done = [m for m in outcome.messages if m["type"] == "complete"]
    assert [(m["text"], m["eos"]) for m in done] == [
        (TEXTS[0], False),
        (TEXTS[1], False),
        ("", True),
    ]
    assert [m["segment_meta"]["start_time"] for m in done[:2]] == [0.2, 2.0]


async def test_any_path_is_served() -> None:
    async with running(texts=TEXTS) as sim:
        outcome = await stream(sim.url + "/v1/stream?x=1", two_utterances())
        assert sim.connections[0].path == "/v1/stream"
    assert outcome.messages[-1]["eos"] is True


async def test_in_socket_error_over_the_wire() -> None:
    async with running() as sim:
        outcome = await stream(sim.url, pcm(tone(0.5)), model="zz-banking-v2-8khz")
        (record,) = sim.connections
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
    (error,) = outcome.messages
    assert error["error"] == "model 'zz-banking-v2-8khz' is not available"
    assert error["code"] == 400
    assert outcome.close_code == 1008
    assert record.ended == "error" and record.errors == [error]


async def handshake(url: str, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers):
        pass


@pytest.mark.parametrize("status", [401, 402, 403, 500, 503])
async def test_refusals_on_demand(status: int) -> None:
    async with running(refuse_status=status) as sim:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await handshake(sim.url, HEADERS)
        assert caught.value.status == status
        # The body is JSON; read it with a plain GET (refused before any upgrade check).
        async with aiohttp.ClientSession() as http:
            http_url = sim.url.replace("ws://", "http://")
            async with http.get(http_url, headers=HEADERS) as response:
                assert response.status == status
                body = await response.json()
        assert body["code"] == status and body["error"]
        records = await sim.wait_for_connections(2)
        await asyncio.wait_for(records[0].closed.wait(), TIMEOUT)
    assert [(r.http_status, r.ended) for r in records] == [(status, "refused")] * 2


async def test_refuse_count_then_success() -> None:
    async with running(refuse_status=503, refuse_count=2, texts=TEXTS) as sim:
        for _ in range(2):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await handshake(sim.url, HEADERS)
            assert caught.value.status == 503
        outcome = await stream(sim.url, two_utterances())
        assert [r.http_status for r in sim.connections] == [503, 503, 101]
    assert outcome.messages[-1]["eos"] is True


@pytest.mark.parametrize(
    ("headers", "options"),
    [
        ({}, {}),
        ({"x-api-key": ""}, {}),
        ({"authorization": "Bearer "}, {}),
        ({"authorization": f"Basic {API_KEY}"}, {}),
        ({"x-api-key": "wrong"}, {"api_key": API_KEY}),
        ({"authorization": "Bearer wrong"}, {"api_key": API_KEY}),
        ({"x-api-key": API_KEY, "authorization": "Bearer wrong"}, {"api_key": API_KEY}),
        ({"x-api-key": API_KEY, "x-customer-id": "customer-1"}, {}),
        ({"x-api-key": API_KEY, "x-customer-id": ""}, {}),
        ({"x-api-key": API_KEY}, {"require_customer_id": True}),
    ],
)
async def test_authentication_refusals(headers: dict[str, str], options: dict[str, Any]) -> None:
    async with running(**options) as sim:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await handshake(sim.url, headers)
        assert caught.value.status == 401
        (record,) = sim.connections
        assert record.http_status == 401 and record.ended == "refused"


@pytest.mark.parametrize(
    ("headers", "scheme"),
    [
        ({"authorization": f"Bearer {API_KEY}"}, "bearer"),
        ({"Authorization": f"bearer {API_KEY}"}, "bearer"),
        ({"x-api-key": API_KEY, "authorization": f"Bearer {API_KEY}"}, "both"),
        ({"x-api-key": API_KEY}, "x-api-key"),
        ({"x-api-key": API_KEY, "x-customer-id": CUSTOMER_ID}, "x-api-key"),
    ],
)
async def test_authentication_accepted(headers: dict[str, str], scheme: str) -> None:
    async with running(api_key=API_KEY, texts=TEXTS) as sim:
        outcome = await stream(sim.url, two_utterances(), headers=headers)
        (record,) = sim.connections
    assert outcome.messages[-1]["eos"] is True
    assert record.auth_scheme == scheme and record.api_key == API_KEY


async def test_handshake_delay() -> None:
    async with running(handshake_delay=0.3) as sim:
        started = time.monotonic()
        await handshake(sim.url, HEADERS)
        assert time.monotonic() - started >= 0.3


async def test_idle_close_without_any_message() -> None:
    async with running(idle_timeout=0.3) as sim, aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.ws_connect(sim.url, headers=HEADERS) as ws:
            msg = await ws.receive(timeout=TIMEOUT)
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert msg.data == 1000 and "idle" in str(msg.extra)
        assert time.monotonic() - started >= 0.3
        (record,) = sim.connections
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
        assert record.ended == "idle" and record.close_code == 1000


async def test_audio_that_stops_without_eof_completes_nothing() -> None:
    """Endpointing runs on received audio: a burst with no trailing audio stays open."""
    async with running(idle_timeout=0.3, texts=TEXTS) as sim:
        outcome = Outcome()
        async with aiohttp.ClientSession() as http, http.ws_connect(sim.url, headers=HEADERS) as ws:
            reader = asyncio.create_task(read_all(ws, outcome))
            await ws.send_str(json.dumps({"config": config()}))
            await ws.send_bytes(pcm(tone(0.8), silence(0.2)))
            await asyncio.wait_for(reader, TIMEOUT)
        (record,) = sim.connections
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
    assert outcome.messages and all(m["type"] == "partial" for m in outcome.messages)
    assert record.ended == "idle" and record.completes == []


async def test_pings_do_not_keep_a_connection_alive() -> None:
    async with running(idle_timeout=0.4) as sim, aiohttp.ClientSession() as http:
        async with http.ws_connect(sim.url, headers=HEADERS, autoping=False) as ws:
            await ws.send_str(json.dumps({"config": config()}))
            while True:
                await ws.ping()
                msg = await ws.receive(timeout=TIMEOUT)
                if msg.type is not aiohttp.WSMsgType.PONG:
                    break
                # Ping more often than the idle timeout; the server closes anyway.
                await asyncio.sleep(0.1)
            assert msg.type is aiohttp.WSMsgType.CLOSE
        assert sim.connections[0].ended == "idle"


async def test_silent_after_eof() -> None:
    async with running(silent_after_eof=True, idle_timeout=0.2, texts=TEXTS) as sim:
        async with aiohttp.ClientSession() as http, http.ws_connect(sim.url, headers=HEADERS) as ws:
            await ws.send_str(json.dumps({"config": config(exclude_partial=True)}))
            await ws.send_bytes(two_utterances())
            await ws.send_str('{"eof": 1}')
            texts = []
            # Waiting past the idle timeout shows eof silenced even the idle close.
            with pytest.raises(asyncio.TimeoutError):
                while True:
                    msg = await ws.receive(timeout=0.5)
                    texts.append(json.loads(msg.data)["text"])
            assert texts == TEXTS
        (record,) = sim.connections
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
    assert record.eof_received and record.ended == "client-closed"
    assert not any(m["eos"] for m in record.results)


async def test_drop_after_frames() -> None:
    async with running(drop_after_frames=3) as sim:
        outcome = await stream(sim.url, two_utterances(), frame_ms=100)
        (record,) = sim.connections
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
    assert len(record.frames) == 3
    assert record.ended == "dropped" and record.close_code is None
    assert not any(m.get("eos") for m in outcome.messages)
    assert outcome.close_code != 1000


async def test_error_after_frames() -> None:
    async with running(error_after_frames=2) as sim:
        outcome = await stream(sim.url, two_utterances(), frame_ms=100)
        (record,) = sim.connections
        await asyncio.wait_for(record.closed.wait(), TIMEOUT)
    error = outcome.messages[-1]
    assert error["error"] == "internal error" and error["code"] == 500
    assert outcome.close_code == 1011
    assert len(record.frames) == 2 and record.ended == "error"


async def test_malformed_results() -> None:
    async with running(malformed_results=True, texts=TEXTS) as sim:
        outcome = await stream(sim.url, two_utterances())
    assert outcome.raw[0] == "<simulator: this text frame is not JSON>"
    assert outcome.messages[0] == {
        "status": "processing",
        "detail": "simulator: message of unknown shape",
    }
    results = outcome.messages[1:]
    assert all(set(m) == SKELETON_KEYS for m in results)
    assert [m["text"] for m in results if m["type"] == "complete"] == [*TEXTS, ""]


async def test_eos_delay() -> None:
    async with (
        running(eos_delay=0.3, texts=TEXTS) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(sim.url, headers=HEADERS) as ws,
    ):
        await ws.send_str(json.dumps({"config": config(exclude_partial=True)}))
        await ws.send_bytes(two_utterances(tail=0.2))
        first = json.loads((await ws.receive(timeout=TIMEOUT)).data)
        assert first["text"] == TEXTS[0]
        sent_eof = time.monotonic()
        await ws.send_str('{"eof": 1}')
        final = json.loads((await ws.receive(timeout=TIMEOUT)).data)
        assert time.monotonic() - sent_eof >= 0.3
        assert final["text"] == TEXTS[1] and final["eos"] is True


async def test_stop_closes_open_sockets_promptly() -> None:
    sim = BodhiSimulator(BodhiOptions())
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(sim.url, headers=HEADERS) as ws:
            await ws.send_str(json.dumps({"config": config()}))
            (record,) = await sim.wait_for_connections(1)
            reader = asyncio.create_task(ws.receive(timeout=TIMEOUT))
            started = time.monotonic()
            await sim.stop()
            assert time.monotonic() - started < 1.0
            msg = await reader
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    finally:
        await sim.stop()
    assert record.closed.is_set()
    assert (record.ended, record.close_code) == ("server-stopped", 1001)


async def test_concurrent_connections_are_independent() -> None:
    async with running(texts=TEXTS) as sim:
        outcomes = await asyncio.gather(
            *(stream(sim.url, two_utterances(), frame_ms=20) for _ in range(10))
        )
        records = await sim.wait_for_connections(10)
    for outcome in outcomes:
        assert [m["text"] for m in outcome.messages if m["type"] == "complete"][:2] == TEXTS
    assert len({r.call_id for r in records}) == 10


async def test_wait_for_connections_times_out() -> None:
    async with running() as sim:
        with pytest.raises(TimeoutError):
            await sim.wait_for_connections(1, timeout=0.05)


async def test_logs_never_show_key_or_customer_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(api_key=API_KEY, texts=TEXTS) as sim:
        await stream(sim.url, two_utterances())
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await handshake(sim.url, {"x-api-key": "wrong-key-123", "x-customer-id": "nope"})
        records = list(sim.connections)
    assert "x-api-key" in caplog.text
    for secret in (API_KEY, CUSTOMER_ID, "wrong-key-123"):
        assert secret not in caplog.text
        assert all(secret not in repr(r) for r in records)


def test_record_repr_is_a_summary() -> None:
    record = ConnectionRecord(index=0, path="/", started_at=0.0, api_key="k-123")
    assert "k-123" not in repr(record) and "index=0" in repr(record)


async def test_stop_does_not_wait_out_a_handshake_delay() -> None:
    sim = BodhiSimulator(BodhiOptions(handshake_delay=30))
    await sim.start()
    async with aiohttp.ClientSession() as http:
        connecting = asyncio.create_task(http.ws_connect(sim.url, headers=HEADERS))
        (record,) = await sim.wait_for_connections(1)
        started = time.monotonic()
        await sim.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await connecting
    assert caught.value.status == 503
    assert (record.ended, record.http_status) == ("server-stopped", 503)


def test_long_error_text_fits_a_close_reason() -> None:
    session = new_session()
    reply = session.on_text(json.dumps({"config": config(model="म" * 200)}))
    assert reply.close and len(reply.close_reason.encode()) <= 123
    assert reply.messages[0]["error"] == f"model '{'म' * 200}' is not available"
