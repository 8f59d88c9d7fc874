"""WAV files, sans-I/O: parse RIFF/WAVE (:mod:`.header`), then stream the audio in Wyoming's
PCM (:mod:`.samples`).

A core package, below both of its users: the file client (``transcribe``) reads WAV files;
the server drops a WAV header found at the start of an utterance's audio
(:class:`WavHeaderStripper`), because Home Assistant's speech-to-text HTTP API forwards an
uploaded file, header and all, as audio, and those 44 bytes are a loud click a recogniser
may take for a word.

Everything reads through a ``read(n) -> bytes`` callable the caller supplies (a file's
``read``, a socket's, ``io.BytesIO``'s), and never opens, seeks or sleeps itself. The header is
parsed chunk by chunk and the audio is then read a piece at a time, so a two-hour recording
needs no more memory than a twenty-millisecond one.

Why not the standard library's ``wave``: on Python 3.11 it refuses float and
WAVE_FORMAT_EXTENSIBLE files (3.12 added the latter), and it cannot say *why* a file is
unusable in words a user can act on. Why not ``soundfile``: it bundles libsndfile only in its
manylinux_2_28 x86_64/aarch64 wheels (about 1.3 MB, plus cffi); elsewhere (musl, armv7) it
needs a system library, and a client that only ever reads WAV does not need it.

What goes over Wyoming for each input (the ``width`` of ``audio-start``/``audio-chunk``):

====================================  =========================================================
WAV samples                           sent as
====================================  =========================================================
8-bit integer (unsigned in WAV)       width 1, bytes unchanged (Wyoming's width 1 is unsigned)
16-bit integer                        width 2, bytes unchanged
24-bit integer                        width 3, bytes unchanged
32-bit integer                        width 4, bytes unchanged
32- or 64-bit float                   width 2: ×32768, rounded, clipped to the int16 range
====================================  =========================================================

Integers go through untouched, so the server sees exactly the recording. Floats become 16-bit
rather than 32-bit: width 2 is the one format every Wyoming speech-to-text server accepts,
it halves the bytes on the wire, and speech recognisers (Bodhi included) work on 16-bit audio
anyway, so the extra precision would be thrown away by the server. Scaling by 32768 is the
exact inverse of the usual int16 → float (÷32768), so a float file made from 16-bit PCM comes
back bit for bit; anything beyond ±1.0 (legal in a float file) is clipped, never wrapped.

WAVE_FORMAT_EXTENSIBLE is read by its sub-format (PCM or IEEE float) and its container size;
its valid-bits field is informational, since samples are stored left-justified in the
container (20 valid bits in 24 are read, and sent, as 24-bit). Channel masks are ignored: the
server downmixes all channels.
"""

from .header import (
    SUPPORTED,
    WAVE_FORMAT_EXTENSIBLE,
    WAVE_FORMAT_IEEE_FLOAT,
    WAVE_FORMAT_PCM,
    Chunks,
    ChunkWalker,
    Read,
    WavError,
    WavFormat,
    WavHeader,
    WavTruncated,
    WireFormat,
    find_data,
    parse_format,
    read_header,
    sniff,
)
from .samples import Transcoder, WavHeaderStripper, audio_chunks, floats_to_s16

__all__ = [
    "SUPPORTED",
    "WAVE_FORMAT_EXTENSIBLE",
    "WAVE_FORMAT_IEEE_FLOAT",
    "WAVE_FORMAT_PCM",
    "ChunkWalker",
    "Chunks",
    "Read",
    "Transcoder",
    "WavError",
    "WavFormat",
    "WavHeader",
    "WavHeaderStripper",
    "WavTruncated",
    "WireFormat",
    "audio_chunks",
    "find_data",
    "floats_to_s16",
    "parse_format",
    "read_header",
    "sniff",
]
