"""Where speech starts and ends in a microphone's audio, by loudness, sans-I/O.

A simple adaptive energy detector for servers that need the client to find the end of a
command (``requires_external_vad``): the room's noise floor is tracked (quickly down,
slowly up, never during speech), speech is audio some decibels above it, and a command
ends after enough quiet following speech. Time is counted in samples, never on the wall
clock, so it behaves the same on a device that delivers audio faster than real time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

FRAME_SECONDS = 0.02
"""The detector's own frame: fine enough for a level meter and for finding an end."""
SPEECH_ABOVE_FLOOR_DB = 12.0
"""Speech is this much louder than the room."""
QUIETEST_SPEECH_DBFS = -55.0
"""Nothing quieter is speech, however quiet the room (digital silence has no floor)."""
SPEECH_START_SECONDS = 0.06
"""Loud audio this long starts speech: a click or a knock is shorter."""
FLOOR_RISE_SECONDS = 3.0
"""The time constant with which the floor follows a room that gets louder."""
FLOOR_CREEP_SECONDS = 10.0
"""The floor follows even loud audio, this slowly: a fan switched on is speech at first,
but not for ever (a command lasts seconds)."""
FLOOR_FALL_SECONDS = 0.1
SILENT_DBFS = -96.0


class Activity(Enum):
    SPEECH_STARTED = "speech started"
    SPEECH_ENDED = "speech ended"
    """Quiet for the configured time after speech: the command is over."""


@dataclass(frozen=True, slots=True)
class Level:
    """One detector frame's measurement."""

    dbfs: float
    floor_dbfs: float
    speech: bool


def dbfs(samples: np.ndarray) -> float:
    """RMS level of 16-bit samples in dB relative to full scale."""
    if samples.size == 0:
        return SILENT_DBFS
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) / 32768.0
    return max(SILENT_DBFS, 20 * math.log10(rms)) if rms > 0 else SILENT_DBFS


class SpeechDetector:
    """Feed 16-bit little-endian PCM as it comes; get where speech starts and ends.

    ``end_after``: seconds of quiet after speech that end a command; None never ends one
    (the detector still says where speech starts, and measures the level).
    """

    def __init__(self, rate: int, channels: int = 1, end_after: float | None = None) -> None:
        self._frame_bytes = max(1, round(rate * FRAME_SECONDS)) * 2 * channels
        self._pending = b""
        self._frame_seconds = self._frame_bytes / (2 * channels) / rate
        self._start_frames = max(1, round(SPEECH_START_SECONDS / self._frame_seconds))
        self._end_frames = (
            None if end_after is None else max(1, round(end_after / self._frame_seconds))
        )
        self._rise = self._frame_seconds / FLOOR_RISE_SECONDS
        self._creep = self._frame_seconds / FLOOR_CREEP_SECONDS
        self._fall = min(1.0, self._frame_seconds / FLOOR_FALL_SECONDS)
        self.floor_dbfs: float | None = None
        self.level: Level = Level(SILENT_DBFS, SILENT_DBFS, False)
        self.in_speech = False
        """Speech has started and its command has not ended."""
        self.heard_speech = False
        self._loud_run = 0
        self._quiet_run = 0
        self.seconds = 0.0
        """Audio fed so far (whole detector frames)."""

    def feed(self, audio: bytes) -> list[Activity]:
        data = self._pending + audio
        whole = len(data) - len(data) % self._frame_bytes
        self._pending = data[whole:]
        activity: list[Activity] = []
        for start in range(0, whole, self._frame_bytes):
            samples = np.frombuffer(data, "<i2", self._frame_bytes // 2, start)
            event = self._frame(dbfs(samples))
            if event is not None:
                activity.append(event)
        return activity

    def reset(self) -> None:
        """A new command: the room's floor is kept, everything else starts over."""
        self.in_speech = self.heard_speech = False
        self._loud_run = self._quiet_run = 0

    def _frame(self, level: float) -> Activity | None:
        self.seconds += self._frame_seconds
        floor = self.floor_dbfs
        if floor is None:
            floor = level
        loud = level >= max(floor + SPEECH_ABOVE_FLOOR_DB, QUIETEST_SPEECH_DBFS)
        # The floor follows the room, not the speaker: loud frames barely move it.
        step = self._fall if level < floor else (self._creep if loud else self._rise)
        floor += (level - floor) * step
        self.floor_dbfs = floor
        self.level = Level(level, floor, loud)

        if loud:
            self._loud_run += 1
            self._quiet_run = 0
        else:
            self._loud_run = 0
            self._quiet_run += 1
        if not self.in_speech and self._loud_run >= self._start_frames:
            self.in_speech = self.heard_speech = True
            return Activity.SPEECH_STARTED
        if self.in_speech and self._end_frames is not None and self._quiet_run >= self._end_frames:
            self.in_speech = False
            return Activity.SPEECH_ENDED
        return None


def meter(level_dbfs: float, width: int = 10) -> str:
    """A bar for a level from −60 to 0 dBFS, in eighths of a character."""
    fraction = min(1.0, max(0.0, (level_dbfs + 60.0) / 60.0))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return f"▕{bar.ljust(width)}▏"
