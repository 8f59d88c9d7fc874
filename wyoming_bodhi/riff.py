"""RIFF/WAVE headers, sans-I/O: where the samples start, and what format the header claims.

Home Assistant's speech-to-text HTTP API forwards an uploaded WAV file as it is, its header
included, as the first audio bytes of the request. Sent on as audio, those 44 bytes are a loud
click that a recogniser may take for a word. :class:`WavHeaderStripper` finds such a header at
the start of an utterance's audio and drops it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

MAX_HEADER_BYTES: Final = 64 * 1024
"""A header with more metadata than this is not looked through: its bytes pass as audio."""

_RIFF_ID: Final = b"RIFF"
_WAVE_ID: Final = b"WAVE"
_PREAMBLE: Final = 12
"""``RIFF``, the file size, ``WAVE``."""
_CHUNK_HEADER: Final = struct.Struct("<4sI")
_FMT: Final = struct.Struct("<HHIIHH")
"""format tag, channels, sample rate, byte rate, block align, bits per sample."""
WAVE_FORMAT_PCM: Final = 1
WAVE_FORMAT_IEEE_FLOAT: Final = 3
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE


@dataclass(frozen=True, slots=True)
class WavHeader:
    data_offset: int
    """Bytes from the start of the file to the first sample."""
    data_size: int
    """The data chunk's declared size (0 or 0xFFFFFFFF when the writer streamed the file)."""
    format_tag: int | None = None
    rate: int | None = None
    channels: int | None = None
    bits: int | None = None


class NotWav(ValueError):
    """The bytes do not start with a RIFF/WAVE header."""


def parse_wav_header(head: bytes | bytearray) -> WavHeader | None:
    """The header at the start of ``head``, or None when more bytes are needed to tell.

    Raises :class:`NotWav` when ``head`` does not start like a WAV file, or its chunks run past
    :data:`MAX_HEADER_BYTES` without reaching the samples.
    """
    if not _RIFF_ID.startswith(bytes(head[:4])) or (
        len(head) >= _PREAMBLE and head[8:12] != _WAVE_ID
    ):
        raise NotWav("no RIFF/WAVE preamble")
    offset = _PREAMBLE
    fmt: tuple[int, int, int, int, int, int] | None = None
    while offset + _CHUNK_HEADER.size <= len(head):
        chunk_id, size = _CHUNK_HEADER.unpack_from(head, offset)
        body = offset + _CHUNK_HEADER.size
        if chunk_id == b"data":
            tag, channels, rate, _byte_rate, _align, bits = fmt or (None,) * 6
            return WavHeader(body, size, tag, rate, channels, bits)
        if chunk_id == b"fmt " and size >= _FMT.size:
            if body + _FMT.size > len(head):
                break
            fmt = _FMT.unpack_from(head, body)
        # Chunks are padded to an even length.
        offset = body + size + (size & 1)
        if offset > MAX_HEADER_BYTES:
            raise NotWav(f"no data chunk in the first {MAX_HEADER_BYTES} bytes")
    if len(head) >= MAX_HEADER_BYTES:
        raise NotWav(f"no data chunk in the first {MAX_HEADER_BYTES} bytes")
    return None


class WavHeaderStripper:
    """Drops a WAV header from the start of a byte stream; everything else passes through.

    Bytes that might still be the start of a header are held back until they can be told
    apart (at most :data:`MAX_HEADER_BYTES`; in practice the 12-byte preamble decides). If
    the stream ends first, they were an unfinished header, not audio, and are dropped.
    """

    def __init__(self) -> None:
        self._head: bytearray | None = bytearray()
        self.header: WavHeader | None = None
        """The header that was dropped, if there was one."""

    def feed(self, data: bytes) -> bytes:
        """The audio in ``data`` (possibly empty while a header is still being read)."""
        head = self._head
        if head is None:
            return data
        head += data
        try:
            header = parse_wav_header(head)
        except NotWav:
            self._head = None
            return bytes(head)
        if header is None:
            return b""
        self.header = header
        self._head = None
        return bytes(head[header.data_offset :])
