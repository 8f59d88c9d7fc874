"""An utterance's intake: the client's audio taken without waiting, converted, framed and queued
for the engine, up to ``max_audio``.

Taking audio never waits, so the connection is always being read and a client that goes away
is noticed at once, whatever state its request is in. The queue is unbounded here and bounded
by ``max_audio``: a client far ahead of real time is still read. While the engine's
connection is being retried, the audio waits in the queue, and all of it is sent once
connected (retry with replay).

The intake also watches the client's audio: once it pauses, or falls behind real time, by
more than ``max_command``, its owner is told (``on_stall``), and finishes the audio as if
``audio-stop`` had come.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from ..logs import Throttled
from ..wav import Chunks, WavError, WavHeaderStripper, parse_format
from .audio import AudioFormat, FrameStream, Pacer

_LOGGER = logging.getLogger(__name__)

END_OF_AUDIO: Final = b""
"""Queued after the last frame; frames themselves are never empty."""


class AudioIntake:
    """The client's audio → the engine's frames in :attr:`queue`, then :data:`END_OF_AUDIO`."""

    def __init__(
        self,
        frames: FrameStream,
        pacer: Pacer,
        *,
        max_audio: float,
        warnings: Throttled,
        started_at: float,
    ) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._frames = frames
        self._pacer = pacer
        self._max_audio = max_audio
        self._warnings = warnings
        self._wav_header = WavHeaderStripper()
        self._started_at = started_at
        self.seconds = 0.0
        """Seconds of audio the client has sent."""
        self.last_audio_at = started_at
        self._watchdog: asyncio.TimerHandle | None = None
        self._stall_limit = 0.0
        self._on_stall: Callable[[str], object] = _ignore

    def push(self, audio: bytes, rate: int, width: int, channels: int) -> bool:
        """Convert and queue one chunk; never waits. False, and nothing queued, once the audio
        is longer than ``max_audio``. Raises ``UnsupportedAudioFormat``."""
        self.last_audio_at = time.monotonic()
        stripper = self._wav_header
        if not stripper.decided:
            audio = stripper.feed(audio)
            if stripper.header is not None:
                self._on_wav_header(stripper.header, AudioFormat(rate, width, channels))
        frames = self._frames.push(audio, rate, width, channels)
        # The format is valid now: count the client's audio as it arrives (the frames lag
        # behind it by up to a frame).
        self.seconds += len(audio) / (rate * width * channels)
        if self.seconds > self._max_audio:
            return False
        if frames:
            self._pacer.start()
        for frame in frames:
            self.queue.put_nowait(frame)
        return True

    def finish(self) -> None:
        """No more client audio: flush the converter and framer; the end follows the queued
        frames. The converter's delay line and the partial last frame: zeros stand in for the
        audio after the end, and the last frame is zero-padded."""
        for frame in self._frames.flush():
            self.queue.put_nowait(frame)
        self.queue.put_nowait(END_OF_AUDIO)

    def cut(self) -> None:
        """Drop what is queued; the end goes out next."""
        self.clear()
        self.queue.put_nowait(END_OF_AUDIO)

    def clear(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    # -- the watchdog ---------------------------------------------------------------------------

    def watch(self, limit: float, on_stall: Callable[[str], object]) -> None:
        """Call ``on_stall(why)`` once the client's audio pauses, or falls behind real time, by
        more than ``limit`` seconds. Re-armed lazily: taking audio never touches the timer."""
        self._stall_limit = limit
        self._on_stall = on_stall
        self._arm(self._started_at + limit)

    def stop_watching(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _arm(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        # call_at takes the loop's clock; ours is time.monotonic (the same clock on Linux,
        # but do not rely on it).
        self._watchdog = loop.call_at(
            loop.time() + max(0.0, when - time.monotonic()), self._on_watchdog
        )

    def _on_watchdog(self) -> None:
        self._watchdog = None
        limit = self._stall_limit
        now = time.monotonic()
        behind_from = self._started_at + self.seconds
        deadline = min(behind_from, self.last_audio_at) + limit
        if now < deadline:
            self._arm(deadline)
        elif self.last_audio_at + limit <= now:
            self._on_stall(f"the audio paused for {now - self.last_audio_at:.0f} s")
        else:
            self._on_stall(f"the client's audio fell {now - behind_from:.0f} s behind real time")

    # -- a WAV header at the start of the audio ---------------------------------------------------

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


def _ignore(_why: str) -> None:
    pass


__all__ = ["END_OF_AUDIO", "AudioIntake"]
