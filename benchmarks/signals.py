"""Benchmark audio: the test suite's signals (one definition serves both), plus noise and chunks."""

from __future__ import annotations

import numpy as np

from tests.signals import Signal, encode, silence, tone, utterances

__all__ = ["Signal", "noise", "pcm16", "silence", "speech_like", "split", "tone"]


def noise(rate: int, seconds: float, level: float = 0.1, seed: int = 0) -> Signal:
    """White noise: every converter does the same work whatever the signal, but be fair."""
    return np.random.default_rng(seed).standard_normal(round(rate * seconds)) * level


def speech_like(
    rate: int, count: int = 2, burst: float = 0.5, gap: float = 0.6, edge: float = 0.2
) -> Signal:
    """``count`` voiced-sounding bursts between silences; the defaults make 2.0 s."""
    return utterances(rate, count=count, burst=burst, gap=gap, edge=edge)


def pcm16(signal: Signal, channels: int = 1) -> bytes:
    """Signed 16-bit little-endian PCM, the same signal on every channel."""
    return encode(signal, 2, channels)


def split(data: bytes, rate: int, channels: int, chunk_seconds: float) -> list[bytes]:
    """Cut s16 PCM into chunks of ``chunk_seconds`` (the last one may be shorter)."""
    step = round(rate * chunk_seconds) * 2 * channels
    return [data[i : i + step] for i in range(0, len(data), step)]
