"""Section a: audio conversion, ours vs wyoming's AudioChunkConverter (C and pure-Python audioop).

Each converter turns s16 PCM in 20 ms chunks (and, for 16 kHz, also in Home Assistant's
10 ms chunks and a satellite's 64 ms chunks) into 8 kHz s16 mono. Measured per converter:

* CPU milliseconds per second of audio (``time.process_time``, best of N runs, GC off);
* how far an out-of-band tone is attenuated relative to a 1 kHz tone of equal level, in the
  int16 output (positive dB; a tone that rounds away entirely is reported at the int16
  quantisation floor and flagged ``at_floor``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np

with warnings.catch_warnings():
    # Python 3.11/3.12 warn that audioop goes away in 3.13; it is what we compare against.
    warnings.simplefilter("ignore", DeprecationWarning)
    import wyoming.audio as wyoming_audio
    from wyoming import pyaudioop

from wyoming_bodhi.engines.bodhi.protocol import SAMPLE_RATE as BODHI_RATE
from wyoming_bodhi.pipeline.audio import (
    HALFBAND_INPUT,
    AudioFormat,
    FrameStream,
    frame_bytes_for,
)

from . import signals

CHUNK_SECONDS = 0.02
FRAME_MS = 100
REFERENCE_HZ = 1000.0
TONE_LEVEL = 0.5
TONE_SECONDS = 2.0
EDGE_SECONDS = 0.1
"""Trimmed from both ends of a tone's output before measuring its level."""
QUANTISATION_FLOOR = 1 / math.sqrt(12)
"""RMS of int16 rounding noise, in LSB: the lowest level an int16 output can meaningfully have."""

TARGET_RATIO = 50.0
TARGET_ATTENUATION_DB = 60.0


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    label: str
    rate: int
    channels: int
    alias_hz: float
    """An out-of-band tone: above Bodhi's 4 kHz Nyquist, so it must not reach the output."""
    chunk_seconds: float = CHUNK_SECONDS
    audioop_target: bool = False
    """Judge ours against C audioop's CPU here (Home Assistant's own chunking)."""


CASES = (
    # What Home Assistant's pipeline sends: 10 ms, 320 bytes.
    Case(
        "16k_mono_10ms",
        "16 kHz mono → 8 kHz, 10 ms chunks (Home Assistant)",
        16000,
        1,
        6000.0,
        0.01,
        audioop_target=True,
    ),
    Case("16k_mono", "16 kHz mono → 8 kHz", 16000, 1, 6000.0),
    Case("48k_stereo", "48 kHz stereo → 8 kHz", 48000, 2, 5000.0),
    # What a wyoming-satellite sends: 1024 samples a chunk.
    Case("16k_mono_64ms", "16 kHz mono → 8 kHz, 64 ms chunks", 16000, 1, 6000.0, 0.064),
)


class ChunkConverter(Protocol):
    def convert(self, chunk: bytes) -> bytes | list[bytes]:
        """Convert one chunk: output bytes, or a list of whole frames."""

    def finish(self) -> list[bytes]:
        """The rest of the output once the input has ended."""


class Ours:
    """What the bridge runs per utterance: a FrameStream making 100 ms frames (its default
    without endpointing; with endpointing, 50 ms: section f, and ``Ours50``)."""

    frame_ms = FRAME_MS

    def __init__(self, rate: int, channels: int) -> None:
        self._format = (rate, 2, channels)
        self._stream = FrameStream(BODHI_RATE, frame_bytes_for(self.frame_ms, BODHI_RATE))

    def convert(self, chunk: bytes) -> list[bytes]:
        return self._stream.push(chunk, *self._format)

    def finish(self) -> list[bytes]:
        return self._stream.flush()


class Ours50(Ours):
    """The same with 50 ms frames, as with --endpointing."""

    frame_ms = 50


def our_label(rate: int, channels: int, frame_ms: int) -> str:
    path = "half-band FIR" if AudioFormat(rate, 2, channels) == HALFBAND_INPUT else "soxr MQ"
    return f"wyoming-bodhi ({path}, {frame_ms} ms frames)"


class Stock:
    """wyoming.audio.AudioChunkConverter with whichever audioop wyoming.audio holds."""

    def __init__(self, rate: int, channels: int) -> None:
        self._format = (rate, 2, channels)
        self._converter = wyoming_audio.AudioChunkConverter(rate=8000, width=2, channels=1)

    def convert(self, chunk: bytes) -> bytes:
        return self._converter.convert(wyoming_audio.AudioChunk(*self._format, chunk)).audio

    def finish(self) -> list[bytes]:
        return []  # ratecv holds no samples back


@contextlib.contextmanager
def audioop_backend(module: ModuleType | None) -> Iterator[None]:
    """Make wyoming.audio use ``module`` as its audioop (None: leave it alone)."""
    if module is None:
        yield
        return
    original = wyoming_audio.audioop  # type: ignore[attr-defined]
    wyoming_audio.audioop = module  # type: ignore[attr-defined]
    try:
        yield
    finally:
        wyoming_audio.audioop = original  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    make: Callable[[int, int], ChunkConverter]
    audioop: ModuleType | None = None


