"""The RIFF/WAVE header, sans-I/O: its chunks walked as bytes arrive, its fmt chunk parsed,
and a refusal that says, in words a user can act on, what a file is when it is not a WAV
file this package reads (see the package's docstring for what it reads)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

Read = Callable[[int], bytes]
"""Returns up to ``n`` bytes; fewer only at the end of the input (like a buffered file)."""

Encoding = Literal["int", "float"]

WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE

# A KSDATAFORMAT_SUBTYPE_* GUID as stored: the 16-bit format tag, then this fixed tail.
_SUBTYPE_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

# Formats people meet in the wild, named so the refusal says what the file actually is.
_FORMAT_NAMES: Final = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law (G.711)",
    0x0007: "μ-law (G.711)",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG audio",
    0x0055: "MP3",
    0x0161: "Windows Media Audio",
    0x00FF: "AAC",
    0x1610: "AAC",
    0x2000: "Dolby AC-3",
    0xF1AC: "FLAC",
}

# Other containers, recognised by their first bytes, so "not a WAV file" can say what it is.
_MAGIC: Final = (
    (b"fLaC", "FLAC"),
    (b"OggS", "Ogg (Vorbis or Opus)"),
    (b"ID3", "MP3"),
    (b"\xff\xfb", "MP3"),
    (b"\xff\xf3", "MP3"),
    (b"\xff\xf2", "MP3"),
    (b"\xff\xf1", "AAC (ADTS)"),
    (b"\xff\xf9", "AAC (ADTS)"),
    (b"FORM", "AIFF"),
    (b"caff", "Core Audio (CAF)"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (b"#!AMR", "AMR"),
    (b"RIFX", "a big-endian RIFX WAV"),
    (b"RF64", "an RF64 WAV (over 4 GB)"),
    (b"BW64", "a BW64 WAV (over 4 GB)"),
)

# A data size of 0 or 0xFFFFFFFF means "unknown": the writer was streaming and never came back
# to fill it in (arecord to a pipe, some recorders on crash). The audio then runs to the end.
_STREAMING_SIZES: Final = frozenset({0, 0xFFFFFFFF})

SUPPORTED: Final = "8/16/24/32-bit integer PCM or 32/64-bit float"

# Unknown chunks are skipped through a bounded buffer: a huge LIST or cover-art chunk must not
# be held in memory.
_SKIP_PIECE: Final = 64 * 1024
# A fmt chunk is 16-40 bytes; anything far larger is not a fmt chunk worth reading.
_MAX_FMT_SIZE: Final = 4096


class WavError(ValueError):
    """The input is not a WAV file this package can read; the message says why, for a user."""


class WavTruncated(WavError):
    """The input ends inside the header: with more bytes, it might still be a WAV file."""


class WireFormat(NamedTuple):
    """What Wyoming's ``audio-start`` says: samples per second, bytes per sample, channels."""

    rate: int
    width: int
    channels: int


@dataclass(frozen=True, slots=True)
class WavFormat:
    """The audio encoding a WAV's fmt chunk describes."""

    encoding: Encoding
    rate: int
    channels: int
    bits: int
    """Container size of one sample, in bits (8, 16, 24, 32 or 64)."""

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample for every channel."""
        return self.bits // 8 * self.channels

    @property
    def wire(self) -> WireFormat:
        """How this audio is sent over Wyoming (see the package's table)."""
        width = 2 if self.encoding == "float" else self.bits // 8
        return WireFormat(self.rate, width, self.channels)

    def describe(self) -> str:
        """E.g. ``16-bit PCM, 16000 Hz, mono``."""
        kind = "float" if self.encoding == "float" else "PCM"
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.bits}-bit {kind}, {self.rate} Hz, {layout}"


@dataclass(frozen=True, slots=True)
class WavHeader:
    """A parsed header; the ``read`` it came from is left at the first byte of audio."""

    format: WavFormat
    data_offset: int
    """Where the audio starts in the file."""
    data_size: int | None
    """Bytes of audio the data chunk declares; None when it runs to the end of the input."""

    def audio_bytes(self, file_size: int | None) -> int | None:
        """Bytes of audio actually there, given the file's size if it is known."""
        available = None if file_size is None else max(0, file_size - self.data_offset)
        if self.data_size is None:
            return available
        return self.data_size if available is None else min(self.data_size, available)

    def truncated(self, file_size: int) -> bool:
        """True when the data chunk declares more audio than the file holds."""
        return self.data_size is not None and self.data_size > file_size - self.data_offset

    def frames(self, file_size: int | None) -> int | None:
        """Whole frames of audio (a partial one at the end is dropped), if that is known."""
        size = self.audio_bytes(file_size)
        return None if size is None else size // self.format.frame_bytes


