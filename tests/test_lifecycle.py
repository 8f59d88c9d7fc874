"""An utterance's lifecycle, one :class:`Stage` that only moves forward: each row of its table
(``pipeline/utterance.py``) driven against the scripted engine, in-process, no sockets.

The engine's clean-up (its END, after the end of the audio) is held back until the test lets
it go, so that each stage can be seen while the utterance is in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.event import Event

from wyoming_bodhi.engines.base import EngineError, Phrase
from wyoming_bodhi.pipeline.bridge import Bridge
from wyoming_bodhi.pipeline.utterance import Stage, Utterance
from wyoming_bodhi.settings import validate

from .fake_engine import FakeEngine, FakeSession
from .harness import API_KEY, CUSTOMER_ID, Recorder, settled
from .signals import encode, utterances

SPEECH = encode(utterances(16000, count=1))  # 0.8 s at 16 kHz
WITHIN = 5.0


@dataclass
class HeldSession(FakeSession):
    """A scripted session whose END waits for :attr:`release`: the engine's clean-up."""

    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def phrases(self) -> AsyncIterator[Phrase]:
        async for phrase in super().phrases():
            if phrase.kind == "end":
                await self.release.wait()
            yield phrase


@dataclass
class HeldEngine(FakeEngine):
    def new_session(self) -> FakeSession:
        return HeldSession(self.script)


@dataclass
class Sink:
    events: list[Event] = field(default_factory=list)
    closes: int = 0

    def put(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closes += 1

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]


@dataclass
class Rig:
    utterance: Utterance
    engine: HeldEngine
    sink: Sink
    records: Recorder

    @property
    def session(self) -> HeldSession:
        (session,) = self.engine.sessions
        assert isinstance(session, HeldSession)
        return session

    async def speak(self, seconds: float = 0.8) -> None:
        await self.utterance.add_audio(SPEECH[: int(seconds * 32000) & ~1], 16000, 2, 1)

    async def until(self, condition: Callable[[], object]) -> None:
        """Until ``condition()`` holds (the utterance moves on its own timers and tasks)."""
        assert await settled(condition, WITHIN), "timed out"

    async def clean_up(self) -> None:
        """Let the engine's END go, and wait for the utterance to be over."""
        for session in self.engine.sessions:
            assert isinstance(session, HeldSession)
            session.release.set()
        async with asyncio.timeout(WITHIN):
            await self.utterance.wait()


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Any]]:
    async with aiohttp.ClientSession() as http:
        started: list[Utterance] = []

        def start(engine: HeldEngine | None = None, **settings: Any) -> Rig:
            engine = engine or HeldEngine()
            raw = {"api_key": API_KEY, "customer_id": CUSTOMER_ID, "lead": 30, **settings}
            bridge = Bridge(validate(raw), http, engines=[engine])
            records = Recorder()
            bridge.activity.add(records)
            choice, request = bridge.request_for(Transcribe(language="xx"))
            sink = Sink()
            utterance = Utterance.start(bridge, choice, request, sink)
            started.append(utterance)
            return Rig(utterance, engine, sink, records)

        try:
            yield start
        finally:
            for utterance in started:
                await utterance.cancel()


async def test_taking_audio_until_audio_stop_then_draining(rig: Callable[..., Rig]) -> None:
    r = rig(HeldEngine(script=[(1, "ek")]))
    await r.speak()
    assert r.utterance.stage is Stage.TAKING_AUDIO
    r.utterance.end_audio()
    assert r.utterance.stage is Stage.DRAINING
    await r.until(lambda: r.engine.sessions and r.session.ended)
    # Every queued frame went out, then the end; the answer waits for the engine.
    assert r.utterance.stage is Stage.DRAINING and not r.utterance.finished
    await r.clean_up()
    assert r.utterance.stage is Stage.CLOSED
    assert r.sink.types[-2:] == ["transcript", "transcript-stop"] and r.sink.closes == 1


