"""Why ``RESAMPLER_QUALITY`` is "MQ": soxr's qualities compared for 8 kHz output.

``python -m benchmarks.resampler_quality`` prints, per quality: the converter's CPU per second
of audio, the float-domain alias rejection (6 kHz at 16 kHz, 5 kHz at 48 kHz, and the worst
tone from 4.4 kHz up at 16/22.05/44.1/48 kHz), the 3.6 kHz passband level, and the mean
audio the resampler holds back (ms) — the figures behind the comment on RESAMPLER_QUALITY in
wyoming_bodhi/pipeline/audio/convert.py. A side study, not part of ``python -m benchmarks``.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

# The module that reads it when a converter is made, not the package that re-exports it.
import wyoming_bodhi.pipeline.audio.convert as audio

from . import signals
from .conversion import CASES, Case, Contender, Ours, cpu_ms_per_second

QUALITIES = ("MQ", "HQ", "VHQ")
RATES = (16000, 22050, 44100, 48000)
SECONDS = 20.0
REPEATS = 5


def alias_db(quality: str, rate: int, freq: float) -> float:
    """Level of a ``freq`` tone after float resampling to 8 kHz, relative to 1 kHz (dB)."""

    def level(f: float) -> float:
        tone = signals.tone(rate, 2.0, f) * 32767
        out = soxr.resample(tone, rate, 8000, quality=quality)[400:-400]
        return float(np.sqrt(np.mean(np.square(out))))

    return 20 * math.log10(level(freq) / level(1000.0))


def mean_buffering_ms(quality: str, rate: int, chunks: int = 500) -> float:
    """Average audio held inside the streaming resampler, fed 20 ms chunks."""
    stream = soxr.ResampleStream(rate, 8000, 1, quality=quality)
    step, fed, produced, lags = rate // 50, 0, 0, []
    for _ in range(chunks):
        fed += step
        produced += len(stream.resample_chunk(np.zeros(step, np.float32)))
        lags.append((fed * 8000 / rate - produced) / 8)
    return float(np.mean(lags[50:]))


def cpu(quality: str, case: Case) -> float:
    data = signals.pcm16(signals.noise(case.rate, SECONDS), case.channels)
    chunks = signals.split(data, case.rate, case.channels, 0.02)
    original = audio.RESAMPLER_QUALITY
    audio.RESAMPLER_QUALITY = quality  # type: ignore[misc]
    try:
        return min(
            cpu_ms_per_second(Contender("ours", quality, Ours), case, chunks, SECONDS, REPEATS)
        )
    finally:
        audio.RESAMPLER_QUALITY = original  # type: ignore[misc]


def main() -> None:
    print("soxr quality → CPU ms per s of audio | alias dB | 3.6 kHz passband dB | buffering ms")
    for quality in QUALITIES:
        cpu_ms = " ".join(f"{case.key} {cpu(quality, case):.3f}" for case in CASES)
        alias = " ".join(
            f"{case.alias_hz / 1000:g}k@{case.rate // 1000}k "
            f"{alias_db(quality, case.rate, case.alias_hz):.0f}"
            for case in CASES
        )
        worst = max(
            alias_db(quality, rate, freq) for rate in RATES for freq in range(4400, rate // 2, 300)
        )
        passband = alias_db(quality, 16000, 3600)
        lag = "/".join(f"{mean_buffering_ms(quality, rate):.0f}" for rate in RATES)
        print(
            f"{quality:>3}: {cpu_ms} | {alias}, worst from 4.4 kHz {worst:.0f} | "
            f"{passband:.2f} | {lag} at 16/22.05/44.1/48 kHz"
        )


if __name__ == "__main__":
    main()