def sniff(prefix: bytes) -> str | None:
    """What kind of non-WAV file starts with ``prefix``, if it is a well-known one."""
    if prefix[4:8] == b"ftyp":
        return "MP4/M4A"
    return next((name for magic, name in _MAGIC if prefix.startswith(magic)), None)


def parse_format(body: bytes) -> WavFormat:
    """A fmt chunk's body → its `WavFormat`; `WavError` if it is one this package refuses."""
    if len(body) < 16:
        raise WavError(f"truncated WAV header: the fmt chunk has {len(body)} bytes, expected 16")
    tag, channels, rate, _byte_rate, _block_align, bits = struct.unpack_from("<HHIIHH", body)
    described = "WAVE_FORMAT_EXTENSIBLE" if tag == WAVE_FORMAT_EXTENSIBLE else None
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise WavError(
                f"truncated WAV header: a WAVE_FORMAT_EXTENSIBLE fmt chunk has 40 bytes, "
                f"this one {len(body)}"
            )
        sub_format = body[24:40]
        if sub_format[2:] != _SUBTYPE_GUID_TAIL:
            raise WavError(
                f"unsupported WAV encoding: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format "
                f"{_guid(sub_format)}; expected {SUPPORTED}"
            )
        (tag,) = struct.unpack_from("<H", sub_format)
        described = f"WAVE_FORMAT_EXTENSIBLE {_FORMAT_NAMES.get(tag, f'format {tag:#06x}')}"

    if tag == WAVE_FORMAT_PCM:
        encoding: Encoding = "int"
        allowed: tuple[int, ...] = (8, 16, 24, 32)
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        encoding = "float"
        allowed = (32, 64)
    else:
        name = described or _FORMAT_NAMES.get(tag, f"format tag {tag:#06x}")
        raise WavError(f"unsupported WAV encoding: {name}; expected {SUPPORTED}")
    if bits not in allowed:
        kind = "integer PCM" if encoding == "int" else "float"
        raise WavError(f"unsupported WAV encoding: {bits}-bit {kind}; expected {SUPPORTED}")
    if channels == 0:
        raise WavError("invalid WAV header: the fmt chunk says 0 channels")
    if rate == 0:
        raise WavError("invalid WAV header: the fmt chunk says 0 samples per second")
    # Block align is not checked: the sample size and channel count already define a frame,
    # and some writers get block align wrong.
    return WavFormat(encoding, rate, channels, bits)


def _guid(raw: bytes) -> str:
    a, b, c = struct.unpack_from("<IHH", raw)
    return f"{{{a:08X}-{b:04X}-{c:04X}-{raw[8:10].hex().upper()}-{raw[10:16].hex().upper()}}}"


@dataclass(frozen=True, slots=True)
class Chunks:
    """Where a RIFF/WAVE file's audio starts, and its fmt chunk, unchecked."""

    fmt: bytes | None
    """The fmt chunk's body (the last one, if there were several), or None if none came
    before the data."""
    data_offset: int
    data_size: int | None
    """None when the data chunk runs to the end of the input (a streamed file)."""


_PREAMBLE = 12
_CHUNK_HEADER = 8


