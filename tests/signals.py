"""Test audio made on the spot: tone bursts that any energy segmenter sees as speech."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Signal = NDArray[np.float64]


def tone(rate: int, seconds: float, freq: float, amplitude: float = 0.5) -> Signal:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def silence(rate: int, seconds: float) -> Signal:
    return np.zeros(round(rate * seconds))


def utterances(
    rate: int, count: int = 2, burst: float = 0.6, gap: float = 1.0, edge: float = 0.1
) -> Signal:
    """``count`` speech-like bursts separated by ``gap`` seconds of silence."""
    parts: list[Signal] = [silence(rate, edge)]
    for index in range(count):
        if index:
            parts.append(silence(rate, gap))
        # Two partials, like a voiced sound, so nothing lands on a resampler edge.
        parts.append(tone(rate, burst, 300.0, 0.3) + tone(rate, burst, 700.0, 0.2))
    parts.append(silence(rate, edge))
    return np.concatenate(parts)


def encode(signal: Signal, width: int = 2, channels: int = 1) -> bytes:
    """PCM bytes: width 1 is unsigned (the WAV convention), 2 and 4 signed little-endian."""
    clipped = np.clip(signal, -1.0, 1.0)
    if width == 1:
        samples = np.round(clipped * 127 + 128).astype(np.uint8)
    elif width == 2:
        samples = np.round(clipped * 32767).astype("<i2")
    elif width == 4:
        samples = np.round(clipped * 2147483647).astype("<i4")
    else:
        raise ValueError(width)
    if channels > 1:
        samples = np.repeat(samples[:, None], channels, axis=1)
    return samples.tobytes()


def decode_s16(data: bytes) -> Signal:
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0


def level_db(signal: Signal) -> float:
    rms = float(np.sqrt(np.mean(np.square(signal)))) if len(signal) else 0.0
    return 20 * np.log10(max(rms, 1e-12))
