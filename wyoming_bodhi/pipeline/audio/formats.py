"""The audio formats a client may send (Wyoming's PCM: rate, width, channels), checked, and
the one every engine takes: signed 16-bit little-endian mono (``OUTPUT_WIDTH``)."""

from __future__ import annotations

from typing import Final, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from ...text import quoted

# What every engine takes: raw PCM, signed 16-bit little-endian, mono, at its own rate.
OUTPUT_WIDTH: Final = 2

SUPPORTED_WIDTHS: Final = (1, 2, 3, 4)

S16LE: Final = np.dtype("<i2")

Samples = npt.NDArray[np.float32]
"""Mono samples in int16 units (±32768), as float32, between decoding and encoding."""


class UnsupportedAudioFormat(ValueError):
    """The client sent audio in a format that cannot be converted."""


# Telephone audio to studio audio. Below 8 kHz nothing intelligible is left, and a tiny rate
# makes every payload byte hours of audio, which the resampler would have to produce at once.
MIN_RATE: Final = 8_000
MAX_RATE: Final = 192_000
MAX_CHANNELS: Final = 64


class AudioFormat(NamedTuple):
    """PCM format as Wyoming describes it: samples per second, bytes per sample, channels."""

    rate: int
    width: int
    channels: int

    def validate(self) -> None:
        """Raise `UnsupportedAudioFormat` with an actionable message if this cannot be converted."""
        rate, width, channels = self
        if not is_int(rate) or not MIN_RATE <= rate <= MAX_RATE:
            raise UnsupportedAudioFormat(
                f"unsupported audio rate {quoted(rate)} Hz: expected a whole number of samples per "
                f"second from {MIN_RATE} to {MAX_RATE}, e.g. 16000"
            )
        if not is_int(width) or width not in SUPPORTED_WIDTHS:
            raise UnsupportedAudioFormat(
                f"unsupported audio width {quoted(width)} bytes: expected 1, 2, 3 or 4 "
                "(8-bit unsigned, 16-, 24- or 32-bit signed PCM)"
            )
        if not is_int(channels) or not 1 <= channels <= MAX_CHANNELS:
            raise UnsupportedAudioFormat(
                f"unsupported audio channel count {quoted(channels)}: expected 1 to {MAX_CHANNELS}"
            )


def is_int(value: object) -> bool:
    # Formats arrive as untyped JSON; a bool or float would slip through int arithmetic.
    return isinstance(value, int) and not isinstance(value, bool)


def encode(samples: Samples) -> bytes:
    """Float samples in int16 units → s16le bytes, rounded and clipped (never wrapped)."""
    if not samples.size:
        return b""
    # In place: `samples` is always a fresh array owned by the caller.
    np.rint(samples, out=samples)
    # minimum/maximum rather than np.clip: same result, less per-call overhead.
    np.minimum(samples, 32767.0, out=samples)
    np.maximum(samples, -32768.0, out=samples)
    return samples.astype(S16LE).tobytes()


class Converter(Protocol):
    """One input format's conversion: bytes in, the engine's s16le mono bytes out."""

    @property
    def format(self) -> AudioFormat: ...

    def convert(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


__all__ = [
    "MAX_CHANNELS",
    "MAX_RATE",
    "MIN_RATE",
    "OUTPUT_WIDTH",
    "S16LE",
    "SUPPORTED_WIDTHS",
    "AudioFormat",
    "Converter",
    "Samples",
    "UnsupportedAudioFormat",
    "encode",
    "is_int",
]
