"""One utterance: Wyoming audio in, one engine session, Wyoming transcript events out.

The engine's connection opens as soon as the utterance starts, while audio is already being
converted and queued, so the handshake overlaps the user's speech. A sender task paces the
queued frames out; the utterance task reads results and writes transcript events. Every
utterance ends in exactly one ``transcript`` or ``error`` event, within a bounded time.

The parts, each in its own module: the intake takes the client's audio without waiting
(:mod:`.intake`), the connection is retried while the audio waits (:mod:`.retry`), the sender
paces it out with keepalive silence (:mod:`.sender`), and with endpointing the endpointer
decides when the command has ended (:mod:`.endpointer`). What is left here is the lifecycle
(:class:`Stage`), the engine's session and the answer: one state machine, over 400 lines
because its transitions are easier to check side by side than spread over modules.

The audio usually ends when the client sends ``audio-stop``. It can also end from this side,
in one of two ways:

* *finished*, as if ``audio-stop`` had arrived: what is queued is still sent, then eof. When
  the client's audio pauses, or falls behind real time, by more than ``max_command``.
* *cut*: queued audio is dropped and eof goes out next; at most the one frame already being
  sent reaches the engine. With endpointing, once the engine completes the first phrase (the
  transcript goes out at once); when no speech is heard in time; when the command runs too
  long.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Callable

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStop
from wyoming.error import Error
from wyoming.event import Event

from ..engines.base import (
    CONNECTION_LOST,
    TIMEOUT,
    EngineError,
    Phrase,
    PhraseKind,
    Request,
    Session,
    redact,
)
from ..text import quoted
from .activity import GONE, TRANSCRIPT, RequestRecord
from .audio import FrameStream, Pacer
from .bridge import Bridge
from .endpointer import Endpointer
from .intake import AudioIntake
from .retry import RetryPolicy, connect_with_retries
from .routing import Choice
from .sender import PacedSender
from .sink import ClientGone, EventSink
from .transcript import TranscriptAssembler

_LOGGER = logging.getLogger(__name__)

TRANSCRIPT_LINES = 10
"""Transcript lines logged per 10 s (the server's warning interval): every request's while
people speak to it, a count instead under a flood of requests."""


class Stage(enum.IntEnum):
    """Where an utterance is in its life; it only ever moves forward (:meth:`Utterance._advance`).

    ================  ==================================================  =========
    from              event                                               to
    ================  ==================================================  =========
    TAKING_AUDIO      ``end_audio()``; the audio paused, or fell behind   DRAINING
                      real time, by ``max_command``
    up to DRAINING    with endpointing: the first complete phrase, no     CUT
                      speech in ``no_speech_timeout``, ``max_command``
    up to CUT         the final event (transcript, or error) is out       ANSWERED
    up to CUT         ``abort()``/``fail()``: max_audio, protocol          ABORTED
                      misuse, shutdown
    any               the task is over (the sink closed, unless ABORTED)  CLOSED
    ================  ==================================================  =========
    """

    TAKING_AUDIO = 0
    """The client's chunks are converted and queued."""
    DRAINING = 1
    """The audio has ended: the queued frames go out, then the end."""
    CUT = 2
    """The queued audio was dropped: the end goes out next."""
    ANSWERED = 3
    """The final event is out; the engine's clean-up may still run."""
    ABORTED = 4
    """Answered with an error by :meth:`Utterance.fail`, which closes the sink itself."""
    CLOSED = 5
    """The task is over (or was cancelled before it ever ran)."""


class Utterance:
    """Create with :meth:`start`; feed :meth:`add_audio`; finish with :meth:`end_audio`."""

    def __init__(
        self,
        bridge: Bridge,
        choice: Choice,
        request: Request,
        sink: EventSink,
        *,
        on_phrase: Callable[[Phrase], None] | None = None,
        client: str = "",
    ) -> None:
        settings = bridge.settings
        self._bridge = bridge
        self._warnings = bridge.warnings
        """The server's: every request may say the same, and no client may flood the log."""
        self._settings = settings
        self.choice = choice
        self._engine = engine = choice.engine
        self.request = request
        self._sink = sink
        self._on_phrase = on_phrase
        """Sees every phrase, partials included: Wyoming has no event for those, but a
        person watching a client does want them."""
        self._stage = Stage.TAKING_AUDIO
        self._started_at = time.monotonic()
        self._started_wall = time.time()
        self._frame_ms = settings.frame_ms(engine.audio.frame_ms)
        frame_bytes = engine.audio.frame_bytes(self._frame_ms)
        pacer = Pacer(self._frame_ms / 1000, settings.lead)
        self._intake = AudioIntake(
            FrameStream(engine.audio.rate, frame_bytes),
            pacer,
            max_audio=settings.max_audio,
            warnings=self._warnings,
            started_at=self._started_at,
        )
        self._sender = PacedSender(
            self._intake.queue,
            pacer,
            engine.audio,
            frame_bytes,
            cut=lambda: self._stage >= Stage.CUT,
        )
        self._endpointer = Endpointer(
            settings.endpointing,
            no_speech_timeout=settings.no_speech_timeout,
            max_command=settings.max_command,
            cut=self._cut_audio,
        )
        self._assembler = TranscriptAssembler(settings.min_confidence)
        self._ended_by: str | None = None
        """Why the audio ended on this side (None: the client's audio-stop)."""
        self._connected = False
        self._client = client
        self._outcome: tuple[str, str] | None = None
        """The final event's result (``transcript`` or its error code) and text."""
        self._answered_at: float | None = None
        self._audio_stopped_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(
        cls,
        bridge: Bridge,
        choice: Choice,
        request: Request,
        sink: EventSink,
        *,
        on_phrase: Callable[[Phrase], None] | None = None,
        client: str = "",
    ) -> Utterance:
        """Start an utterance; ``client`` says who asked, for the activity record."""
        utterance = cls(bridge, choice, request, sink, on_phrase=on_phrase, client=client)
        utterance._task = asyncio.create_task(utterance._run(), name="utterance")
        bridge.active_utterances += 1
        bridge.requests.add(utterance)
        # A done callback, not a finally: a task cancelled before it ever ran skips finally.
        utterance._task.add_done_callback(utterance._on_done)
        # Its audio pausing, or falling behind real time, by max_command finishes it.
        utterance._intake.watch(bridge.settings.max_command, utterance._finish_audio)
        return utterance

    def _on_done(self, _task: asyncio.Task[None]) -> None:
        # Also here, not only in _run's finally: a task cancelled before it ever ran skips it.
        self._advance(Stage.CLOSED)
        self._bridge.active_utterances -= 1
        self._bridge.requests.discard(self)
        self._intake.stop_watching()
        result, text = self._outcome or (GONE, "")
        latency = None
        if self._answered_at is not None and self._audio_stopped_at is not None:
            latency = max(0.0, self._answered_at - self._audio_stopped_at)
        sender = self._sender
        self._bridge.activity.request_done(
            RequestRecord(
                started_at=self._started_wall,
                client=self._client,
                engine=self._engine.name,
                model=self.choice.model.name,
                language=self.choice.language,
                audio_seconds=self._intake.seconds,
                billed_seconds=(sender.frames_sent + sender.silence_frames_sent)
                * self._frame_ms
                / 1000,
                latency=latency,
                result=result,
                text=text,
            )
        )

    def when_done(self, callback: Callable[[Utterance], object]) -> None:
        """Call ``callback(self)`` once the utterance is over."""
        assert self._task is not None
        self._task.add_done_callback(lambda _task: callback(self))

    @property
    def stage(self) -> Stage:
        return self._stage

    @property
    def finished(self) -> bool:
        """True once the utterance's final event is out (or it was abandoned): nothing else
        may be sent for it."""
        return self._task is None or self._task.done() or self._stage >= Stage.ANSWERED

    def _advance(self, to: Stage) -> None:
        """Move the lifecycle forward to ``to``; never back."""
        if to <= self._stage:
            return
        _LOGGER.debug("Utterance: %s → %s", self._stage.name, to.name)
        self._stage = to
        if to >= Stage.DRAINING:
            # The audio has ended: nothing is left for the watchdog to finish.
            self._intake.stop_watching()

    # -- the client side (called from the Wyoming handler) ------------------------------------

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        """Convert and queue one chunk; never waits. Raises ``UnsupportedAudioFormat``."""
        if self._stage >= Stage.DRAINING:
            return
        if not self._intake.push(audio, rate, width, channels):
            await self.abort(
                f"the audio is longer than {self._settings.max_audio:g} s (max_audio); "
                "send audio-stop at the end of each request",
                "audio-too-long",
            )

    def end_audio(self) -> None:
        """The client's audio has ended (``audio-stop``): eof follows the queued audio."""
        if self._stage >= Stage.DRAINING:
            return
        self._audio_stopped_at = time.monotonic()
        self._finish_audio(None)

    async def wait(self) -> None:
        """Until the utterance is over, the engine's clean-up after the answer included."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def cancel(self) -> None:
        """End the utterance now: closes the engine's socket; nothing more is sent."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def abort(self, text: str, code: str) -> None:
        """End the utterance now with an error event, unless it has already answered; return
        once the engine's session is closed."""
        self.fail(text, code)
        await self.cancel()

    def fail(self, text: str, code: str) -> None:
        """Answer with an error event now, unless already answered, and let the engine's
        session close meanwhile (:meth:`wait` for it): the client hears at once, however
        long the engine takes to close. Answered, the task puts nothing more in the sink."""
        if self.finished:
            return
        self._advance(Stage.ABORTED)
        self._record_answer(code, text)
        with contextlib.suppress(ClientGone):
            self._sink.put(Error(text=text, code=code).event())
        self._sink.close()
        self._warnings.warning(_LOGGER, "Utterance aborted: %s", text, key=code)
        if self._task is not None:
            self._task.cancel()

    # -- ending the audio from this side --------------------------------------------------------

    def _finish_audio(self, reason: str | None) -> None:
        """No more client audio: flush the converter and framer, eof after the queued frames."""
        if self._stage >= Stage.DRAINING:
            return
        if reason is not None:
            _LOGGER.debug("Ending the audio: %s", reason)
            self._ended_by = reason
        self._advance(Stage.DRAINING)
        self._intake.finish()

    def _cut_audio(self, reason: str) -> None:
        """Drop what is queued; eof goes out next. Also after the client's own audio-stop."""
        if self._stage >= Stage.CUT:
            return
        if self._stage < Stage.DRAINING:
            _LOGGER.debug("Ending the audio: %s", reason)
            self._ended_by = reason
        self._advance(Stage.CUT)
        self._intake.cut()

    # -- the engine side -----------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        """Queue an event for the client (raises :class:`ClientGone` if it has left)."""
        self._sink.put(event)

    def _final(self, event: Event) -> None:
        """The request's one final event."""
        if Error.is_type(event.type):
            error = Error.from_event(event)
            self._record_answer(error.code or "error", error.text)
        else:
            self._record_answer(TRANSCRIPT, self._assembler.text)
        self._emit(event)
        self._advance(Stage.ANSWERED)

    def _record_answer(self, result: str, text: str) -> None:
        self._outcome = (result, text)
        self._answered_at = time.monotonic()

    async def _run(self) -> None:
        model = self.choice.model
        try:
            try:
                await self._transcribe()
            except EngineError as err:
                await self._on_engine_error(err)
                return
            if self._stage < Stage.ANSWERED:
                self._answer()
        except ClientGone as err:
            _LOGGER.debug("The client went away before its answer was written: %s", err)
        except Exception:
            # A bug of ours, or something the engine sent that we could not handle: the client
            # still gets an answer, never silence.
            self._warnings.log(
                _LOGGER,
                logging.ERROR,
                "Internal error in an utterance with %s",
                model.name,
                exc_info=True,
            )
            if self._stage < Stage.ANSWERED:
                with contextlib.suppress(ClientGone):
                    self._final(
                        Error(
                            text="internal error in the speech-to-text server", code="internal"
                        ).event()
                    )
        finally:
            aborted = self._stage is Stage.ABORTED
            self._advance(Stage.CLOSED)
            self._intake.clear()
            if not aborted:
                # Aborted, fail() has put the final error and closed the sink itself.
                self._sink.close()

    async def _on_engine_error(self, err: EngineError) -> None:
        redact(err, self._bridge.secrets)
        if self._stage >= Stage.ANSWERED:
            # The user already has their transcript; this was only the clean-up.
            _LOGGER.debug("After the transcript: %s", err)
            return
        if self._connected and self._assembler.segment_count:
            # Whole phrases the engine completed are still what the user said; a voice
            # command is usually one phrase, so this is better than an error.
            self._warnings.warning(
                _LOGGER,
                "%s failed mid-utterance (%s); answering with the %d phrase(s) it completed",
                self._engine.title,
                err,
                self._assembler.segment_count,
                key=err.code,
            )
            self._answer()
            return
        self._warnings.warning(
            _LOGGER,
            "Transcription with %s failed: %s",
            self.choice.model.name,
            err,
            key=err.code,
            extra={"answered": True},  # the client is told; a client's own log need not
        )
        self._final(Error(text=err.message, code=err.code).event())

    def _answer(self) -> None:
        text = self._assembler.text
        language = self._assembler.language_code or self.choice.language
        # Both at once (nothing can come between): the transcript is the final event.
        self._emit(Transcript(text=text, language=language).event())
        self._final(TranscriptStop().event())
        sender = self._sender
        self._warnings.log(
            _LOGGER,
            logging.INFO,
            "Transcript from %s: %d phrase(s), %.2f s of audio%s, %s",
            self.choice.model.name,
            self._assembler.segment_count,
            sender.frames_sent * self._frame_ms / 1000,
            f" (+{sender.silence_frames_sent * self._frame_ms / 1000:.1f} s keepalive)"
            if sender.silence_frames_sent
            else "",
            self._timing(),
            burst=TRANSCRIPT_LINES,
        )
        _LOGGER.debug("Transcript text: %s", quoted(text, 1000))

    def _timing(self) -> str:
        if self._audio_stopped_at is not None:
            return f"{(time.monotonic() - self._audio_stopped_at) * 1000:.0f} ms after audio-stop"
        return f"{self._ended_by or 'ended here'}, before any audio-stop"

    def _blanked(self, phrase: Phrase) -> Phrase:
        # Every complete phrase (the transcript); a partial, which only the status page's
        # microphone test shows, when short: an engine may send hundreds of large ones.
        if not phrase.text or (phrase.kind is PhraseKind.PARTIAL and len(phrase.text) > 4096):
            return phrase
        text = self._bridge.blanking.text(phrase.text)
        return phrase if text == phrase.text else dataclasses.replace(phrase, text=text)

    async def _transcribe(self) -> None:
        settings = self._settings
        self._endpointer.start()
        try:
            session = await connect_with_retries(
                self._engine,
                self.request,
                RetryPolicy(settings.retries, settings.retry_budget),
                connect_timeout=settings.connect_timeout,
                secrets=self._bridge.secrets,
                activity=self._bridge.activity,
                warnings=self._warnings,
            )
            self._connected = True
            async with session:
                _LOGGER.debug(
                    "%s connected after %.0f ms",
                    self._engine.title,
                    (time.monotonic() - self._started_at) * 1000,
                )
                try:
                    await self._exchange(session)
                finally:
                    if session.skipped_messages > 1:
                        self._warnings.warning(
                            _LOGGER,
                            "Skipped %d messages from %s that were not results",
                            session.skipped_messages,
                            self._engine.title,
                        )
                    self._assembler.warnings.flush()
        finally:
            self._endpointer.stop()

    async def _exchange(self, session: Session) -> None:
        settings = self._settings
        engine = self._engine
        loop = asyncio.get_running_loop()
        # No deadline while audio is flowing; once the end is sent, the engine has
        # response_timeout for its final result.
        deadline = asyncio.timeout(None)
        sender = asyncio.create_task(
            self._sender.run(
                session, lambda: deadline.reschedule(loop.time() + settings.response_timeout)
            ),
            name="engine sender",
        )
        try:
            async with deadline:
                async for heard in session.phrases():
                    phrase = self._blanked(heard)
                    self._endpointer.heard(phrase)
                    if self._on_phrase is not None and self._stage < Stage.ANSWERED:
                        self._on_phrase(phrase)
                    delta = self._assembler.feed(phrase)
                    if delta is None or self._stage >= Stage.ANSWERED:
                        continue
                    # With endpointing, the engine's first complete phrase is the command: the
                    # audio is cut before anything is written.
                    ends = self._endpointer.completed(engine.title)
                    self._emit(TranscriptChunk(text=delta).event())
                    if ends:
                        self._answer()
        except TimeoutError:
            raise EngineError(
                f"{engine.title} sent no final result within {settings.response_timeout:g} s "
                "of the end of the audio",
                code=f"{engine.name}-timeout",
                kind=TIMEOUT,
                retryable=True,
            ) from None
        except EngineError as err:
            # A failed send closes the socket; report why it failed, not the close. Anything
            # else the engine said (an in-socket error) is the better reason, and stands.
            if err.kind == CONNECTION_LOST and self._sender.error is not None:
                raise self._sender.error from None
            raise
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


__all__ = ["TRANSCRIPT_LINES", "ClientGone", "EventSink", "Stage", "Utterance"]
