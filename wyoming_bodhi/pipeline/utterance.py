"""One utterance: Wyoming audio in, one engine session, Wyoming transcript events out.

The engine's connection opens as soon as the utterance starts, while audio is already being
converted and queued, so the handshake overlaps the user's speech. A sender task paces the
queued frames out; the utterance task reads results and writes transcript events. Every
utterance ends in exactly one ``transcript`` or ``error`` event, within a bounded time.

Taking audio never waits: the client's audio is converted and queued as it arrives, up to
``max_audio`` seconds, so the connection is always being read and a client that goes away
is noticed at once, whatever state its request is in.

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
import logging
import math
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
    Request,
    Session,
    redact,
)
from ..text import quoted
from ..wav import Chunks, WavError, WavHeaderStripper, parse_format
from .activity import GONE, TRANSCRIPT, RequestRecord
from .audio import AudioFormat, FrameStream, Pacer
from .bridge import Bridge
from .retry import RetryPolicy
from .routing import Choice
from .sink import ClientGone, EventSink
from .transcript import TranscriptAssembler

_LOGGER = logging.getLogger(__name__)


_END_OF_AUDIO = b""
TRANSCRIPT_LINES = 10
"""Transcript lines logged per 10 s (the server's warning interval): every request's while
people speak to it, a count instead under a flood of requests."""
"""Queued after the last frame; frames themselves are never empty."""


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
        self._audio = engine.audio
        self.request = request
        self._sink = sink
        self._on_phrase = on_phrase
        """Sees every phrase, partials included: Wyoming has no event for those, but a
        person watching a client does want them."""
        self._keep_sink_open = False
        """fail() puts the final error itself."""
        self._wav_header = WavHeaderStripper()
        self._frame_ms = settings.frame_ms(engine.audio.frame_ms)
        self._frame_bytes = engine.audio.frame_bytes(self._frame_ms)
        self._frames = FrameStream(engine.audio.rate, self._frame_bytes)
        self._pacer = Pacer(self._frame_ms / 1000, settings.lead)
        # Unbounded here, bounded by max_audio in add_audio: a client far ahead of real time
        # is still read, so that its going away is seen.
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._assembler = TranscriptAssembler(settings.min_confidence)
        self._audio_ended = False
        """No more audio will be queued."""
        self._cut = False
        """Queued audio is dropped: nothing more is sent but eof."""
        self._ended_by: str | None = None
        """Why the audio ended on this side (None: the client's audio-stop)."""
        self._closed = False
        self._answered = False
        """The final event (transcript, or error) is out: nothing else may follow it."""
        self._heard_text = False
        self._send_error: EngineError | None = None
        self._frames_sent = 0
        self._silence_frames_sent = 0
        self._client_seconds = 0.0
        self._connected = False
        self._started_at = time.monotonic()
        self._started_wall = time.time()
        self._client = client
        self._outcome: tuple[str, str] | None = None
        """The final event's result (``transcript`` or its error code) and text."""
        self._answered_at: float | None = None
        self._last_audio_at = self._started_at
        self._audio_stopped_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

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
        utterance._arm_watchdog(utterance._started_at + bridge.settings.max_command)
        return utterance

    def _on_done(self, _task: asyncio.Task[None]) -> None:
        self._bridge.active_utterances -= 1
        self._bridge.requests.discard(self)
        if self._watchdog is not None:
            self._watchdog.cancel()
        result, text = self._outcome or (GONE, "")
        latency = None
        if self._answered_at is not None and self._audio_stopped_at is not None:
            latency = max(0.0, self._answered_at - self._audio_stopped_at)
        chunk_seconds = self._frame_ms / 1000
        self._bridge.activity.request_done(
            RequestRecord(
                started_at=self._started_wall,
                client=self._client,
                engine=self._engine.name,
                model=self.choice.model.name,
                language=self.choice.language,
                audio_seconds=self._client_seconds,
                billed_seconds=(self._frames_sent + self._silence_frames_sent) * chunk_seconds,
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
    def finished(self) -> bool:
        """True once the utterance's final event is out (or it was abandoned): nothing else
        may be sent for it."""
        return self._task is None or self._task.done() or self._answered

    # -- the client side (called from the Wyoming handler) ------------------------------------

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        """Convert and queue one chunk; never waits. Raises ``UnsupportedAudioFormat``."""
        if self._closed or self._audio_ended:
            return
        self._last_audio_at = time.monotonic()
        if not self._wav_header.decided:
            audio = self._wav_header.feed(audio)
            if self._wav_header.header is not None:
                self._on_wav_header(self._wav_header.header, AudioFormat(rate, width, channels))
        frames = self._frames.push(audio, rate, width, channels)
        # The format is valid now: count the client's audio as it arrives (the frames lag
        # behind it by up to a frame).
        self._client_seconds += len(audio) / (rate * width * channels)
        if self._client_seconds > self._settings.max_audio:
            await self.abort(
                f"the audio is longer than {self._settings.max_audio:g} s (max_audio); "
                "send audio-stop at the end of each request",
                "audio-too-long",
            )
            return
        if frames:
            self._pacer.start()
        for frame in frames:
            self._queue.put_nowait(frame)

    def end_audio(self) -> None:
        """The client's audio has ended (``audio-stop``): eof follows the queued audio."""
        if self._audio_ended:
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
        self._keep_sink_open = True
        self._answered = True
        self._record_answer(code, text)
        with contextlib.suppress(ClientGone):
            self._sink.put(Error(text=text, code=code).event())
        self._sink.close()
        self._warnings.warning(_LOGGER, "Utterance aborted: %s", text, key=code)
        if self._task is not None:
            self._task.cancel()

    def _on_wav_header(self, header: Chunks, declared: AudioFormat) -> None:
        _LOGGER.debug("Skipped a %d-byte WAV header at the start of the audio", header.data_offset)
        try:
            described = parse_format(header.fmt) if header.fmt is not None else None
        except WavError as err:
            self._warnings.warning(
                _LOGGER, "The audio starts with a WAV header of another kind (%s)", err
            )
            return
        if described is not None and (
            described.encoding != "int" or AudioFormat(*described.wire) != declared
        ):
            self._warnings.warning(
                _LOGGER,
                "The audio starts with a WAV header for %s, but audio-start announced "
                "%d Hz, %d-bit, %d channel(s); the audio is read as announced",
                described.describe(),
                declared.rate,
                declared.width * 8,
                declared.channels,
            )

    # -- ending the audio from this side --------------------------------------------------------

    def _finish_audio(self, reason: str | None) -> None:
        """No more client audio: flush the converter and framer, eof after the queued frames."""
        if self._audio_ended:
            return
        if reason is not None:
            _LOGGER.debug("Ending the audio: %s", reason)
            self._ended_by = reason
        self._audio_ended = True
        # The converter's delay line and the partial last frame: zeros stand in for the audio
        # after the end, and the last frame is zero-padded.
        frames = self._frames.flush()
        for frame in frames:
            self._queue.put_nowait(frame)
        self._queue.put_nowait(_END_OF_AUDIO)

    def _cut_audio(self, reason: str) -> None:
        """Drop what is queued; eof goes out next. Also after the client's own audio-stop."""
        if self._cut:
            return
        if not self._audio_ended:
            _LOGGER.debug("Ending the audio: %s", reason)
            self._ended_by = reason
            self._audio_ended = True
        self._cut = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_END_OF_AUDIO)

    def _arm_watchdog(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        # call_at takes the loop's clock; ours is time.monotonic (the same clock on Linux,
        # but do not rely on it).
        self._watchdog = loop.call_at(
            loop.time() + max(0.0, when - time.monotonic()), self._on_watchdog
        )

    def _on_watchdog(self) -> None:
        """Finish the audio once the client's audio pauses, or falls behind real time, by
        more than max_command. Re-armed lazily: taking audio never touches the timer."""
        self._watchdog = None
        if self._audio_ended or self._closed:
            return
        limit = self._settings.max_command
        now = time.monotonic()
        behind_from = self._started_at + self._client_seconds
        deadline = min(behind_from, self._last_audio_at) + limit
        if now < deadline:
            self._arm_watchdog(deadline)
        elif self._last_audio_at + limit <= now:
            self._finish_audio(f"the audio paused for {now - self._last_audio_at:.0f} s")
        else:
            self._finish_audio(
                f"the client's audio fell {now - behind_from:.0f} s behind real time"
            )

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
        self._answered = True

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
            if not self._answered:
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
            if not self._answered:
                with contextlib.suppress(ClientGone):
                    self._final(
                        Error(
                            text="internal error in the speech-to-text server", code="internal"
                        ).event()
                    )
        finally:
            self._closed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            if not self._keep_sink_open:
                self._sink.close()

    async def _on_engine_error(self, err: EngineError) -> None:
        redact(err, self._bridge.secrets)
        if self._answered:
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
        self._warnings.log(
            _LOGGER,
            logging.INFO,
            "Transcript from %s: %d phrase(s), %.2f s of audio%s, %s",
            self.choice.model.name,
            self._assembler.segment_count,
            self._frames_sent * self._frame_ms / 1000,
            f" (+{self._silence_frames_sent * self._frame_ms / 1000:.1f} s keepalive)"
            if self._silence_frames_sent
            else "",
            self._timing(),
            burst=TRANSCRIPT_LINES,
        )
        _LOGGER.debug("Transcript text: %s", quoted(text, 1000))

    def _timing(self) -> str:
        if self._audio_stopped_at is not None:
            return f"{(time.monotonic() - self._audio_stopped_at) * 1000:.0f} ms after audio-stop"
        return f"{self._ended_by or 'ended here'}, before any audio-stop"

    async def _transcribe(self) -> None:
        settings = self._settings
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []
        if settings.endpointing:
            # Home Assistant runs no VAD of its own then: its limits are ours to enforce.
            timers.append(loop.call_later(settings.no_speech_timeout, self._on_no_speech))
            timers.append(
                loop.call_later(
                    settings.max_command,
                    self._cut_audio,
                    f"the command reached the {settings.max_command:g} s limit",
                )
            )
        try:
            session = await self._connect()
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
            for timer in timers:
                timer.cancel()

    async def _connect(self) -> Session:
        """Connect, retrying what a retry can fix, within a bounded budget.

        Nothing is lost meanwhile: the audio waits in the queue, and is all sent once
        connected.
        """
        settings = self._settings
        policy = RetryPolicy(settings.retries, settings.retry_budget)
        first_try = time.monotonic()
        attempt = 0
        while True:
            try:
                return await self._engine.connect(self.request, timeout=settings.connect_timeout)
            except EngineError as err:
                redact(err, self._bridge.secrets)
                self._bridge.activity.handshake_failed(self._engine.name, err.code)
                attempt += 1
                delay = policy.delay(err, attempt, time.monotonic() - first_try)
                if delay is None:
                    raise
                self._warnings.warning(
                    _LOGGER,
                    "Connecting to %s failed (%s); retry %d of %d in %.2f s",
                    self._engine.title,
                    err,
                    attempt,
                    settings.retries,
                    delay,
                    key=err.code,
                )
                await asyncio.sleep(delay)

    async def _exchange(self, session: Session) -> None:
        settings = self._settings
        engine = self._engine
        # No deadline while audio is flowing; the sender sets one once the end is sent.
        deadline = asyncio.timeout(None)
        sender = asyncio.create_task(self._send(session, deadline), name="engine sender")
        try:
            async with deadline:
                async for phrase in session.phrases():
                    if phrase.text.strip():
                        self._heard_text = True
                    if self._on_phrase is not None and not self._answered:
                        self._on_phrase(phrase)
                    delta = self._assembler.feed(phrase)
                    if delta is None or self._answered:
                        continue
                    if settings.endpointing:
                        # The engine has completed the first phrase: that is the command. Stop
                        # the audio before writing anything, so no more of it is sent meanwhile.
                        self._cut_audio(f"{engine.title} ended the command")
                    self._emit(TranscriptChunk(text=delta).event())
                    if settings.endpointing:
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
            if err.kind == CONNECTION_LOST and self._send_error is not None:
                raise self._send_error from None
            raise
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _on_no_speech(self) -> None:
        if not self._heard_text:
            self._cut_audio(f"no speech recognised within {self._settings.no_speech_timeout:g} s")

    async def _send(self, session: Session, deadline: asyncio.Timeout) -> None:
        settings = self._settings
        audio = self._audio
        loop = asyncio.get_running_loop()
        last_sent_at = time.monotonic()
        paused_flush_done = False
        try:
            while True:
                wait: float | None = None
                if audio.keepalive_after is not None:
                    every = audio.keepalive_interval if paused_flush_done else audio.keepalive_after
                    wait = max(0.0, every - (time.monotonic() - last_sent_at))
                try:
                    async with asyncio.timeout(wait):
                        frame = await self._queue.get()
                except TimeoutError:
                    # The client's audio has paused without audio-stop (the watchdog ends it
                    # after max_command), and the engine would close a silent session.
                    seconds = 0.0 if paused_flush_done else audio.keepalive_flush
                    await self._send_silence(session, seconds)
                    paused_flush_done = True
                    last_sent_at = time.monotonic()
                    continue
                if frame == _END_OF_AUDIO:
                    await session.send_end()
                    deadline.reschedule(loop.time() + settings.response_timeout)
                    _LOGGER.debug("Sent the end after %d frame(s)", self._frames_sent)
                    return
                paused_flush_done = False
                delay = self._pacer.delay()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._cut:
                    # Cut while this frame waited for its turn: the end is next in the queue.
                    continue
                await session.send_audio(frame)
                self._pacer.sent()
                self._frames_sent += 1
                last_sent_at = time.monotonic()
        except EngineError as err:
            self._send_error = err
            await session.close()

    async def _send_silence(self, session: Session, seconds: float) -> None:
        """Whole frames of digital silence, at least one; engines bill these too."""
        frames = max(1, math.ceil(seconds * self._audio.bytes_per_second / self._frame_bytes))
        _LOGGER.debug("Audio paused: keeping the session alive with %d silent frame(s)", frames)
        silence = bytes(self._frame_bytes)
        for _ in range(frames):
            await session.send_audio(silence)
            self._pacer.sent()
        self._silence_frames_sent += frames
