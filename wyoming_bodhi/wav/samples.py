"""A WAV file's samples in Wyoming's PCM (see the package's table), and a WAV header dropped
from the start of a stream of audio."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from .header import Chunks, ChunkWalker, Read, WavError, WavFormat, WavHeader


class Transcoder:
    """One WAV format's audio → bytes in its Wyoming `WireFormat` (see the package's table)."""

    def __init__(self, fmt: WavFormat) -> None:
        self.format: Final = fmt
        self.wire: Final = fmt.wire

    def convert(self, raw: bytes) -> bytes:
        """Whole frames of WAV audio → the same frames for Wyoming."""
        if self.format.encoding == "int":
            return raw
        return floats_to_s16(raw, self.format.bits)


def floats_to_s16(raw: bytes, bits: int) -> bytes:
    """Little-endian float32 (``bits`` 32) or float64 samples → s16le, rounded and clipped."""
    # Imported here, not at the top: integer files (nearly all) and every refusal then skip
    # numpy's import, a good part of the client's start-up on a small board.
    import numpy as np

    samples = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float64)
    # A float file may hold NaN or infinities (a broken plug-in, say): silence and full
    # scale are the only readings a recogniser can use.
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    samples *= 32768.0
    np.rint(samples, out=samples)
    np.clip(samples, -32768.0, 32767.0, out=samples)
    return samples.astype("<i2").tobytes()


def audio_chunks(
    read: Read, header: WavHeader, frames_per_chunk: int, limit: int | None = None
) -> Iterator[bytes]:
    """The audio after `read_header`, in Wyoming's format, ``frames_per_chunk`` frames a piece.

    Reads at most ``limit`` bytes of audio (by default what the data chunk declares, or up to
    the end of the input) and drops a partial frame at the end.
    """
    if frames_per_chunk < 1:
        raise ValueError(f"frames_per_chunk must be positive, got {frames_per_chunk}")
    transcoder = Transcoder(header.format)
    frame_bytes = header.format.frame_bytes
    remaining = header.data_size if limit is None else limit
    piece = frames_per_chunk * frame_bytes
    pending = b""
    while remaining is None or remaining > 0:
        want = piece - len(pending)
        if remaining is not None:
            want = min(want, remaining)
        data = read(want)
        if not data:
            return
        if remaining is not None:
            remaining -= len(data)
        if pending:
            data = pending + data
        usable = len(data) - len(data) % frame_bytes
        pending = data[usable:]
        if usable:
            yield transcoder.convert(data[:usable] if pending else data)


class WavHeaderStripper:
    """Drops a WAV header from the start of a byte stream, and anything after the data chunk's
    declared end (trailing metadata); everything else passes through.

    Only the 12-byte preamble is ever held back, until it tells a WAV file from audio; the
    header's metadata is skipped as it streams past, however large.
    """

    def __init__(self) -> None:
        self._walker: ChunkWalker | None = ChunkWalker()
        self._held = bytearray()
        self._left: int | None = None
        """Bytes of samples still to come, when the data chunk declares its size."""
        self.header: Chunks | None = None
        """The header that was dropped, if there was one."""

    @property
    def decided(self) -> bool:
        """Whether the start of the stream has been told apart (header or not)."""
        return self._walker is None

    def feed(self, data: bytes) -> bytes:
        """The audio in ``data`` (possibly empty while a header is still being read)."""
        walker = self._walker
        if walker is None:
            return self._samples(data)
        preamble = walker.in_preamble
        try:
            rest = walker.feed(data)
        except WavError:
            # Not a WAV file after all: all of it is audio.
            self._walker = None
            held, self._held = bytes(self._held), bytearray()
            return held + data if preamble else data
        if walker.in_preamble:
            self._held += data
            return b""
        self._held.clear()
        if walker.chunks is None:
            return b""
        self.header = walker.chunks
        self._walker = None
        self._left = walker.chunks.data_size
        return self._samples(rest)

    def _samples(self, data: bytes) -> bytes:
        if self._left is None:
            return data
        taken = data[: self._left]
        self._left -= len(taken)
        return taken
