"""Audio for an engine: convert any Wyoming PCM to the engine's s16le mono, frame it, pace it.

Pure and synchronous (sans-I/O): the handler owns the sockets and the sleeping. For one
utterance the flow is::

    frames = FrameStream(target_rate, frame_bytes)  # the engine's rate: Bodhi 8000, iApp 16000
    pacer = Pacer(frame_ms / 1000, lead_seconds)

    for chunk in audio_chunks:  # wyoming AudioChunk
        for frame in frames.push(chunk.audio, chunk.rate, chunk.width, chunk.channels):
            await asyncio.sleep(pacer.delay())
            await send(frame)
            pacer.sent()
    # on audio-stop: frames.flush() (the converter's tail, then the zero-padded last frame)

Three conversions, chosen per input format:

* the engine's own format passes through untouched (Bodhi's 8 kHz; iApp's 16 kHz, which is
  what Home Assistant sends);
* 16 kHz s16 mono to 8 kHz (Home Assistant and satellites to Bodhi) runs a fixed half-band
  FIR, one frame at a time (:class:`HalfbandDecimator`): its look-ahead is 3 ms, where soxr
  holds output back in blocks of ~108 ms, which delayed the frame that completes an
  endpoint by up to a frame;
* everything else goes through soxr (:class:`AudioConverter`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from ..text import quoted

# What every engine takes: raw PCM, signed 16-bit little-endian, mono, at its own rate.
OUTPUT_WIDTH: Final = 2

SUPPORTED_WIDTHS: Final = (1, 2, 3, 4)

# "MQ" rather than soxr's default "HQ", measured from 16/22.05/44.1/48 kHz to 8 kHz: both are
# flat to 3.6 kHz and put every alias at least 123 dB down, far below the ~96 dB an int16
# output can even represent, so HQ's longer 20-bit filter buys nothing audible here. MQ buffers
# less (43 vs 85 ms mean at 48 kHz, equal elsewhere) and its CPU cost was the same on x86;
# a shorter filter can only be cheaper on a Raspberry Pi.
RESAMPLER_QUALITY: Final = "MQ"

_S16LE: Final = np.dtype("<i2")
# Wyoming (like WAV) treats width 1 as unsigned 8-bit, silence at 128. Width 3 (24-bit) has no
# numpy type: its bytes are read as u1 and assembled in `_decode_24_bit`.
_INPUT_DTYPES: Final[dict[int, np.dtype[np.integer[Any]]]] = {
    1: np.dtype("u1"),
    2: _S16LE,
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
}

Samples = npt.NDArray[np.float32]


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
        if not _is_int(rate) or not MIN_RATE <= rate <= MAX_RATE:
            raise UnsupportedAudioFormat(
                f"unsupported audio rate {quoted(rate)} Hz: expected a whole number of samples per "
                f"second from {MIN_RATE} to {MAX_RATE}, e.g. 16000"
            )
        if not _is_int(width) or width not in SUPPORTED_WIDTHS:
            raise UnsupportedAudioFormat(
                f"unsupported audio width {quoted(width)} bytes: expected 1, 2, 3 or 4 "
                "(8-bit unsigned, 16-, 24- or 32-bit signed PCM)"
            )
        if not _is_int(channels) or not 1 <= channels <= MAX_CHANNELS:
            raise UnsupportedAudioFormat(
                f"unsupported audio channel count {quoted(channels)}: expected 1 to {MAX_CHANNELS}"
            )


def _is_int(value: object) -> bool:
    # Formats arrive as untyped JSON; a bool or float would slip through int arithmetic.
    return isinstance(value, int) and not isinstance(value, bool)


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
        return _encode(samples)

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
        return _encode(tail)

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


def _encode(samples: Samples) -> bytes:
    """Float samples in int16 units → s16le bytes, rounded and clipped (never wrapped)."""
    if not samples.size:
        return b""
    # In place: `samples` is always a fresh array owned by the caller.
    np.rint(samples, out=samples)
    # minimum/maximum rather than np.clip: same result, less per-call overhead.
    np.minimum(samples, 32767.0, out=samples)
    np.maximum(samples, -32768.0, out=samples)
    return samples.astype(_S16LE).tobytes()


# -- 16 kHz s16 mono → 8 kHz: a fixed half-band FIR, computed a frame at a time ----------------

HALFBAND_INPUT: Final = AudioFormat(16_000, 2, 1)
HALFBAND_OUTPUT_RATE: Final = 8_000
HALFBAND_TAPS: Final = 99
"""A Kaiser half-band of 99 taps (51 of them non-zero) designed for 70 dB: flat within
±0.003 dB to 3.6 kHz, and everything from 4.4 kHz up (what folds onto 0-3.6 kHz at 8 kHz)
≥ 70 dB down (the issue asks ≥ 60; the margin covers float32 taps and int16 rounding).
Between 4.0 and 4.4 kHz it lets some through (-6 dB at 4 kHz), which folds onto 3.6-4.0 kHz,
above the band Bodhi's 8 kHz telephone models use. Measured with soxr MQ and three longer
designs in the research for issue 14: a filter that also stops 4.0-4.4 kHz needs 131-195
taps, costs 4-17% more CPU and changes no latency figure (any look-ahead under one 10 ms
chunk costs the same one chunk)."""
HALFBAND_ATTENUATION_DB: Final = 70.0
HALFBAND_LOOKAHEAD: Final = (HALFBAND_TAPS - 1) // 2
"""Input samples after an output's instant that it depends on: 49, i.e. 3.06 ms."""


