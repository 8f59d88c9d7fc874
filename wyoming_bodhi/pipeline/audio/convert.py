"""Any Wyoming PCM → the engine's s16le mono at its rate, a chunk at a time: soxr for any
format (:class:`AudioConverter`), the half-band FIR for 16 kHz s16 mono to 8 kHz
(:mod:`.halfband`), and a pass-through for the engine's own format; :func:`converter_for`
chooses."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import soxr

from .formats import OUTPUT_WIDTH, S16LE, AudioFormat, Converter, Samples, encode
from .halfband import HALFBAND_INPUT, HALFBAND_OUTPUT_RATE, HalfbandDecimator

# "MQ" rather than soxr's default "HQ", measured from 16/22.05/44.1/48 kHz to 8 kHz: both are
# flat to 3.6 kHz and put every alias at least 123 dB down, far below the ~96 dB an int16
# output can even represent, so HQ's longer 20-bit filter buys nothing audible here. MQ buffers
# less (43 vs 85 ms mean at 48 kHz, equal elsewhere) and its CPU cost was the same on x86;
# a shorter filter can only be cheaper on a Raspberry Pi.
RESAMPLER_QUALITY: Final = "MQ"

# Wyoming (like WAV) treats width 1 as unsigned 8-bit, silence at 128. Width 3 (24-bit) has no
# numpy type: its bytes are read as u1 and assembled in `_decode_24_bit`.
_INPUT_DTYPES: Final[dict[int, np.dtype[np.integer[Any]]]] = {
    1: np.dtype("u1"),
    2: S16LE,
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
}


class AudioConverter:
    """Streams PCM of one fixed format into s16le mono bytes at ``target_rate``.

    Chunks may have any length: a partial sample or multi-channel frame is carried over to the
    next call. Resampling is stateful across chunks, so chunk boundaries are inaudible and the
    output does not depend on how the input was split.
    """

    def __init__(self, rate: int, width: int, channels: int, *, target_rate: int) -> None:
        fmt = AudioFormat(rate, width, channels)
        fmt.validate()
        self.format: Final = fmt
        self._frame_size = width * channels
        self._dtype = _INPUT_DTYPES[width]
        self._passthrough = fmt == AudioFormat(target_rate, OUTPUT_WIDTH, 1)
        # Downmix and rescale to int16 units in one affine step: x * scale - offset. Keeping
        # int16 units (not ±1.0) through the resampler saves a multiply on the common s16 path.
        self._scale = {1: 256.0, 2: 1.0, 3: 1.0 / 256.0, 4: 1.0 / 65536.0}[width] / channels
        self._offset = 128.0 * 256.0 if width == 1 else 0.0
        self._pending = b""
        self._resampler: soxr.ResampleStream | None = None
        if rate != target_rate:
            # Downmix happens first, so the resampler only ever sees one channel.
            self._resampler = soxr.ResampleStream(
                rate, target_rate, 1, dtype="float32", quality=RESAMPLER_QUALITY
            )

    def convert(self, data: bytes) -> bytes:
        """Convert the next chunk; returns whatever output is ready (possibly empty)."""
        if self._pending:
            data = self._pending + data
            self._pending = b""
        usable = len(data) - len(data) % self._frame_size
        if usable < len(data):
            self._pending = bytes(data[usable:])
        if self._passthrough:
            return data if usable == len(data) else data[:usable]
        if not usable:
            return b""
        samples = self._decode(data, usable)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return encode(samples)

    def flush(self) -> bytes:
        """End the stream: return the resampler's tail and drop any partial sample.

        The converter is then ready for a new, unrelated stream of the same format.
        """
        self._pending = b""
        if self._resampler is None:
            return b""
        tail: Samples = self._resampler.resample_chunk(np.empty(0, np.float32), last=True)
        # soxr refuses input after last=True until cleared.
        self._resampler.clear()
        return encode(tail)

    def _decode(self, data: bytes, usable: int) -> Samples:
        """Whole frames of `data` → mono float32 samples in int16 units."""
        raw = np.frombuffer(data, self._dtype, count=usable // self._dtype.itemsize)
        if self.format.width == 3:
            raw = _decode_24_bit(raw)
        channels = self.format.channels
        samples: Samples = (raw if channels == 1 else raw[::channels]).astype(np.float32)
        # One strided add per channel: several times faster than reshape(-1, n).sum(axis=1),
        # which numpy runs as many tiny reductions.
        for channel in range(1, channels):
            samples += raw[channel::channels]
        if self._scale != 1.0:
            samples *= self._scale
        if self._offset:
            samples -= self._offset
        return samples


def _decode_24_bit(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """Little-endian 24-bit samples, as bytes, → int32 with the same values."""
    triples = raw.reshape(-1, 3).astype(np.int32)
    # The top byte carries the sign: shifting it into bits 24-31 and back extends it.
    return ((triples[:, 0] << 8 | triples[:, 1] << 16 | triples[:, 2] << 24) >> 8).astype(np.int32)


def converter_for(
    fmt: AudioFormat, target_rate: int, frame_samples: int, phase: int = 0
) -> Converter:
    """The conversion for ``fmt``: the half-band FIR for 16 kHz s16 mono to 8 kHz, else soxr
    (or a pass-through, for the engine's own format). Validates ``fmt``."""
    if fmt == HALFBAND_INPUT and target_rate == HALFBAND_OUTPUT_RATE:
        return HalfbandDecimator(frame_samples, phase)
    return AudioConverter(fmt.rate, fmt.width, fmt.channels, target_rate=target_rate)


__all__ = ["RESAMPLER_QUALITY", "AudioConverter", "converter_for"]
