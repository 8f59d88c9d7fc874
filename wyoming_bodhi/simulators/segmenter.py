"""Energy-based speech segmentation of received PCM, sans I/O.

Bodhi endpoints on *received* audio, not on wall-clock time: a segment completes only once
enough trailing silence has actually arrived, and audio that stops without ``eof`` leaves the
open segment pending for ever. The segmenter therefore counts time in analysed samples only.

Audio is analysed in fixed 10 ms windows. The per-frame work is a handful of numpy calls plus
a Python step per segment *transition* (never per sample or per window), so a hundred real-time
streams in one process stay cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WINDOW_SECONDS = 0.01
DEFAULT_THRESHOLD_DBFS = -40.0

# Bodhi's documented endpoint: 0.44 s by default, clamped to 0.44-1.2 s when configured.
DEFAULT_ENDPOINT_SECONDS = 0.44
MIN_ENDPOINT_SECONDS = 0.44
MAX_ENDPOINT_SECONDS = 1.2


def clamp_endpoint(seconds: float | None) -> float:
    """The trailing silence Bodhi waits for, given the config's ``endpoint_silence_duration``."""
    if seconds is None:
        return DEFAULT_ENDPOINT_SECONDS
    return min(max(float(seconds), MIN_ENDPOINT_SECONDS), MAX_ENDPOINT_SECONDS)


@dataclass(frozen=True, slots=True)
class SegmentOpened:
    """Speech started: a new segment is open."""

    index: int
    start_time: float
    """Stream seconds at which the segment's first speech window starts."""


@dataclass(frozen=True, slots=True)
class SegmentProgress:
    """The open segment after a feed: how much speech it spans so far."""

    index: int
    start_time: float
    speech_seconds: float
    """From the segment start to the end of its latest speech window."""


@dataclass(frozen=True, slots=True)
class SegmentComplete:
    """The segment ended (enough trailing silence, or end of stream)."""

    index: int
    start_time: float
    duration: float
    """From the segment start to the end of its last speech window (trailing silence excluded)."""


SegmentEvent = SegmentOpened | SegmentProgress | SegmentComplete


class EnergySegmenter:
    """Splits a stream of int16 little-endian mono PCM into speech segments.

    ``feed()`` accepts any number of bytes (odd lengths included: the remainder is carried to
    the next call) and returns the events it caused, in order: openings, completions and, if
    a segment is still open afterwards, one ``SegmentProgress``. ``finish()`` (at eof)
    completes the open segment, if any.
    """

    def __init__(
        self,
        sample_rate: int,
        endpoint_silence_duration: float | None = None,
        threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self.endpoint_seconds = clamp_endpoint(endpoint_silence_duration)
        self._window_samples = max(1, round(sample_rate * WINDOW_SECONDS))
        self._window_bytes = 2 * self._window_samples
        self._window_seconds = self._window_samples / sample_rate
        # Rounding first keeps 0.44 / 0.01 from becoming 45 windows through float noise.
        windows = round(self.endpoint_seconds / self._window_seconds, 6)
        self._endpoint_windows = max(1, math.ceil(windows))
        # Compare mean squares against the squared threshold: no sqrt per window.
        amplitude = 32768.0 * 10.0 ** (threshold_dbfs / 20.0)
        self._threshold_power = amplitude * amplitude
        self._pending = b""
        self._windows = 0  # windows analysed so far: the stream clock
        self._segments = 0
        self._open = False
        self._start = 0  # window index of the open segment's first speech window
        self._last_speech = 0  # window index of its latest speech window
        self._finished = False

    @property
    def received_seconds(self) -> float:
        """Stream time analysed so far (whole windows only)."""
        return self._windows * self._window_seconds

    @property
    def in_segment(self) -> bool:
        return self._open

    @property
    def segment_count(self) -> int:
        """Segments opened so far (the next segment's index)."""
        return self._segments

    def feed(self, data: bytes) -> list[SegmentEvent]:
        if self._finished:
            return []
        buffer = self._pending + data if self._pending else data
        usable = len(buffer) - len(buffer) % self._window_bytes
        self._pending = bytes(buffer[usable:])
        events: list[SegmentEvent] = []
        if usable:
            samples = np.frombuffer(buffer, dtype="<i2", count=usable // 2).astype(np.float32)
            power = np.square(samples).reshape(-1, self._window_samples).mean(axis=1)
            self._scan(power > self._threshold_power, events)
        if self._open:
            events.append(
                SegmentProgress(self._segments - 1, self._time(self._start), self._span())
            )
        return events

    def finish(self) -> list[SegmentEvent]:
        """End of stream: complete the open segment. Later feeds are ignored."""
        events: list[SegmentEvent] = []
        if not self._finished and self._open:
            events.append(self._complete())
        self._finished = True
        return events

    def _scan(self, speech: npt.NDArray[np.bool_], events: list[SegmentEvent]) -> None:
        base = self._windows
        count = len(speech)
        self._windows += count
        position = 0
        while position < count:
            rest = speech[position:]
            hits = np.flatnonzero(rest)
            if not self._open:
                if not len(hits):
                    return
                self._open = True
                self._start = self._last_speech = base + position + int(hits[0])
                self._segments += 1
                events.append(SegmentOpened(self._segments - 1, self._time(self._start)))
                position += int(hits[0]) + 1
                continue
            # In a segment: find the first silence run that reaches the endpoint. Runs are
            # the gap before the first hit (continuing the silence already counted), the
            # gaps between hits, and the gap after the last hit.
            silence_so_far = base + position - 1 - self._last_speech
            if not len(hits):
                end = self._ends_in_run(silence_so_far, count - position)
                if end is None:
                    return
                events.append(self._complete())
                position += end
                continue
            leading = silence_so_far + int(hits[0])
            if leading >= self._endpoint_windows:
                events.append(self._complete())
                position += self._endpoint_windows - silence_so_far
                continue
            gaps = np.diff(hits) - 1
            long_gaps = np.flatnonzero(gaps >= self._endpoint_windows)
            if len(long_gaps):
                last_hit = int(hits[int(long_gaps[0])])
                self._last_speech = base + position + last_hit
                events.append(self._complete())
                position += last_hit + 1 + self._endpoint_windows
                continue
            last_hit = int(hits[-1])
            self._last_speech = base + position + last_hit
            trailing = len(rest) - 1 - last_hit
            if trailing >= self._endpoint_windows:
                events.append(self._complete())
                position += last_hit + 1 + self._endpoint_windows
                continue
            return

    def _ends_in_run(self, silence_so_far: int, run: int) -> int | None:
        """Where, within a run of silence windows, the endpoint is reached (if it is)."""
        needed = self._endpoint_windows - silence_so_far
        return needed if needed <= run else None

    def _complete(self) -> SegmentComplete:
        event = SegmentComplete(self._segments - 1, self._time(self._start), self._span())
        self._open = False
        return event

    def _span(self) -> float:
        return self._time(self._last_speech + 1 - self._start)

    def _time(self, windows: int) -> float:
        return round(windows * self._window_seconds, 6)
