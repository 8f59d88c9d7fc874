"""The file client's input: a WAV file opened and checked, then read as Wyoming audio chunks.

What the user can fix (no such file, not a WAV file, no audio) is a :class:`UsageError` that
names the file, raised before any connection; a read that fails later, once the header was
fine, is a :class:`FileReadError`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

from ..wav import WavError, WavHeader, WireFormat, audio_chunks, read_header
from ..wire import MAX_PAYLOAD_BYTES
from .cli import UsageError
from .connection import reason

CHUNK_SECONDS: Final = 0.02
MAX_CHUNK_BYTES: Final = MAX_PAYLOAD_BYTES // 4
"""An audio-chunk's payload at most (64 KiB): 20 ms of a wide file (192 kHz, 32-bit,
24 channels) is 737 kB, and a server takes 256 KiB at most in one event (this one; others
may take less)."""


class FileReadError(Exception):
    """Reading the audio failed after the header was fine (a disk error, a vanished mount)."""


@dataclass(frozen=True, slots=True)
class Recording:
    """An opened WAV file, its header read, positioned at its first byte of audio."""

    path: str
    file: BinaryIO
    header: WavHeader
    audio_bytes: int | None
    """Bytes of audio to send, when known (a regular file); None reads to the end."""

    @property
    def wire(self) -> WireFormat:
        return self.header.format.wire

    @property
    def seconds(self) -> float | None:
        """Duration of the audio, when known."""
        if self.audio_bytes is None:
            return None
        fmt = self.header.format
        return self.audio_bytes // fmt.frame_bytes / fmt.rate

    def chunks(self) -> Iterator[bytes]:
        """The audio in the wire format, about `CHUNK_SECONDS` a piece, and never more than
        `MAX_CHUNK_BYTES`."""
        rate, width, channels = self.wire
        frames = min(round(rate * CHUNK_SECONDS), MAX_CHUNK_BYTES // (width * channels))
        return audio_chunks(self._read, self.header, max(1, frames), self.audio_bytes)

    def _read(self, size: int) -> bytes:
        try:
            return self.file.read(size)
        except OSError as err:
            raise FileReadError(f"{self.path}: cannot read: {reason(err)}") from err


def open_recording(path: str, warn: Callable[[str], None]) -> Recording:
    """Open and check a WAV file, or raise `UsageError` naming the file and the problem."""
    try:
        file = open(path, "rb")  # noqa: SIM115  (the Recording owns it; main closes it)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a WAV file") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot open: {reason(err)}") from None
    try:
        info = os.fstat(file.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{path}: is a directory, not a WAV file")
        # Only a regular file's size says how much audio there is; a FIFO runs to its end.
        file_size = info.st_size if stat.S_ISREG(info.st_mode) else None
        try:
            header = read_header(file.read)
        except WavError as err:
            raise UsageError(f"{path}: {err}") from None
        except OSError as err:
            raise UsageError(f"{path}: cannot read: {reason(err)}") from None
        frames = header.frames(file_size)
        if frames == 0:
            raise UsageError(f"{path}: no audio: the WAV file's data chunk is empty")
        if file_size is not None and header.truncated(file_size):
            assert frames is not None
            warn(
                f"{path}: warning: the file is cut short; sending the "
                f"{frames / header.format.rate:.1f} s of audio it holds"
            )
        return Recording(path, file, header, header.audio_bytes(file_size))
    except BaseException:
        file.close()
        raise


__all__ = ["CHUNK_SECONDS", "MAX_CHUNK_BYTES", "FileReadError", "Recording", "open_recording"]
