"""The engine's frames: converted audio cut into frames of exactly the engine's size, as
soon as the audio that completes each one has arrived (sans-I/O)."""

from __future__ import annotations

from typing import Final

from .convert import converter_for
from .formats import OUTPUT_WIDTH, AudioFormat, Converter, is_int


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
    if not is_int(chunk_ms) or chunk_ms <= 0:
        raise ValueError(
            f"unsupported chunk size {chunk_ms!r} ms: expected a positive whole number"
        )
    return chunk_ms * rate * OUTPUT_WIDTH // 1000


class Framer:
    """Cuts a byte stream into frames of exactly `frame_bytes`.

    Only the final frame (from `flush`) is ever padded, since engines bill by audio sent.
    """

    def __init__(self, frame_bytes: int) -> None:
        if not is_int(frame_bytes) or frame_bytes <= 0 or frame_bytes % OUTPUT_WIDTH:
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


__all__ = ["FrameStream", "Framer", "frame_bytes_for"]