class ChunkWalker:
    """RIFF/WAVE chunks walked as bytes arrive (sans-I/O): the preamble, each chunk's header,
    the fmt body kept, every other body skipped as it streams past (never held), up to the
    start of the data chunk's samples.

    :attr:`wanted` is how many bytes the next step needs (0 once the samples are reached);
    :meth:`feed` takes any number and returns what was past the header (the first samples).
    Raises `WavError` for what is not a RIFF/WAVE file, as soon as its first bytes say so.
    """

    def __init__(self, on_fmt: Callable[[bytes], object] | None = None) -> None:
        self._on_fmt = on_fmt
        self._step: Literal["preamble", "header", "fmt", "skip"] = "preamble"
        self._need = _PREAMBLE
        self._buffer = bytearray()
        self._skip = 0
        self._fmt_size = 0
        self._chunk_id = b""
        self.fmt: bytes | None = None
        self.offset = 0
        """Bytes of the file walked so far."""
        self.chunks: Chunks | None = None
        """Set once the data chunk is reached."""

    @property
    def in_preamble(self) -> bool:
        """Still unsure whether this is a WAV file at all."""
        return self._step == "preamble"

    @property
    def wanted(self) -> int:
        if self.chunks is not None:
            return 0
        if self._step == "skip":
            return self._skip
        return self._need - len(self._buffer)

    def feed(self, data: bytes) -> bytes:
        view = memoryview(data)
        position = 0
        while self.chunks is None and position < len(view):
            if self._step == "skip":
                taken = min(self._skip, len(view) - position)
                self._skip -= taken
                if not self._skip:
                    self._step, self._need = "header", _CHUNK_HEADER
            else:
                taken = min(self._need - len(self._buffer), len(view) - position)
                self._buffer += view[position : position + taken]
                if self._step == "preamble":
                    self._check_preamble(complete=len(self._buffer) == self._need)
            position += taken
            self.offset += taken
            if self._step != "skip" and len(self._buffer) == self._need:
                self._step_done()
        return bytes(view[position:]) if self.chunks is not None else b""

    def _check_preamble(self, complete: bool) -> None:
        """Refuse as soon as the first bytes cannot begin a WAV file."""
        riff = bytes(self._buffer)
        if riff[:4] == b"RIFF"[: len(riff)]:
            if not complete or riff[8:12] == b"WAVE":
                return
            kind = _printable(riff[8:12])
            raise WavError(f"not a WAV file: a RIFF file of type {kind}, not WAVE")
        sniffed = sniff(riff)
        if sniffed is not None:
            raise WavError(f"not a WAV file: this is {sniffed}; convert it to WAV first")
        raise WavError("not a WAV file: it does not start with RIFF…WAVE")

    def _step_done(self) -> None:
        if self._step == "preamble":
            self._step, self._need = "header", _CHUNK_HEADER
        elif self._step == "header":
            chunk_id, size = struct.unpack("<4sI", self._buffer)
            self._chunk_id = chunk_id
            if chunk_id == b"data":
                self.chunks = Chunks(
                    self.fmt, self.offset, None if size in _STREAMING_SIZES else size
                )
            elif chunk_id == b"fmt ":
                if size > _MAX_FMT_SIZE:
                    raise WavError(f"invalid WAV header: a fmt chunk of {size} bytes")
                self._step, self._need = "fmt", size + (size & 1)
                self._fmt_size = size
            else:
                # LIST, fact, PEAK, bext, JUNK, cue…: nothing the audio depends on. Chunks
                # are padded to an even size.
                self._step, self._skip = "skip", size + (size & 1)
                if not self._skip:
                    self._step, self._need = "header", _CHUNK_HEADER
        else:  # fmt
            self.fmt = bytes(self._buffer[: self._fmt_size])
            if self._on_fmt is not None:
                self._on_fmt(self.fmt)
            self._step, self._need = "header", _CHUNK_HEADER
        self._buffer.clear()

    def truncated(self) -> WavTruncated:
        """What to say when the input ended here."""
        if self._step == "preamble":
            if not self._buffer:
                return WavTruncated("the file is empty")
            return WavTruncated(
                f"truncated WAV header: the file has only {len(self._buffer)} bytes"
            )
        if self._step == "fmt":
            return WavTruncated("truncated WAV header: the file ends inside the fmt chunk")
        if self._step == "skip":
            return WavTruncated(
                f"truncated WAV header: the file ends inside a {_printable(self._chunk_id)} chunk"
            )
        if self.fmt is None:
            return WavTruncated("truncated WAV header: the file ends before the fmt chunk")
        return WavTruncated("no audio: the file ends before the data chunk")


def find_data(read: Read, on_fmt: Callable[[bytes], object] | None = None) -> Chunks:
    """Read up to the start of the audio, calling ``on_fmt`` with each fmt chunk's body (it
    may raise to refuse it). `WavTruncated` if the input ends first, `WavError` if it is not
    a RIFF/WAVE file. Reads no further than the first sample."""
    walker = ChunkWalker(on_fmt)
    while walker.chunks is None:
        piece = read(min(walker.wanted, _SKIP_PIECE))
        if not piece:
            raise walker.truncated()
        walker.feed(piece)
    return walker.chunks


def read_header(read: Read) -> WavHeader:
    """Parse up to the start of the audio; `WavError` says what is wrong with anything else."""
    formats: list[WavFormat] = []
    chunks = find_data(read, lambda body: formats.append(parse_format(body)))
    if not formats:
        raise WavError("invalid WAV header: the data chunk comes before the fmt chunk")
    return WavHeader(formats[-1], chunks.data_offset, chunks.data_size)


def _printable(chunk_id: bytes) -> str:
    text = chunk_id.decode("latin-1")
    return repr(text.strip()) if text.isprintable() else chunk_id.hex()
