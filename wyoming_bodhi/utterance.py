"""One utterance: Wyoming audio in, one Bodhi session, Wyoming transcript events out.

The Bodhi connection opens as soon as the utterance starts, while audio is already being
converted and queued, so the handshake overlaps the user's speech. A sender task paces the
queued frames out; the utterance task reads results and writes transcript events. Every
utterance ends in exactly one ``transcript`` or ``error`` event, within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.error import Error
from wyoming.event import Event

from .audio import Framer, Pacer, StreamConverter, frame_bytes_for
from .bodhi.client import BodhiStream
from .bodhi.errors import BodhiError, BodhiTimeoutError
from .bodhi.protocol import BodhiConfig
from .bridge import Bridge, ModelChoice
from .transcript import TranscriptAssembler

_LOGGER = logging.getLogger(__name__)

EventSink = Callable[[Event], Awaitable[None]]

MAX_BUFFERED_SECONDS = 30.0
"""Audio held while Bodhi is slow to take it; past this the client is made to wait
(TCP backpressure), so memory stays bounded whatever the client sends."""

_END_OF_AUDIO = b""
"""Queued after the last frame; frames themselves are never empty."""


class Utterance:
    """Create with :meth:`start`; feed :meth:`add_audio`; finish with :meth:`end_audio`."""

    def __init__(self, bridge: Bridge, choice: ModelChoice, emit: EventSink) -> None:
        settings = bridge.settings
        self._bridge = bridge
        self.choice = choice
        self._emit = emit
        self._converter = StreamConverter()
        self._framer = Framer(frame_bytes_for(settings.chunk_ms))
        self._pacer = Pacer(settings.chunk_ms / 1000, settings.lead)
        max_frames = max(1, int(MAX_BUFFERED_SECONDS * 1000 / settings.chunk_ms))
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_frames)
        self._assembler = TranscriptAssembler()
        self._audio_ended = False
        self._closed = False
        self._send_error: BodhiError | None = None
        self._frames_sent = 0
        self._started_at = time.monotonic()
        self._audio_stopped_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, bridge: Bridge, choice: ModelChoice, emit: EventSink) -> Utterance:
        utterance = cls(bridge, choice, emit)
        utterance._task = asyncio.create_task(utterance._run(), name="bodhi utterance")
        return utterance

    @property
    def finished(self) -> bool:
        """True once the utterance's final event has been sent (or it was abandoned)."""
        return self._task is None or self._task.done()

    # -- the client side (called from the Wyoming handler) ------------------------------------

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        """Convert and queue one chunk. Raises ``UnsupportedAudioFormat``."""
        if self._closed or self._audio_ended:
            return
        frames = self._framer.push(self._converter.convert(audio, rate, width, channels))
        if frames:
            self._pacer.start()
        for frame in frames:
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
        """End the utterance now with an error event, unless it has already ended."""
        if self.finished:
            return
        await self.cancel()
        _LOGGER.warning("Utterance aborted: %s", text)
        await self._emit(Error(text=text, code=code).event())

    async def _put(self, frame: bytes) -> None:
        if not self._closed:
            await self._queue.put(frame)

    # -- the Bodhi side ------------------------------------------------------------------------

    async def _run(self) -> None:
        model = self.choice.model
        try:
            await self._emit(TranscriptStart(language=self.choice.language).event())
            try:
                await self._transcribe()
            except BodhiError as err:
                _LOGGER.warning("Transcription with %s failed: %s", model.name, err)
                await self._emit(Error(text=err.message, code=err.code).event())
                return
            language = self._assembler.language_code or self.choice.language
            text = self._assembler.text
            await self._emit(Transcript(text=text, language=language).event())
            await self._emit(TranscriptStop().event())
            _LOGGER.info(
                "Transcript from %s: %d segment(s), %.2f s of audio, %.0f ms after audio-stop",
                model.name,
                self._assembler.segment_count,
                self._frames_sent * self._bridge.settings.chunk_ms / 1000,
                self._ms_since_audio_stop(),
            )
            _LOGGER.debug("Transcript text: %s", text)
        except (ConnectionError, RuntimeError) as err:
            # The Wyoming client went away while we were answering.
            _LOGGER.debug("Could not deliver the transcript: %s", err)
        finally:
            self._closed = True
            self._drain_queue()

    async def _transcribe(self) -> None:
        settings = self._bridge.settings
        config = BodhiConfig(model=self.choice.model.name)
        _LOGGER.debug(
            "Connecting to Bodhi for %s (transaction %s)", config.model, config.transaction_id
        )
        stream = await BodhiStream.connect(
            self._bridge.http,
            settings.bodhi_url,
            self._bridge.credentials,
            config,
            timeout=settings.connect_timeout,
        )
        async with stream:
            _LOGGER.debug(
                "Bodhi connected after %.0f ms", (time.monotonic() - self._started_at) * 1000
            )
            # No deadline while audio is flowing; the sender sets one once eof is sent.
            deadline = asyncio.timeout(None)
            sender = asyncio.create_task(self._send(stream, deadline), name="bodhi sender")
            try:
                async with deadline:
                    async for result in stream.results():
                        delta = self._assembler.feed(result)
                        if delta:
                            await self._emit(TranscriptChunk(text=delta).event())
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

    async def _send(self, stream: BodhiStream, deadline: asyncio.Timeout) -> None:
        settings = self._bridge.settings
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await self._queue.get()
                if frame == _END_OF_AUDIO:
                    await stream.send_eof()
                    deadline.reschedule(loop.time() + settings.response_timeout)
                    _LOGGER.debug("Sent eof after %d frame(s)", self._frames_sent)
                    return
                delay = self._pacer.delay()
                if delay > 0:
                    await asyncio.sleep(delay)
                await stream.send_audio(frame)
                self._pacer.sent()
                self._frames_sent += 1
        except BodhiError as err:
            self._send_error = err
            await stream.close()

    def _drain_queue(self) -> None:
        # Unblocks a client waiting on a full queue; it then sees _closed and stops.
        while not self._queue.empty():
            self._queue.get_nowait()

    def _ms_since_audio_stop(self) -> float:
        if self._audio_stopped_at is None:
            return 0.0
        return (time.monotonic() - self._audio_stopped_at) * 1000
