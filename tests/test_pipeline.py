"""The engine-agnostic pipeline against a scripted engine: retries and replay, endpointing,
keepalive, framing at the engine's own rate. Real Wyoming sockets, no engine network."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop

from wyoming_bodhi.engines.base import AudioSpec, EngineError, retryable_status
from wyoming_bodhi.pipeline.retry import RetryPolicy

from .fake_engine import FakeEngine
from .harness import API_KEY, CUSTOMER_ID, running_bridge, transcribe
from .signals import encode, silence, utterances

SPEECH = encode(utterances(16000, count=1))  # 0.8 s at 16 kHz


def retryable(code: str = "fake-503") -> EngineError:
    return EngineError("try later", code=code, kind="refused", retryable=True)


def final(code: str = "fake-401") -> EngineError:
    return EngineError("wrong key", code=code, kind="refused", retryable=False)


# -- the retry policy, pure ---------------------------------------------------------------


def test_retries_back_off_within_the_count_and_the_budget() -> None:
    policy = RetryPolicy(retries=3, budget=1.0)
    assert [policy.delay(retryable(), attempt, 0.0) for attempt in (1, 2, 3, 4)] == [
        0.25, 0.5, 1.0, None,
    ]  # fmt: skip
    assert policy.delay(retryable(), 2, spent=0.6) is None  # 0.6 + 0.5 > 1.0
    assert policy.delay(final(), 1, 0.0) is None


@pytest.mark.parametrize(
    ("status", "retry"),
    [(400, False), (401, False), (403, False), (404, False), (408, True), (429, True),
     (500, True), (502, True), (503, True)],
)  # fmt: skip
def test_one_rule_decides_which_refusals_a_retry_can_fix(status: int, retry: bool) -> None:
    assert retryable_status(status) is retry


# -- through the pipeline ----------------------------------------------------------------


async def test_retries_replay_every_frame_in_order() -> None:
    engine = FakeEngine(script=[(3, "ek do")], failures=[retryable(), retryable()])
    async with running_bridge("ws://127.0.0.1:9", engines=[engine], lead=30) as bridge:
        async with bridge.client() as client:
            exchange = await transcribe(client, SPEECH)
    assert exchange.transcript == "ek do"
    assert engine.connects == 3
    (session,) = engine.sessions
    # Every frame the audio makes, once, in order (100 ms at 8 kHz: 1600 bytes).
    assert len(session.frames) == math.ceil(len(SPEECH) / 2 / 1600)
    assert all(len(frame) == 1600 for frame in session.frames)
    assert session.ended


async def test_a_final_refusal_is_the_error_at_once() -> None:
    engine = FakeEngine(failures=[final()])
    async with running_bridge("ws://127.0.0.1:9", engines=[engine]) as bridge:
        async with bridge.client() as client:
            exchange = await transcribe(client, SPEECH)
    assert exchange.error.data == {"text": "wrong key", "code": "fake-401"}
    assert engine.connects == 1


async def test_endpointing_cuts_the_audio_at_the_first_phrase() -> None:
    engine = FakeEngine(script=[(5, "batti jalao"), (20, "never said")])
    audio = SPEECH + encode(silence(16000, 3.0))
    async with running_bridge(
        "ws://127.0.0.1:9", engines=[engine], endpointing=True, chunk_ms=50
    ) as bridge:
        async with bridge.client() as client:
            exchange = await transcribe(client, audio, realtime=True)
    assert exchange.transcript == "batti jalao"
    (session,) = engine.sessions
    # Frame 5 completed the phrase; at most the one frame already on its way followed.
    assert 5 <= len(session.frames) <= 6
    assert session.ended


async def test_keepalive_follows_the_engines_declaration() -> None:
    quick = AudioSpec(rate=8000, frame_ms=(50, 500), keepalive_after=0.2, keepalive_interval=0.1,
                      keepalive_flush=0.3)  # fmt: skip
    for audio_spec, expect_silence in ((quick, True), (dataclasses.replace(quick, keepalive_after=None), False)):  # fmt: skip
        engine = FakeEngine(script=[(1, "ek")], audio=audio_spec)
        async with running_bridge("ws://127.0.0.1:9", engines=[engine], lead=30) as bridge:
            async with bridge.client() as client:
                await client.write_event(Transcribe(language="xx").event())
                await client.write_event(AudioStart(16000, 2, 1).event())
                await client.write_event(AudioChunk(16000, 2, 1, SPEECH).event())
                await asyncio.sleep(0.6)  # a pause: the client sends nothing
                await client.write_event(AudioStop().event())
                while (event := await asyncio.wait_for(client.read_event(), 3)) is not None:
                    if event.type == "transcript-stop":
                        break
        (session,) = engine.sessions
        silent = [frame for frame in session.frames if not any(frame)]
        assert bool(silent) is expect_silence, (audio_spec, len(silent))
        if expect_silence:
            # The flush first (0.3 s: 3 frames of 100 ms), then single frames.
            assert len(silent) >= 4


async def test_frames_are_cut_at_the_engines_own_rate() -> None:
    engine = FakeEngine(script=[(1, "sawasdee")], audio=AudioSpec(rate=16000, frame_ms=(20, 500)))
    async with running_bridge("ws://127.0.0.1:9", engines=[engine], lead=30) as bridge:
        async with bridge.client() as client:
            started = time.monotonic()
            exchange = await transcribe(client, SPEECH)
    assert exchange.transcript == "sawasdee"
    (session,) = engine.sessions
    # 100 ms at 16 kHz s16 mono: 3200 bytes; 16 kHz input goes through untouched.
    assert {len(frame) for frame in session.frames} == {3200}
    assert b"".join(session.frames)[: len(SPEECH)] == SPEECH
    assert time.monotonic() - started < 2


async def test_a_transcript_that_quotes_a_secret_has_it_blanked() -> None:
    # What arrives is blanked before any engine reads it, but a key written in a JSON
    # string's escapes (or in another case) is only seen in the text the engine decoded.
    engine = FakeEngine(
        script=[(1, f"your key is {API_KEY.upper()}"), (2, f"customer {CUSTOMER_ID}")]
    )
    async with running_bridge("ws://127.0.0.1:9", engines=[engine]) as bridge:
        async with bridge.client() as client:
            exchange = await transcribe(client, SPEECH)
    assert exchange.transcript == "your key is … customer …", exchange.transcript
