"""One utterance: Wyoming audio in, one Bodhi session, Wyoming transcript events out.

The Bodhi connection opens as soon as the utterance starts, while audio is already being
converted and queued, so the handshake overlaps the user's speech. A sender task paces the
queued frames out; the utterance task reads results and writes transcript events. Every
utterance ends in exactly one ``transcript`` or ``error`` event, within a bounded time.

The audio usually ends when the client sends ``audio-stop``. It can also end from this side:
with endpointing, when Bodhi completes the first phrase (the transcript goes out at once);
when no speech is heard in time, or the command runs too long; or when the client's audio
pauses for longer than the longest command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStop
from wyoming.error import Error
from wyoming.event import Event

from .audio import BODHI_BYTES_PER_SECOND, Framer, Pacer, StreamConverter, frame_bytes_for
from .bodhi.client import BodhiStream
from .bodhi.errors import BodhiError, BodhiTimeoutError
from .bridge import Bridge, Request
from .transcript import TranscriptAssembler

_LOGGER = logging.getLogger(__name__)

EventSink = Callable[[Event], Awaitable[None]]

MAX_BUFFERED_SECONDS = 30.0
"""Audio held while Bodhi is slow to take it; past this the client is made to wait
(TCP backpressure), so memory stays bounded whatever the client sends."""

# Bodhi closes a session after 15 s without a client message and only finalises a phrase
# on received audio. When the client's audio pauses, keep the session alive the way the
# vendor's client does: first more silence than the longest endpoint (1.2 s), so the open
# phrase is finalised rather than welded to what follows, then short silences.
KEEPALIVE_AFTER = 8.0
KEEPALIVE_INTERVAL = 5.0
PAUSE_FLUSH_SECONDS = 1.5

RETRY_BACKOFF = 0.25
"""Seconds before the first retry; doubled for each one after."""

_END_OF_AUDIO = b""
"""Queued after the last frame; frames themselves are never empty."""


class Utterance:
    """Create with :meth:`start`; feed :meth:`add_audio`; finish with :meth:`end_audio`."""

    def __init__(self, bridge: Bridge, request: Request, emit: EventSink) -> None:
        settings = bridge.settings
        self._bridge = bridge
        self._settings = settings
        self.request = request
        self._emit = emit
        self._converter = StreamConverter()
        self._frame_bytes = frame_bytes_for(settings.chunk_ms)
        self._framer = Framer(self._frame_bytes)
        self._pacer = Pacer(settings.chunk_ms / 1000, settings.lead)
        max_frames = max(1, int(MAX_BUFFERED_SECONDS * 1000 / settings.chunk_ms))
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_frames)
        self._assembler = TranscriptAssembler(settings.min_confidence)
        self._audio_ended = False
        self._ended_by: str | None = None
        """Why the audio ended on this side (None: the client's audio-stop)."""
        self._closed = False
        self._answered = False
        self._heard_text = False
        self._send_error: BodhiError | None = None
        self._frames_sent = 0
        self._silence_frames_sent = 0
        self._client_seconds = 0.0
        self._connected = False
        self._started_at = time.monotonic()
        self._last_audio_at = self._started_at
        self._audio_stopped_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, bridge: Bridge, request: Request, emit: EventSink) -> Utterance:
        utterance = cls(bridge, request, emit)
        utterance._task = asyncio.create_task(utterance._run(), name="bodhi utterance")
        bridge.active_utterances += 1
        # A done callback, not a finally: a task cancelled before it ever ran skips finally.
        utterance._task.add_done_callback(utterance._on_done)
        return utterance

    def _on_done(self, _task: asyncio.Task[None]) -> None:
        self._bridge.active_utterances -= 1

    @property
    def finished(self) -> bool:
        """True once the utterance's final event has been sent (or it was abandoned)."""
        return self._task is None or self._task.done() or self._answered

    # -- the client side (called from the Wyoming handler) ------------------------------------

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        """Convert and queue one chunk. Raises ``UnsupportedAudioFormat``."""
        if self._closed or self._audio_ended:
            return
        self._last_audio_at = time.monotonic()
        converted = self._converter.convert(audio, rate, width, channels)
        self._client_seconds += len(converted) / BODHI_BYTES_PER_SECOND
        if self._client_seconds > self._settings.max_audio:
            await self.abort(
                f"the audio is longer than {self._settings.max_audio:g} s (max_audio); "
                "send audio-stop at the end of each request",
                "audio-too-long",
            )
            return
        frames = self._framer.push(converted)
        if frames:
            self._pacer.start()
        for frame in frames:
            if self._audio_ended:
                return
            await self._put(frame)

    async def end_audio(self) -> None:
        """The client's audio has ended: flush everything and let eof follow it."""
        if self._audio_ended:
            return
        self._audio_ended = True
        self._audio_stopped_at = time.monotonic()
        frames = self._framer.push(self._converter.flush())
        last = self._framer.flush()
        if last is not None:
            frames.append(last)
        for frame in frames:
            await self._put(frame)
        await self._put(_END_OF_AUDIO)

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def cancel(self) -> None:
        """Abandon the utterance (client gone): closes the Bodhi socket, sends nothing."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def abort(self, text: str, code: str) -> None:
        """End the utterance now with an error event, unless it has already answered."""
        if self.finished:
            return
        await self.cancel()
        _LOGGER.warning("Utterance aborted: %s", text)
        await self._emit(Error(text=text, code=code).event())

    async def _put(self, frame: bytes) -> None:
        if not self._closed:
            await self._queue.put(frame)

    def _end_audio_here(self, reason: str) -> None:
        """End the audio from this side: nothing more is sent but eof."""
        if self._audio_ended:
            return
        _LOGGER.debug("Ending the audio: %s", reason)
        self._audio_ended = True
        self._ended_by = reason
        self._drain_queue()
        self._queue.put_nowait(_END_OF_AUDIO)

    # -- the Bodhi side ------------------------------------------------------------------------

    async def _run(self) -> None:
        model = self.request.choice.model
        try:
            try:
                await self._transcribe()
            except BodhiError as err:
                if self._answered:
                    # The user already has their transcript; this was only the clean-up.
                    _LOGGER.debug("After the transcript: %s", err)
                    return
                if self._connected and self._assembler.segment_count:
                    # Whole phrases Bodhi completed are still what the user said; a voice
                    # command is usually one phrase, so this is better than an error.
                    _LOGGER.warning(
                        "Bodhi failed mid-utterance (%s); answering with the %d phrase(s) it "
                        "completed",
                        err,
                        self._assembler.segment_count,
                    )
                    await self._answer()
                    return
                _LOGGER.warning("Transcription with %s failed: %s", model.name, err)
                await self._emit(Error(text=err.message, code=err.code).event())
                return
            if not self._answered:
                await self._answer()
        except (ConnectionError, RuntimeError) as err:
            # The Wyoming client went away while we were answering.
            _LOGGER.debug("Could not deliver the transcript: %s", err)
        except Exception:
            # A bug of ours: the client still gets an answer, never silence.
            _LOGGER.exception("Internal error in an utterance with %s", model.name)
            if not self._answered:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._emit(
                        Error(
                            text="internal error in the speech-to-text server", code="internal"
                        ).event()
                    )
        finally:
            self._closed = True
            self._drain_queue()

    async def _answer(self) -> None:
        self._answered = True
        text = self._assembler.text
        language = self._assembler.language_code or self.request.choice.language
        await self._emit(Transcript(text=text, language=language).event())
        await self._emit(TranscriptStop().event())
        _LOGGER.info(
            "Transcript from %s: %d phrase(s), %.2f s of audio%s, %s",
            self.request.choice.model.name,
            self._assembler.segment_count,
            self._frames_sent * self._settings.chunk_ms / 1000,
            f" (+{self._silence_frames_sent * self._settings.chunk_ms / 1000:.1f} s keepalive)"
            if self._silence_frames_sent
            else "",
            self._ended_by or f"{self._ms_since_audio_stop():.0f} ms after audio-stop",
        )
        _LOGGER.debug("Transcript text: %s", text)

    async def _transcribe(self) -> None:
        settings = self._settings
        config = self.request.config
        _LOGGER.debug(
            "Connecting to Bodhi for %s (transaction %s, %d hotword(s))",
            config.model,
            config.transaction_id,
            len(config.hotwords),
        )
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []
        if settings.endpointing:
            # Home Assistant runs no VAD of its own then: its limits are ours to enforce.
            timers.append(loop.call_later(settings.no_speech_timeout, self._on_no_speech))
            timers.append(
                loop.call_later(
                    settings.max_command,
                    self._end_audio_here,
                    f"the command reached the {settings.max_command:g} s limit",
                )
            )
        try:
            stream = await self._connect()
            self._connected = True
            async with stream:
                _LOGGER.debug(
                    "Bodhi connected after %.0f ms", (time.monotonic() - self._started_at) * 1000
                )
                await self._exchange(stream)
        finally:
            for timer in timers:
                timer.cancel()

    async def _connect(self) -> BodhiStream:
        """Connect, retrying what a retry can fix, within a bounded budget.

        Nothing is lost meanwhile: the audio waits in the queue, and is all sent once
        connected.
        """
        settings = self._settings
        bridge = self._bridge
        first_try = time.monotonic()
        attempt = 0
        while True:
            try:
                return await BodhiStream.connect(
                    bridge.http,
                    settings.bodhi_url,
                    bridge.credentials,
                    self.request.config,
                    timeout=settings.connect_timeout,
                    ssl_context=bridge.ssl_context,
                )
            except BodhiError as err:
                attempt += 1
                delay = RETRY_BACKOFF * 2 ** (attempt - 1)
                spent = time.monotonic() - first_try
                if (
                    not err.retryable
                    or attempt > settings.retries
                    or spent + delay > settings.retry_budget
                ):
                    raise
                _LOGGER.warning(
                    "Connecting to Bodhi failed (%s); retry %d of %d in %.2f s",
                    err,
                    attempt,
                    settings.retries,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _exchange(self, stream: BodhiStream) -> None:
        settings = self._settings
        # No deadline while audio is flowing; the sender sets one once eof is sent.
        deadline = asyncio.timeout(None)
        sender = asyncio.create_task(self._send(stream, deadline), name="bodhi sender")
        try:
            async with deadline:
                async for result in stream.results():
                    if result.text.strip():
                        self._heard_text = True
                    delta = self._assembler.feed(result)
                    if delta is None or self._answered:
                        continue
                    await self._emit(TranscriptChunk(text=delta).event())
                    if settings.endpointing:
                        # Bodhi has completed the first phrase: that is the command.
                        await self._answer()
                        self._end_audio_here("Bodhi ended the command")
        except TimeoutError:
            raise BodhiTimeoutError(
                f"Bodhi sent no final result within {settings.response_timeout:g} s "
                "of the end of the audio"
            ) from None
        except BodhiError:
            # A failed send closes the socket; report why it failed, not the close.
            if self._send_error is not None:
                raise self._send_error from None
            raise
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _on_no_speech(self) -> None:
        if not self._heard_text:
            self._end_audio_here(
                f"no speech recognised within {self._settings.no_speech_timeout:g} s"
            )

    async def _send(self, stream: BodhiStream, deadline: asyncio.Timeout) -> None:
        settings = self._settings
        loop = asyncio.get_running_loop()
        last_sent_at = time.monotonic()
        paused_flush_done = False
        try:
            while True:
                wait = (KEEPALIVE_INTERVAL if paused_flush_done else KEEPALIVE_AFTER) - (
                    time.monotonic() - last_sent_at
                )
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        frame = await self._queue.get()
                except TimeoutError:
                    # The client's audio has paused without audio-stop.
                    paused = time.monotonic() - self._last_audio_at
                    if paused >= settings.max_command:
                        self._end_audio_here(f"the audio paused for {paused:.0f} s")
                        continue
                    seconds = 0.0 if paused_flush_done else PAUSE_FLUSH_SECONDS
                    await self._send_silence(stream, seconds)
                    paused_flush_done = True
                    last_sent_at = time.monotonic()
                    continue
                if frame == _END_OF_AUDIO:
                    await stream.send_eof()
                    deadline.reschedule(loop.time() + settings.response_timeout)
                    _LOGGER.debug("Sent eof after %d frame(s)", self._frames_sent)
                    return
                paused_flush_done = False
                delay = self._pacer.delay()
                if delay > 0:
                    await asyncio.sleep(delay)
                await stream.send_audio(frame)
                self._pacer.sent()
                self._frames_sent += 1
                last_sent_at = time.monotonic()
        except BodhiError as err:
            self._send_error = err
            await stream.close()

    async def _send_silence(self, stream: BodhiStream, seconds: float) -> None:
        """Whole frames of digital silence, at least one; Bodhi bills these too."""
        frames = max(1, math.ceil(seconds * BODHI_BYTES_PER_SECOND / self._frame_bytes))
        _LOGGER.debug("Audio paused: keeping Bodhi alive with %d silent frame(s)", frames)
        silence = bytes(self._frame_bytes)
        for _ in range(frames):
            await stream.send_audio(silence)
            self._pacer.sent()
        self._silence_frames_sent += frames

    def _drain_queue(self) -> None:
        # Unblocks a client waiting on a full queue; it then sees the flags and stops.
        while not self._queue.empty():
            self._queue.get_nowait()

    def _ms_since_audio_stop(self) -> float:
        if self._audio_stopped_at is None:
            return 0.0
        return (time.monotonic() - self._audio_stopped_at) * 1000