def _c_audioop() -> ModuleType | None:
    """The C audioop wyoming.audio imported, if this Python still has one."""
    module: ModuleType = wyoming_audio.audioop  # type: ignore[attr-defined]
    return None if module is pyaudioop else module


def contenders(case: Case) -> list[Contender]:
    found = [Contender("ours", our_label(case.rate, case.channels, Ours.frame_ms), Ours)]
    if case.audioop_target:
        # Home Assistant's chunking, also as the bridge frames it with --endpointing.
        found.append(
            Contender("ours_50", our_label(case.rate, case.channels, Ours50.frame_ms), Ours50)
        )
    c_module = _c_audioop()
    if c_module is not None:
        found.append(Contender("audioop_c", "wyoming AudioChunkConverter, C audioop", Stock))
    found.append(
        Contender(
            "pyaudioop",
            "wyoming AudioChunkConverter, pure-Python pyaudioop (Python ≥ 3.13)",
            Stock,
            pyaudioop,
        )
    )
    return found


def cpu_ms_per_second(
    contender: Contender, case: Case, chunks: list[bytes], seconds: float, repeats: int
) -> list[float]:
    """CPU ms per second of audio for each of ``repeats`` runs over ``chunks``.

    One untimed run first: the first few milliseconds of a process run measurably slower
    (cold caches, lazy allocations), and ours is only milliseconds in all.
    """
    runs = []
    with audioop_backend(contender.audioop):
        for attempt in range(repeats + 1):
            converter = contender.make(case.rate, case.channels)
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                start = time.process_time()
                for chunk in chunks:
                    converter.convert(chunk)
                used = time.process_time() - start
            finally:
                if gc_was_enabled:
                    gc.enable()
            if attempt:
                runs.append(used / seconds * 1000)
    return runs


def _convert_whole(contender: Contender, case: Case, signal: signals.Signal) -> np.ndarray:
    data = signals.pcm16(signal, case.channels)
    parts: list[bytes] = []
    with audioop_backend(contender.audioop):
        converter = contender.make(case.rate, case.channels)
        for chunk in signals.split(data, case.rate, case.channels, case.chunk_seconds):
            out = converter.convert(chunk)
            parts.extend(out) if isinstance(out, list) else parts.append(out)
        parts.extend(converter.finish())
    return np.frombuffer(b"".join(parts), "<i2").astype(np.float64)


def _level_lsb(samples: np.ndarray) -> float:
    edge = round(8000 * EDGE_SECONDS)
    body = samples[edge : len(samples) - edge]
    return float(np.sqrt(np.mean(np.square(body)))) if len(body) else 0.0


def attenuation_db(contender: Contender, case: Case) -> tuple[float, bool]:
    """(attenuation of the alias tone vs 1 kHz in dB, whether it hit the int16 floor)."""
    reference = _level_lsb(
        _convert_whole(contender, case, signals.tone(case.rate, TONE_SECONDS, REFERENCE_HZ))
    )
    alias = _level_lsb(
        _convert_whole(contender, case, signals.tone(case.rate, TONE_SECONDS, case.alias_hz))
    )
    at_floor = alias < QUANTISATION_FLOOR
    return 20 * math.log10(reference / max(alias, QUANTISATION_FLOOR)), at_floor


def run_case(case: Case, seconds: float, repeats: int) -> dict[str, Any]:
    data = signals.pcm16(signals.noise(case.rate, seconds), case.channels)
    chunks = signals.split(data, case.rate, case.channels, case.chunk_seconds)
    converters: dict[str, Any] = {}
    for contender in contenders(case):
        runs = cpu_ms_per_second(contender, case, chunks, seconds, repeats)
        attenuation, at_floor = attenuation_db(contender, case)
        converters[contender.key] = {
            "label": contender.label,
            "cpu_ms_per_s": min(runs),
            "cpu_ms_per_s_runs": [round(r, 5) for r in runs],
            "attenuation_db": attenuation,
            "attenuation_at_floor": at_floor,
        }
    ours = converters["ours"]["cpu_ms_per_s"]
    return {
        "key": case.key,
        "label": case.label,
        "rate": case.rate,
        "channels": case.channels,
        "alias_hz": case.alias_hz,
        "chunk_ms": round(case.chunk_seconds * 1000),
        "audioop_target": case.audioop_target,
        "converters": converters,
        "ratios_to_ours": {
            key: value["cpu_ms_per_s"] / ours for key, value in converters.items() if ours > 0
        },
    }


def run(seconds: float, repeats: int) -> dict[str, Any]:
    """Section a for every case; ``seconds`` of noise per timing run, best of ``repeats``."""
    return {
        "chunk_ms": round(CHUNK_SECONDS * 1000),
        "audio_seconds_per_run": seconds,
        "repeats": repeats,
        "reference_hz": REFERENCE_HZ,
        "tone_level_dbfs": 20 * math.log10(TONE_LEVEL),
        "targets": {
            "ratio_pyaudioop_to_ours_min": TARGET_RATIO,
            "ratio_audioop_c_to_ours_min": 1.0,
            "attenuation_db_min": TARGET_ATTENUATION_DB,
        },
        "cases": [run_case(case, seconds, repeats) for case in CASES],
    }