async def test_a_pause_of_max_command_drains_as_audio_stop_would(rig: Callable[..., Rig]) -> None:
    r = rig(HeldEngine(script=[(1, "ek")]), max_command=1)
    await r.speak(0.2)
    await r.until(lambda: r.utterance.stage is not Stage.TAKING_AUDIO)
    assert r.utterance.stage is Stage.DRAINING
    # What the client sends after its audio ended on this side is not taken.
    await r.speak(0.2)
    await r.clean_up()
    assert r.utterance.stage is Stage.CLOSED and r.sink.types[-1] == "transcript-stop"
    assert r.records.records[0].audio_seconds == pytest.approx(0.2)


async def test_no_speech_with_endpointing_cuts(rig: Callable[..., Rig]) -> None:
    r = rig(endpointing=True, no_speech_timeout=1)
    await r.speak(0.2)
    await r.until(lambda: r.utterance.stage is not Stage.TAKING_AUDIO)
    assert r.utterance.stage is Stage.CUT
    # Forward only: a late audio-stop does not make a cut audio draining again.
    r.utterance.end_audio()
    assert r.utterance.stage is Stage.CUT
    await r.until(lambda: r.session.ended)
    await r.clean_up()
    assert r.utterance.stage is Stage.CLOSED
    assert r.sink.types[-2:] == ["transcript", "transcript-stop"]
    assert r.sink.events[-2].data["text"] == ""


async def test_the_first_complete_phrase_cuts_and_answers_before_the_clean_up(
    rig: Callable[..., Rig],
) -> None:
    r = rig(HeldEngine(script=[(1, "batti jalao"), (2, "never said")]), endpointing=True)
    await r.speak()
    await r.until(lambda: "transcript" in r.sink.types)
    # Cut, then answered: the answer is out while the engine's session still closes.
    assert r.utterance.stage is Stage.ANSWERED
    assert r.utterance.finished and not r.records.records
    await r.clean_up()
    assert r.utterance.stage is Stage.CLOSED
    # The second phrase, said during the clean-up, is not the command.
    assert r.sink.types == ["transcript-chunk", "transcript", "transcript-stop"]
    assert r.sink.events[1].data["text"] == "batti jalao"


async def test_an_error_answer_closes_and_a_later_audio_stop_changes_nothing(
    rig: Callable[..., Rig],
) -> None:
    refused = EngineError("wrong key", code="fake-401", kind="refused", retryable=False)
    r = rig(HeldEngine(failures=[refused]))
    await r.speak(0.2)
    await r.until(lambda: r.utterance.stage is Stage.CLOSED)
    assert r.sink.types == ["error"] and r.sink.closes == 1
    r.utterance.end_audio()
    assert r.utterance.stage is Stage.CLOSED
    await r.until(lambda: bool(r.records.records))
    (record,) = r.records.records
    # Answered before any audio-stop: no latency from one.
    assert record.result == "fake-401" and record.latency is None


async def test_abort_answers_closes_the_sink_itself_then_closes(rig: Callable[..., Rig]) -> None:
    r = rig(HeldEngine(script=[(1, "ek")]))
    await r.speak(0.2)
    r.utterance.fail("the server is shutting down", "shutdown")
    assert r.utterance.stage is Stage.ABORTED
    assert r.sink.types == ["error"] and r.sink.closes == 1
    await r.clean_up()
    assert r.utterance.stage is Stage.CLOSED
    # The task's end did not close the sink again, nor answer again.
    assert r.sink.types == ["error"] and r.sink.closes == 1
    # Answered: later calls change nothing.
    r.utterance.fail("again", "protocol")
    r.utterance.end_audio()
    assert r.sink.types == ["error"] and r.utterance.stage is Stage.CLOSED


async def test_audio_past_max_audio_aborts(rig: Callable[..., Rig]) -> None:
    r = rig(HeldEngine(script=[(1, "ek")]), max_audio=1)
    await r.speak(0.8)
    assert r.utterance.stage is Stage.TAKING_AUDIO
    await r.speak(0.8)
    assert r.utterance.stage is Stage.CLOSED
    assert r.sink.types == ["error"] and r.sink.events[0].data["code"] == "audio-too-long"