def halfband_taps(
    num_taps: int = HALFBAND_TAPS, attenuation_db: float = HALFBAND_ATTENUATION_DB
) -> npt.NDArray[np.float64]:
    """A Kaiser-windowed half-band low-pass (cut-off at a quarter of the input rate).

    numpy only (``np.sinc`` × ``np.kaiser``), computed at import rather than kept as a table.
    A half-band has every tap at an even, non-zero distance from the centre exactly zero and
    the centre at one half; those are set exactly, and the gain at DC is one.
    """
    if num_taps % 4 != 3:
        raise ValueError(f"a half-band filter has 4k + 3 taps, not {num_taps}")
    # Kaiser's formula for the window's beta at this stop-band attenuation (> 50 dB).
    beta = 0.1102 * (attenuation_db - 8.7)
    offsets = np.arange(num_taps) - (num_taps - 1) // 2
    taps = 0.5 * np.sinc(0.5 * offsets) * np.kaiser(num_taps, beta)
    taps[(offsets % 2 == 0) & (offsets != 0)] = 0.0
    taps[(num_taps - 1) // 2] = 0.5
    result: npt.NDArray[np.float64] = taps / taps.sum()
    return result


@functools.cache
def _toeplitz(row: int) -> npt.NDArray[np.float32]:
    """The taps laid out so that one matrix product computes ``row`` outputs from a window of
    ``2 * row + taps - 2`` inputs: column j holds the (reversed) taps at rows 2j … 2j + taps - 1."""
    taps = halfband_taps()[::-1].astype(np.float32)
    matrix = np.zeros((2 * row + HALFBAND_TAPS - 2, row), np.float32)
    for j in range(row):
        matrix[2 * j : 2 * j + HALFBAND_TAPS, j] = taps
    matrix.setflags(write=False)
    return matrix


def _row_length(block: int) -> int:
    """Outputs per row of the frame's matrix product: 40 where it divides the frame (every
    frame of a whole number of 5 ms), else the largest divisor up to 40 (8 always divides a
    frame of whole milliseconds at 8 kHz). Longer rows waste work on the zero taps, shorter
    ones make more rows; 40 was the cheapest measured."""
    return next(row for row in range(40, 0, -1) if block % row == 0)


class HalfbandDecimator:
    """16 kHz s16le mono → 8 kHz s16le mono, released in whole blocks (the engine's frames).

    Output sample m is ``sum(h[k] * x[2m + 49 - k])``: it sits at input instant 2m exactly (no
    shift, like soxr's aligned output) and needs input up to 2m + 49. Input is only appended
    until the next block can be completed, look-ahead included; then each block is one
    float32 matrix product of a fixed shape (a strided copy of its input window times
    :func:`_toeplitz`), rounded and clipped as every other conversion is. So:

    * a frame is computed the moment it can be, in one go, and nothing is computed twice or
      left half done: with 10 ms chunks a 50 ms frame leaves with the chunk after its last
      sample (the 3 ms look-ahead), instead of soxr's 10-118 ms later;
    * every output is summed in the same order whatever the chunking, so the output is the
      same, bit for bit, for 10 ms chunks, odd-sized ones or one big chunk;
    * about 20 products a second instead of a resampler call per 10 ms chunk, whose fixed
      cost per call was most of soxr's CPU at Home Assistant's chunking.

    ``block`` is the engine's frame in output samples. ``phase``: outputs already waiting in
    the framer's current frame when this stream starts (after a format change mid-stream),
    so that this converter's blocks end where frames end.
    """

    format: Final = HALFBAND_INPUT

    def __init__(self, block: int, phase: int = 0) -> None:
        if block <= 0 or not 0 <= phase < block:
            raise ValueError(f"invalid block {block!r} / phase {phase!r}")
        row = _row_length(block)
        self._block = block
        self._row = row
        self._rows = block // row
        self._toeplitz = _toeplitz(row)
        self._cols = self._toeplitz.shape[0]
        # Input samples one block reads from its window's start; the next window starts
        # 2 * block samples later.
        self._reads = 2 * (block - 1) + HALFBAND_TAPS
        self._need = 2 * self._reads  # bytes
        self._phase = phase
        self._start()

    def _start(self) -> None:
        # Zeros before the stream, so that output 0 sits at input 0, plus two per output of
        # the phase: the first block then starts `phase` outputs early, and those are dropped.
        self._prefill = HALFBAND_LOOKAHEAD + 2 * self._phase
        self._pending = bytearray(2 * self._prefill)
        self._skip = self._phase
        self._made = 0  # outputs computed, the dropped ones included

    def convert(self, data: bytes) -> bytes:
        """Take the next chunk; returns every whole block it completes (usually nothing)."""
        pending = self._pending
        pending += data
        if len(pending) < self._need:
            # The common case: one append and a comparison per 10 ms chunk.
            return b""
        count = (len(pending) // 2 - self._reads) // (2 * self._block) + 1
        return _encode(self._blocks(count))

    def _blocks(self, count: int) -> Samples:
        """Compute the next ``count`` blocks from the pending input; drop what they used up."""
        block = self._block
        # (count, rows, cols) windows straight over the pending int16 input, as a strided
        # view (overlapping rows: each window shares its look-ahead with the next), then one
        # conversion to a contiguous float32 array: decode and copy in one step, and BLAS
        # then runs the same product for every block (a strided operand takes another path).
        windows = np.ndarray(
            (count, self._rows, self._cols),
            _S16LE,
            self._pending,
            0,
            (4 * block, 4 * self._row, 2),
        ).astype(np.float32, order="C")
        y: Samples = (windows @ self._toeplitz).reshape(-1)
        del self._pending[: 4 * block * count]
        self._made += block * count
        if self._skip:
            y = y[self._skip :]
            self._skip = 0
        return y

    def flush(self) -> bytes:
        """End the stream: the outputs still owed (⌈inputs / 2⌉ in all), unpadded; a trailing
        partial sample is dropped. Zeros stand in for the look-ahead past the end, as soxr's
        flush does. The decimator is then ready for a new stream, at phase 0."""
        pending = self._pending
        del pending[len(pending) & ~1 :]
        fed = 2 * self._made + len(pending) // 2 - self._prefill
        skip = self._skip
        owed = (fed + 1) // 2 + self._phase - self._made  # outputs to compute, skip included
        out = b""
        if fed > 0 and owed > 0:
            count = -(-owed // self._block)
            needed = 2 * (2 * self._block * (count - 1) + self._reads)
            pending += bytes(max(0, needed - len(pending)))
            out = _encode(self._blocks(count)[: owed - skip])
        self._phase = 0
        self._start()
        return out


class Converter(Protocol):
    """One input format's conversion: bytes in, the engine's s16le mono bytes out."""

    @property
    def format(self) -> AudioFormat: ...

    def convert(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def converter_for(
    fmt: AudioFormat, target_rate: int, frame_samples: int, phase: int = 0
) -> Converter:
    """The conversion for ``fmt``: the half-band FIR for 16 kHz s16 mono to 8 kHz, else soxr
    (or a pass-through, for the engine's own format). Validates ``fmt``."""
    if fmt == HALFBAND_INPUT and target_rate == HALFBAND_OUTPUT_RATE:
        return HalfbandDecimator(frame_samples, phase)
    return AudioConverter(fmt.rate, fmt.width, fmt.channels, target_rate=target_rate)


class FrameStream:
    """Wyoming audio chunks in, in any PCM format → the engine's frames out (sans-I/O).

    Each chunk is converted to s16le mono at ``target_rate`` and cut into frames of exactly
    ``frame_bytes``; a frame is returned as soon as the audio that completes it has arrived.
    The format may change mid-stream: the old format's tail is kept, any partial sample of
    it dropped (it can never be completed). Only the last frame, from :meth:`flush`, is
    padded.
    """

    def __init__(self, target_rate: int, frame_bytes: int) -> None:
        self.target_rate: Final = target_rate
        self._framer = Framer(frame_bytes)
        self._converter: Converter | None = None

    @property
    def frame_bytes(self) -> int:
        return self._framer.frame_bytes

    @property
    def format(self) -> AudioFormat | None:
        """Format of the audio currently being converted, if any has arrived."""
        return None if self._converter is None else self._converter.format

    def push(self, data: bytes, rate: int, width: int, channels: int) -> list[bytes]:
        """Convert a chunk in the given format; return every frame it completes.

        Raises ``UnsupportedAudioFormat`` for a format that cannot be converted, leaving the
        stream as it was.
        """
        converter = self._converter
        if converter is None or converter.format != (rate, width, channels):
            return self._push_new_format(data, AudioFormat(rate, width, channels))
        # The hot path, once per chunk (100 a second from Home Assistant): keep it short.
        out = converter.convert(data)
        return self._framer.push(out) if out else []

    def _push_new_format(self, data: bytes, fmt: AudioFormat) -> list[bytes]:
        # Validate before touching the old converter, so a bad chunk leaves the stream intact.
        fmt.validate()
        old = self._converter
        framer = self._framer
        frames = framer.push(old.flush()) if old is not None else []
        # The new converter's output continues the current frame.
        phase = framer.buffered // OUTPUT_WIDTH
        new = self._converter = converter_for(
            fmt, self.target_rate, framer.frame_bytes // OUTPUT_WIDTH, phase
        )
        return frames + framer.push(new.convert(data))

    def flush(self) -> list[bytes]:
        """End the stream: every frame left, the last one zero-padded. Ready for a new stream."""
        converter = self._converter
        frames = self._framer.push(converter.flush()) if converter is not None else []
        last = self._framer.flush()
        if last is not None:
            frames.append(last)
        return frames


def frame_bytes_for(chunk_ms: int, rate: int) -> int:
    """Bytes in a frame of `chunk_ms` milliseconds of s16 mono at `rate` (8 kHz: 16 per ms)."""
    if not _is_int(chunk_ms) or chunk_ms <= 0:
        raise ValueError(
            f"unsupported chunk size {chunk_ms!r} ms: expected a positive whole number"
        )
    return chunk_ms * rate * OUTPUT_WIDTH // 1000


class Framer:
    """Cuts a byte stream into frames of exactly `frame_bytes`.

    Only the final frame (from `flush`) is ever padded, since engines bill by audio sent.
    """

    def __init__(self, frame_bytes: int) -> None:
        if not _is_int(frame_bytes) or frame_bytes <= 0 or frame_bytes % OUTPUT_WIDTH:
            raise ValueError(
                f"invalid frame size {frame_bytes!r} bytes: expected a positive multiple of "
                f"{OUTPUT_WIDTH} (whole 16-bit samples)"
            )
        self.frame_bytes: Final = frame_bytes
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for a full frame."""
        return len(self._buffer)

    def push(self, data: bytes) -> list[bytes]:
        """Add audio; return every frame it completes."""
        size = self.frame_bytes
        buffer = self._buffer
        if len(buffer) + len(data) < size:
            # Most pushes (a 20 ms chunk into a 100 ms frame) complete nothing.
            buffer += data
            return []
        if len(data) == size and not buffer and type(data) is bytes:
            # Exactly one frame, as the half-band decimator makes them: immutable, so it
            # is the frame itself, not a copy.
            return [data]
        if buffer:
            buffer += data
            end = len(buffer) - len(buffer) % size
            with memoryview(buffer) as view:
                frames = [view[i : i + size].tobytes() for i in range(0, end, size)]
            # One bulk delete per push keeps this linear however small the chunks are.
            del buffer[:end]
            return frames
        # Nothing buffered: cut frames straight from `data`, buffering only its tail.
        end = len(data) - len(data) % size
        with memoryview(data) as view:
            frames = [view[i : i + size].tobytes() for i in range(0, end, size)]
            buffer += view[end:]
        return frames

    def flush(self) -> bytes | None:
        """Return the buffered remainder zero-padded to a full frame, or None if there is none."""
        buffer = self._buffer
        if not buffer:
            return None
        buffer.extend(bytes(self.frame_bytes - len(buffer)))
        frame = bytes(buffer)
        buffer.clear()
        return frame

    def reset(self) -> None:
        """Drop any buffered audio (e.g. when an utterance is abandoned)."""
        self._buffer.clear()


# Far below any timer's resolution (asyncio's is about 1 ms).
_NEGLIGIBLE_WAIT: Final = 1e-6


class Pacer:
    """Keeps a frame stream at most `lead_seconds` ahead of real time (sans-I/O).

    The schedule starts when the first frame is offered (t0); frame i (0-based) may be sent
    from ``t0 + i * frame_seconds - lead_seconds`` on. Because the schedule is absolute:

    * live audio, offered as it is captured, is never delayed;
    * a burst (wake-word pre-roll, a whole file) goes out `lead_seconds` ahead, then at
      exactly real time, with no drift however long the stream;
    * a source that stalls and resumes is only held to the schedule, never delayed further:
      its backlog may go out at once, as long as it stays within the lead.

    Call `delay()` before sending each frame, wait that long, send, then call `sent()`.
    """

    def __init__(
        self,
        frame_seconds: float,
        lead_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not frame_seconds > 0:
            raise ValueError(f"frame duration must be positive, got {frame_seconds!r} s")
        if not lead_seconds >= 0:
            raise ValueError(f"lead must be zero or positive, got {lead_seconds!r} s")
        self.frame_seconds: Final = frame_seconds
        self.lead_seconds: Final = lead_seconds
        self._clock = clock
        self._t0: float | None = None
        self._frames_sent = 0

    @property
    def frames_sent(self) -> int:
        """Frames sent since the start (or the last `reset`)."""
        return self._frames_sent

    def start(self, at: float | None = None) -> None:
        """Start the schedule when the first frame is queued, if it has not started yet.

        A sender that first has to wait for a connection should start the schedule when
        the audio arrives, not when it can first send: then the backlog of the wait counts
        against the lead instead of delaying the whole stream (with lead 0, forever).
        """
        if self._t0 is None:
            self._t0 = self._clock() if at is None else at

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next frame may be sent; 0.0 when it may go now."""
        if now is None:
            now = self._clock()
        if self._t0 is None:
            self._t0 = now
        # Multiply rather than accumulate, so long streams do not drift.
        wait = self._t0 + self._frames_sent * self.frame_seconds - self.lead_seconds - now
        # Float rounding leaves on-time frames nanoseconds "early"; that is not a wait.
        return wait if wait > _NEGLIGIBLE_WAIT else 0.0

    def sent(self) -> None:
        """Record that the next frame has been sent."""
        if self._t0 is None:
            # Sent without asking first: the schedule starts now.
            self._t0 = self._clock()
        self._frames_sent += 1

    def reset(self) -> None:
        """Start a new schedule (new utterance) at the next offered frame."""
        self._t0 = None
        self._frames_sent = 0
