"""Audio for an engine: convert any Wyoming PCM to the engine's s16le mono, frame it, pace it.

Pure and synchronous (sans-I/O): the handler owns the sockets and the sleeping. For one
utterance the flow is::

    stream = StreamConverter(target_rate)          # the engine's rate: Bodhi 8000, iApp 16000
    framer = Framer(frame_bytes_for(chunk_ms, target_rate))
    pacer = Pacer(chunk_ms / 1000, lead_seconds)

    for chunk in audio_chunks:  # wyoming AudioChunk
        for frame in framer.push(stream.convert(chunk.audio, chunk.rate, chunk.width,
                                                chunk.channels)):
            await asyncio.sleep(pacer.delay())
            await send(frame)
            pacer.sent()
    # on audio-stop: framer.push(stream.flush()), then framer.flush() (the padded last frame)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import soxr

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
                f"unsupported audio rate {rate!r} Hz: expected a whole number of samples per "
                f"second from {MIN_RATE} to {MAX_RATE}, e.g. 16000"
            )
        if not _is_int(width) or width not in SUPPORTED_WIDTHS:
            raise UnsupportedAudioFormat(
                f"unsupported audio width {width!r} bytes: expected 1, 2, 3 or 4 "
                "(8-bit unsigned, 16-, 24- or 32-bit signed PCM)"
            )
        if not _is_int(channels) or not 1 <= channels <= MAX_CHANNELS:
            raise UnsupportedAudioFormat(
                f"unsupported audio channel count {channels!r}: expected 1 to {MAX_CHANNELS}"
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


class StreamConverter:
    """Follows the format of each chunk, restarting conversion when it changes mid-stream.

    On a change, the old format's resampler tail is kept and any partial sample of the old
    format is dropped (it can never be completed).
    """

    def __init__(self, target_rate: int) -> None:
        self.target_rate: Final = target_rate
        self._converter: AudioConverter | None = None

    @property
    def format(self) -> AudioFormat | None:
        """Format of the audio currently being converted, if any has arrived."""
        return None if self._converter is None else self._converter.format

    def convert(self, data: bytes, rate: int, width: int, channels: int) -> bytes:
        """Convert a chunk in the given format to s16le mono at the target rate."""
        old = self._converter
        if old is not None and old.format == (rate, width, channels):
            return old.convert(data)
        # Build (and so validate) the new converter before touching the old one, so a bad
        # chunk raises without disturbing the stream.
        new = self._converter = AudioConverter(rate, width, channels, target_rate=self.target_rate)
        tail = old.flush() if old is not None else b""
        out = new.convert(data)
        return tail + out if tail else out

    def flush(self) -> bytes:
        """End the stream (see `AudioConverter.flush`)."""
        return b"" if self._converter is None else self._converter.flush()


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
