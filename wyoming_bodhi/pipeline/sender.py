"""An utterance's sender: the queued frames out to the engine's session, paced to real time,
with keepalive silence while the client's audio pauses.

The pacer keeps the stream at most ``lead`` seconds ahead of real time (engines that stream
bill, and some refuse, audio faster than that). An engine that closes a silent session
declares ``keepalive_after`` in its :class:`~..engines.base.AudioSpec`: once the client's
audio has paused that long without ``audio-stop`` (the intake's watchdog ends it after
``max_command``), the sender sends ``keepalive_flush`` seconds of digital silence (what pushes
the engine's last phrase out), then a frame of it every ``keepalive_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from ..engines.base import AudioSpec, EngineError, Session
from .audio import Pacer
from .intake import END_OF_AUDIO

_LOGGER = logging.getLogger(__name__)


class PacedSender:
    """Sends what ``queue`` holds, up to :data:`~.intake.END_OF_AUDIO`, then the end."""

    def __init__(
        self,
        queue: asyncio.Queue[bytes],
        pacer: Pacer,
        audio: AudioSpec,
        frame_bytes: int,
        *,
        cut: Callable[[], bool],
    ) -> None:
        self._queue = queue
        self._pacer = pacer
        self._audio = audio
        self._frame_bytes = frame_bytes
        self._cut = cut
        """Whether the audio was cut: a frame that waited for its turn is then dropped."""
        self.frames_sent = 0
        self.silence_frames_sent = 0
        self.error: EngineError | None = None
        """Why a send failed (the session is closed then)."""

    async def run(self, session: Session, on_end: Callable[[], object]) -> None:
        """Until the end is sent (then ``on_end()``), or a send fails (:attr:`error`)."""
        audio = self._audio
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
                    # The client's audio has paused without audio-stop, and the engine would
                    # close a silent session.
                    seconds = 0.0 if paused_flush_done else audio.keepalive_flush
                    await self._send_silence(session, seconds)
                    paused_flush_done = True
                    last_sent_at = time.monotonic()
                    continue
                if frame == END_OF_AUDIO:
                    await session.send_end()
                    on_end()
                    _LOGGER.debug("Sent the end after %d frame(s)", self.frames_sent)
                    return
                paused_flush_done = False
                delay = self._pacer.delay()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._cut():
                    # Cut while this frame waited for its turn: the end is next in the queue.
                    continue
                await session.send_audio(frame)
                self._pacer.sent()
                self.frames_sent += 1
                last_sent_at = time.monotonic()
        except EngineError as err:
            self.error = err
            await session.close()

    async def _send_silence(self, session: Session, seconds: float) -> None:
        """Whole frames of digital silence, at least one; engines bill these too."""
        frames = max(1, math.ceil(seconds * self._audio.bytes_per_second / self._frame_bytes))
        _LOGGER.debug("Audio paused: keeping the session alive with %d silent frame(s)", frames)
        silence = bytes(self._frame_bytes)
        for _ in range(frames):
            await session.send_audio(silence)
            self._pacer.sent()
        self.silence_frames_sent += frames


__all__ = ["PacedSender"]
