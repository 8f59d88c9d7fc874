"""The file client, ``wyoming-bodhi-transcribe``: WAV reading, its messages, and the sample.

WAV files are built here byte by byte (the stdlib ``wave`` module cannot write float or
WAVE_FORMAT_EXTENSIBLE), sent by the client, and checked where they land: exactly on the
Wyoming wire (a capturing stand-in server) and, after the bridge's conversion, in the
simulator (within quantisation noise of the 16-bit reference).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcript
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event

from wyoming_bodhi import __version__
from wyoming_bodhi.clients.recording import open_recording
from wyoming_bodhi.clients.transcribe import main as transcribe_main
from wyoming_bodhi.clients.transcribe import parse_uri, transcribe
from wyoming_bodhi.pipeline.audio import AudioConverter
from wyoming_bodhi.wav import (
    WAVE_FORMAT_EXTENSIBLE,
    WAVE_FORMAT_IEEE_FLOAT,
    WAVE_FORMAT_PCM,
    Transcoder,
    WavFormat,
    audio_chunks,
    read_header,
)

from .harness import HINDI, clean_env, free_port, process, running_bridge, running_simulator
from .signals import decode_s16, encode, level_db, utterances

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "batti-jalao.wav"
CLIENT = [sys.executable, "-m", "wyoming_bodhi.transcribe"]
PROG = "wyoming-bodhi-transcribe"
# "Under a second" is for a person at an idle machine; this only catches a hang or a 60 s wait.
QUICK = 5.0
RATE = 16000

# -- WAV files, byte by byte --------------------------------------------------------------

GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def chunk(chunk_id: bytes, payload: bytes, size: int | None = None) -> bytes:
    declared = len(payload) if size is None else size
    return chunk_id + struct.pack("<I", declared) + payload + b"\0" * (len(payload) % 2)


def fmt(
    tag: int, channels: int, bits: int, rate: int = RATE, *, sub: int | None = None,
    valid_bits: int | None = None,
) -> bytes:  # fmt: skip
    block = channels * ((bits + 7) // 8)
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if sub is not None:
        body += struct.pack("<HHI", 22, valid_bits or bits, 0) + struct.pack("<H", sub)
        body += GUID_TAIL
    return chunk(b"fmt ", body)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav(fmt_chunk: bytes, data: bytes, *extra: bytes, data_size: int | None = None) -> bytes:
    return riff(fmt_chunk, *extra, chunk(b"data", data, data_size))


# -- the audio every encoding carries -----------------------------------------------------

SIGNAL = utterances(RATE, count=1, burst=0.4, edge=0.1)
PCM16 = np.frombuffer(encode(SIGNAL, 2), "<i2")


def int24(values: np.ndarray) -> bytes:
    """Signed 24-bit little-endian: each int32's low three bytes."""
    return values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def stereo(samples: np.ndarray) -> np.ndarray:
    return np.repeat(samples[:, None], 2, axis=1).reshape(-1)


# 24-bit values with detail below 16 bits, so truncating to 16 would show.
S24 = np.round(SIGNAL * 8388607).astype(np.int32)


@dataclass(frozen=True)
class Case:
    """A WAV encoding, and exactly what the client must send for it."""

    wav: bytes
    width: int
    wire: bytes
    channels: int = 1

    @property
    def reference(self) -> np.ndarray:
        """The audio as 16-bit samples (interleaved), for comparing after the bridge."""
        return PCM16 if self.channels == 1 else stereo(PCM16)


CASES = {
    "8-bit": Case(wav(fmt(WAVE_FORMAT_PCM, 1, 8), encode(SIGNAL, 1)), 1, encode(SIGNAL, 1)),
    "16-bit": Case(wav(fmt(WAVE_FORMAT_PCM, 1, 16), PCM16.tobytes()), 2, PCM16.tobytes()),
    "24-bit": Case(wav(fmt(WAVE_FORMAT_PCM, 1, 24), int24(S24)), 3, int24(S24)),
    "32-bit": Case(wav(fmt(WAVE_FORMAT_PCM, 1, 32), encode(SIGNAL, 4)), 4, encode(SIGNAL, 4)),
    # Floats made from 16-bit samples (÷32768) must come back to exactly those samples.
    "float32": Case(
        wav(fmt(WAVE_FORMAT_IEEE_FLOAT, 1, 32), (PCM16 / 32768).astype("<f4").tobytes()),
        2,
        PCM16.tobytes(),
    ),
    "float64": Case(
        wav(fmt(WAVE_FORMAT_IEEE_FLOAT, 1, 64), (PCM16 / 32768).astype("<f8").tobytes()),
        2,
        PCM16.tobytes(),
    ),
    "extensible 16-bit stereo": Case(
        wav(fmt(WAVE_FORMAT_EXTENSIBLE, 2, 16, sub=WAVE_FORMAT_PCM), stereo(PCM16).tobytes()),
        2,
        stereo(PCM16).tobytes(),
        channels=2,
    ),
    "extensible 24 valid bits in 32": Case(
        wav(
            fmt(WAVE_FORMAT_EXTENSIBLE, 1, 32, sub=WAVE_FORMAT_PCM, valid_bits=24),
            (S24 << 8).astype("<i4").tobytes(),
        ),
        4,
        (S24 << 8).astype("<i4").tobytes(),
    ),
    "extensible float32 stereo": Case(
        wav(
            fmt(WAVE_FORMAT_EXTENSIBLE, 2, 32, sub=WAVE_FORMAT_IEEE_FLOAT),
            (stereo(PCM16) / 32768).astype("<f4").tobytes(),
        ),
        2,
        stereo(PCM16).tobytes(),
        channels=2,
    ),
    # A streamed WAV (size never filled in), with chunks to skip, one of odd size.
    "streamed, odd chunks": Case(
        wav(
            fmt(WAVE_FORMAT_PCM, 1, 16),
            PCM16.tobytes(),
            chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00bodhi"),
            chunk(b"fact", struct.pack("<I", len(PCM16))),
            data_size=0xFFFFFFFF,
        ),
        2,
        PCM16.tobytes(),
    ),
}


# -- servers --------------------------------------------------------------------------------


@dataclass
class StubServer:
    """A stand-in Wyoming server: records what arrives, then answers as told."""

    answer: Callable[[], Event | None] | None
    """What to send after audio-stop (None: close; the callable returning None: stay silent)."""
    port: int = 0
    events: list[Event] = field(default_factory=list)

    @property
    def audio(self) -> bytes:
        return b"".join(e.payload or b"" for e in self.events if e.type == "audio-chunk")

    @property
    def formats(self) -> set[tuple[int, int, int]]:
        """(rate, width, channels) of audio-start and of every chunk."""
        return {
            (e.data["rate"], e.data["width"], e.data["channels"])
            for e in self.events
            if e.type in ("audio-start", "audio-chunk")
        }

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (event := await async_read_event(reader)) is not None:
            self.events.append(event)
            if event.type == "audio-stop":
                break
        reply = None if self.answer is None else self.answer()
        if reply is not None:
            await async_write_event(reply, writer)
        if self.answer is not None and reply is None:
            await reader.read()  # silent: hold the connection until the client gives up
        writer.close()


@contextlib.asynccontextmanager
async def stub_server(answer: Callable[[], Event | None] | None) -> AsyncIterator[StubServer]:
    stub = StubServer(answer)
    server = await asyncio.start_server(stub.serve, "127.0.0.1", 0)
    stub.port = server.sockets[0].getsockname()[1]
    async with server:
        yield stub


def transcript_ok() -> Event:
    return Transcript(text="ok").event()


# -- running the real command -----------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_client_sync(*args: str, preexec: list[str] | None = None) -> Run:
    started = time.monotonic()
    result = subprocess.run(
        [*(preexec or []), *CLIENT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


async def run_client(*args: str) -> Run:
    return await asyncio.to_thread(run_client_sync, *args)


def assert_one_line(run: Run, status: int, line: str) -> None:
    assert run.returncode == status, run
    assert run.stderr == f"{PROG}: {line}\n"
    assert run.seconds < QUICK


# -- user errors: one line naming the file, status 2, no traceback, at once ---------------


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "the file is empty"),
    "text": (b"hello, world\n", "not a WAV file: it does not start with RIFF…WAVE"),
    "flac": (b"fLaC\x00\x00\x00\x22" + bytes(34), "not a WAV file: this is FLAC; convert it to WAV first"),
    "ogg": (b"OggS" + bytes(60), "not a WAV file: this is Ogg (Vorbis or Opus); convert it to WAV first"),
    "avi": (b"RIFF\x00\x00\x00\x00AVI LIST", "not a WAV file: a RIFF file of type 'AVI', not WAVE"),
    "riff only": (b"RIFF", "truncated WAV header: the file has only 4 bytes"),
    "no fmt": (riff(), "truncated WAV header: the file ends before the fmt chunk"),
    "cut fmt": (riff() + b"fmt \x10\x00\x00\x00\x01\x00", "truncated WAV header: the file ends inside the fmt chunk"),
    "short fmt": (riff(chunk(b"fmt ", b"\x01\x00\x01\x00")), "truncated WAV header: the fmt chunk has 4 bytes, expected 16"),
    "cut chunk": (riff(fmt(1, 1, 16), b"LIST\x00\x01\x00\x00abc"), "truncated WAV header: the file ends inside a 'LIST' chunk"),
    "no data": (riff(fmt(1, 1, 16)), "no audio: the file ends before the data chunk"),
    "empty data": (wav(fmt(1, 1, 16), b""), "no audio: the WAV file's data chunk is empty"),
    "data first": (riff(chunk(b"data", b"\0\0"), fmt(1, 1, 16)), "invalid WAV header: the data chunk comes before the fmt chunk"),
    "zero channels": (wav(fmt(1, 0, 16), b"\0\0"), "invalid WAV header: the fmt chunk says 0 channels"),
    "zero rate": (wav(fmt(1, 1, 16, rate=0), b"\0\0"), "invalid WAV header: the fmt chunk says 0 samples per second"),
    "adpcm": (wav(fmt(0x0002, 1, 4), b"\0" * 64), "unsupported WAV encoding: Microsoft ADPCM; expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "ima adpcm": (wav(fmt(0x0011, 1, 4), b"\0" * 64), "unsupported WAV encoding: IMA ADPCM; expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "a-law": (wav(fmt(0x0006, 1, 8), b"\0" * 64), "unsupported WAV encoding: A-law (G.711); expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "mu-law": (wav(fmt(0x0007, 1, 8), b"\0" * 64), "unsupported WAV encoding: μ-law (G.711); expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "mp3": (wav(fmt(0x0055, 1, 0), b"\0" * 64), "unsupported WAV encoding: MP3; expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "unknown tag": (wav(fmt(0x1234, 1, 16), b"\0" * 64), "unsupported WAV encoding: format tag 0x1234; expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "12-bit": (wav(fmt(1, 1, 12), b"\0" * 64), "unsupported WAV encoding: 12-bit integer PCM; expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "16-bit float": (wav(fmt(3, 1, 16), b"\0" * 64), "unsupported WAV encoding: 16-bit float; expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "extensible mu-law": (wav(fmt(WAVE_FORMAT_EXTENSIBLE, 1, 8, sub=0x0007), b"\0" * 64), "unsupported WAV encoding: WAVE_FORMAT_EXTENSIBLE μ-law (G.711); expected 8/16/24/32-bit integer PCM or 32/64-bit float"),
    "extensible short": (wav(fmt(WAVE_FORMAT_EXTENSIBLE, 1, 16), b"\0" * 64), "truncated WAV header: a WAVE_FORMAT_EXTENSIBLE fmt chunk has 40 bytes, this one 16"),
    "extensible other guid": (
        riff(chunk(b"fmt ", struct.pack("<HHIIHHHHI", WAVE_FORMAT_EXTENSIBLE, 1, RATE, 2 * RATE, 2, 16, 22, 16, 0) + bytes(range(16))), chunk(b"data", b"\0\0")),
        "unsupported WAV encoding: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format {03020100-0504-0706-0809-0A0B0C0D0E0F}; expected 8/16/24/32-bit integer PCM or 32/64-bit float",
    ),
}  # fmt: skip


# Run as a separate process (what a user sees, start-up included); the rest of the table goes
# through the same main() in this process, which is many times faster.
THROUGH_THE_COMMAND = {
    "empty", "text", "flac", "riff only", "cut fmt", "no data", "empty data", "a-law", "mu-law",
    "adpcm", "12-bit", "extensible other guid", "127.0.0.1:10300", "port 99999", "timeout 0",
    "timeout -1", "wait -1",
}  # fmt: skip


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    started = time.monotonic()
    try:
        status = transcribe_main(list(args))
    except SystemExit as exit:  # argparse's own exits
        status = int(exit.code or 0)
    out, err = capsys.readouterr()
    return Run(status, out, err, time.monotonic() - started)


def run_either(name: str, capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    return run_client_sync(*args) if name in THROUGH_THE_COMMAND else run_in_process(capsys, *args)


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_file_that_is_not_usable_audio_is_refused_in_one_line(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    content, reason = BAD_FILES[name]
    path = write(tmp_path / "in.wav", content)
    assert_one_line(run_either(name, capsys, path), 2, f"{path}: {reason}")


def test_a_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.wav")
    assert_one_line(run_client_sync(missing), 2, f"{missing}: no such file")


def test_a_directory(tmp_path: Path) -> None:
    assert_one_line(
        run_client_sync(str(tmp_path)), 2, f"{tmp_path}: is a directory, not a WAV file"
    )


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.wav", CASES["16-bit"].wav)
    os.chmod(path, 0)
    # Root reads any file; without these two capabilities it is refused like anyone else.
    preexec = None
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root, and setpriv (util-linux) is not there to drop privileges")
        preexec = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    assert_one_line(run_client_sync(path, preexec=preexec), 2, f"{path}: permission denied")


BAD_OPTIONS: dict[str, tuple[list[str], str]] = {
    "127.0.0.1:10300": (["--uri", "127.0.0.1:10300"], "--uri 127.0.0.1:10300: expected tcp://HOST:PORT or unix://PATH; did you mean tcp://127.0.0.1:10300?"),
    "localhost:10300": (["--uri", "localhost:10300"], "--uri localhost:10300: expected tcp://HOST:PORT or unix://PATH; did you mean tcp://localhost:10300?"),
    "http": (["--uri", "http://127.0.0.1:10300"], "--uri http://127.0.0.1:10300: expected tcp://HOST:PORT or unix://PATH, e.g. tcp://127.0.0.1:10300"),
    "port 99999": (["--uri", "tcp://127.0.0.1:99999"], "--uri tcp://127.0.0.1:99999: needs a host and a port from 1 to 65535, e.g. tcp://127.0.0.1:10300"),
    "port http": (["--uri", "tcp://127.0.0.1:http"], "--uri tcp://127.0.0.1:http: needs a host and a port from 1 to 65535, e.g. tcp://127.0.0.1:10300"),
    "no port": (["--uri", "tcp://127.0.0.1"], "--uri tcp://127.0.0.1: needs a host and a port from 1 to 65535, e.g. tcp://127.0.0.1:10300"),
    "port 0": (["--uri", "tcp://127.0.0.1:0"], "--uri tcp://127.0.0.1:0: needs a host and a port from 1 to 65535, e.g. tcp://127.0.0.1:10300"),
    "no host": (["--uri", "tcp://:10300"], "--uri tcp://:10300: needs a host and a port from 1 to 65535, e.g. tcp://127.0.0.1:10300"),
    "unix no path": (["--uri", "unix://"], "--uri unix://: needs a socket path, e.g. unix:///run/wyoming.sock"),
    "timeout 0": (["--timeout", "0"], "argument --timeout: expected a positive number of seconds, got '0' (see --help)"),
    "timeout -1": (["--timeout", "-1"], "argument --timeout: expected a positive number of seconds, got '-1' (see --help)"),
    "timeout nan": (["--timeout", "nan"], "argument --timeout: expected a positive number of seconds, got 'nan' (see --help)"),
    "wait -1": (["--wait", "-1"], "argument --wait: expected zero or more seconds, got '-1' (see --help)"),
    "wait soon": (["--wait", "soon"], "argument --wait: expected zero or more seconds, got 'soon' (see --help)"),
}  # fmt: skip


@pytest.mark.parametrize("name", BAD_OPTIONS)
def test_a_bad_option_is_refused_in_one_line(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file is fine and no server runs: the option alone must stop it, before connecting.
    args, line = BAD_OPTIONS[name]
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    assert_one_line(run_either(name, capsys, path, *args), 2, line)


def test_no_file_at_all() -> None:
    assert_one_line(run_client_sync(), 2, "the following arguments are required: wav (see --help)")


def test_version_and_the_console_script() -> None:
    run = run_client_sync("--version")
    assert (run.returncode, run.stdout) == (0, f"{PROG} {__version__}\n")
    script = Path(sys.executable).with_name(PROG)
    installed = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert installed.stdout == run.stdout


# -- server problems: status 1, one clear line ------------------------------------------


async def test_no_server_says_so_and_how_to_wait(tmp_path: Path) -> None:
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    uri = f"tcp://127.0.0.1:{free_port()}"
    run = await run_client(path, "--uri", uri)
    assert_one_line(
        run,
        1,
        f"cannot connect to {uri}: connection refused; is the server running? "
        "(--wait SECONDS waits for one that is starting)",
    )


async def test_a_server_that_closes_without_a_transcript(tmp_path: Path) -> None:
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    async with stub_server(None) as stub:
        uri = f"tcp://127.0.0.1:{stub.port}"
        run = await run_client(path, "--uri", uri)
    assert_one_line(run, 1, f"{uri} closed the connection without a transcript")


async def test_a_server_error_is_shown_with_its_code(tmp_path: Path) -> None:
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    async with stub_server(
        lambda: Error(text="Bodhi refused the key", code="auth").event()
    ) as stub:
        uri = f"tcp://127.0.0.1:{stub.port}"
        run = await run_client(path, "--uri", uri)
    assert_one_line(run, 1, f"{uri} answered with an error (auth): Bodhi refused the key")


async def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    async with stub_server(lambda: None) as stub:
        uri = f"tcp://127.0.0.1:{stub.port}"
        run = await run_client(path, "--uri", uri, "--timeout", "0.5")
    assert_one_line(run, 1, f"{uri}: no transcript within 0.5 s of the end of the audio")
    assert stub.events[-1].type == "audio-stop"


async def test_wait_gives_up_cleanly_when_no_server_starts(tmp_path: Path) -> None:
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    uri = f"tcp://127.0.0.1:{free_port()}"
    run = await run_client(path, "--uri", uri, "--wait", "0.5")
    assert run.returncode == 1
    assert run.stderr == (
        f"waiting for the server at {uri} (up to 0.5 s)\n"
        f"{PROG}: no server at {uri} after waiting 0.5 s\n"
    )


async def test_wait_uses_a_server_that_starts_late(tmp_path: Path) -> None:
    path = write(tmp_path / "speech.wav", CASES["16-bit"].wav)
    port = free_port()
    uri = f"tcp://127.0.0.1:{port}"
    client = await asyncio.create_subprocess_exec(
        *CLIENT, path, "--uri", uri, "--wait", "30",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    try:
        assert client.stderr is not None
        # The server starts only once the client has found nobody there.
        first = await asyncio.wait_for(client.stderr.readline(), 15)
        assert first.decode() == f"waiting for the server at {uri} (up to 30 s)\n"
        async with (
            running_simulator(texts=["late but here"]) as simulator,
            running_bridge(simulator.url, uri=uri, lead=30),
        ):
            stdout, stderr = await asyncio.wait_for(client.communicate(), 30)
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
    assert client.returncode == 0, stderr
    assert stdout.decode() == "late but here\n"
    assert stderr == b""


# -- every encoding, exactly on the wire --------------------------------------------------


async def send_in_process(path: str, port: int) -> str:
    uri = f"tcp://127.0.0.1:{port}"
    recording = open_recording(path, pytest.fail)
    with recording.file:
        return await transcribe(recording, uri, parse_uri(uri), HINDI, timeout=10)


@pytest.mark.parametrize("name", CASES)
async def test_every_encoding_goes_on_the_wire_as_documented(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    path = write(tmp_path / "in.wav", case.wav)
    async with stub_server(transcript_ok) as stub:
        assert await send_in_process(path, stub.port) == "ok"
    assert stub.formats == {(RATE, case.width, case.channels)}
    assert [e.type for e in stub.events[:2]] == ["transcribe", "audio-start"]
    assert stub.events[-1].type == "audio-stop"
    assert stub.audio == case.wire


async def test_a_file_cut_short_is_sent_as_far_as_it_goes_with_a_warning(tmp_path: Path) -> None:
    # A recorder that died before fixing up the header: the data chunk claims an hour.
    data = CASES["16-bit"].wire
    path = write(tmp_path / "cut.wav", wav(fmt(1, 1, 16), data, data_size=3600 * RATE * 2))
    warnings: list[str] = []
    recording = open_recording(path, warnings.append)
    async with stub_server(transcript_ok) as stub:
        with recording.file:
            uri = f"tcp://127.0.0.1:{stub.port}"
            assert await transcribe(recording, uri, parse_uri(uri), HINDI) == "ok"
    assert warnings == [
        f"{path}: warning: the file is cut short; sending the 0.6 s of audio it holds"
    ]
    assert stub.audio == data


# -- every encoding, through the bridge to (simulated) Bodhi ----------------------------


def expected_at_bodhi(case: Case) -> np.ndarray:
    converter = AudioConverter(RATE, 2, case.channels, target_rate=8000)
    return decode_s16(converter.convert(case.reference.tobytes()) + converter.flush())


@pytest.mark.parametrize("name", list(CASES))
async def test_every_encoding_reaches_bodhi_intact(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    path = write(tmp_path / "in.wav", case.wav)
    async with (
        running_simulator(record_audio=True, texts=["sun liya"]) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
    ):
        assert await send_in_process(path, bridge.port) == "sun liya"
    (record,) = simulator.connections
    received = decode_s16(bytes(record.audio))
    expected = expected_at_bodhi(case)
    # The bridge pads the last frame with silence; everything before it must match.
    assert len(expected) <= len(received) < len(expected) + 800
    assert not received[len(expected) :].any()
    noise = received[: len(expected)] - expected
    # 8-bit audio carries its own quantisation noise (about -48 dB); the rest is exact or
    # within a 16-bit step of the 16-bit reference.
    floor = 30 if case.width == 1 else 60
    assert level_db(expected) - level_db(noise) > floor


# The widest files the server takes (README: 8-192 kHz, 8/16/24/32-bit, up to 64 channels):
# 20 ms of each is more than an event's payload may be (256 KiB).
WIDE = {
    "192 kHz 32-bit 24 channels": (WAVE_FORMAT_PCM, 32, 24),
    "192 kHz 32-bit 64 channels": (WAVE_FORMAT_PCM, 32, 64),
    "192 kHz float64 64 channels": (WAVE_FORMAT_IEEE_FLOAT, 64, 64),
}


@pytest.mark.parametrize("name", WIDE)
async def test_the_widest_files_are_sent_in_chunks_the_server_takes(
    tmp_path: Path, name: str
) -> None:
    tag, bits, channels = WIDE[name]
    rate = 192_000
    signal = utterances(rate, count=1, burst=0.3, edge=0.05)
    if tag == WAVE_FORMAT_PCM:
        samples = encode(signal, bits // 8, channels)
    else:
        samples = np.repeat(signal[:, None], channels, axis=1).astype("<f8").tobytes()
    path = write(tmp_path / "wide.wav", wav(fmt(tag, channels, bits, rate), samples))
    async with (
        running_simulator(texts=["sun liya"]) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
    ):
        assert await send_in_process(path, bridge.port) == "sun liya"


# -- the WAV reader's own promises --------------------------------------------------------


def test_audio_is_read_a_piece_at_a_time() -> None:
    # An hour of audio declared, a few seconds there: memory follows the piece, not the file.
    data = CASES["16-bit"].wire * 5
    stream = io.BytesIO(wav(fmt(WAVE_FORMAT_PCM, 1, 16), data, data_size=3600 * RATE * 2))
    asked: list[int] = []

    def read(size: int) -> bytes:
        asked.append(size)
        return stream.read(size)

    header = read_header(read)
    assert header.data_size == 3600 * RATE * 2
    pieces = list(audio_chunks(read, header, 320))
    assert b"".join(pieces) == data
    assert max(asked) <= 320 * 2
    assert {len(piece) for piece in pieces[:-1]} == {640}


def test_a_partial_last_frame_is_dropped_and_trailing_chunks_ignored() -> None:
    frames = stereo(PCM16[:101]).tobytes()
    # fmt, LIST (odd: padded), data (odd: padded), then a chunk the audio must not swallow.
    stream = io.BytesIO(
        wav(fmt(WAVE_FORMAT_PCM, 2, 16), frames + b"\x01\x02\x03", chunk(b"LIST", b"x"))
        + chunk(b"JUNK", b"not audio")
    )
    header = read_header(stream.read)
    assert b"".join(audio_chunks(stream.read, header, 7)) == frames


def test_floats_are_clipped_and_cleaned_not_wrapped() -> None:
    values = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -3.0, np.nan, np.inf, -np.inf])
    out = Transcoder(WavFormat("float", RATE, 1, 32)).convert(values.astype("<f4").tobytes())
    assert np.frombuffer(out, "<i2").tolist() == [
        0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 32767, -32768,
    ]  # fmt: skip


# -- the sample and the terminal ----------------------------------------------------------


def test_the_shipped_sample_is_small_speech_at_16_khz() -> None:
    with SAMPLE.open("rb") as file:
        header = read_header(file.read)
    assert header.format == WavFormat("int", 16000, 1, 16)
    assert header.data_size is not None
    assert 1.5 < header.data_size / 32000 < 4
    assert SAMPLE.stat().st_size <= 80 * 1024


async def test_the_shipped_sample_streams_two_phrases_through_the_demo() -> None:
    # The README's "Try it": the server in the background, the client waiting for it.
    port = free_port()
    uri = f"tcp://127.0.0.1:{port}"
    server_args = ["-m", "wyoming_bodhi", "--demo", "--uri", uri]
    with process(server_args, clean_env()):
        run = await run_client(str(SAMPLE), "--uri", uri, "--wait", "30", "--stream")
    assert run.returncode == 0, run
    phrases = [line for line in run.stderr.splitlines() if line.startswith("… ")]
    assert phrases == [
        "… simulated transcript segment 1 from the Bodhi simulator",
        "… simulated transcript segment 2 from the Bodhi simulator",
    ]
    assert run.stdout == (
        "simulated transcript segment 1 from the Bodhi simulator "
        "simulated transcript segment 2 from the Bodhi simulator\n"
    )


async def run_realtime(path: str, port: int, on_a_terminal: bool) -> tuple[int, str, str]:
    """The client with --realtime --stream; stderr on a pseudo-terminal or a pipe."""
    main, terminal = os.openpty() if on_a_terminal else (-1, -1)
    client = await asyncio.create_subprocess_exec(
        *CLIENT, path, "--uri", f"tcp://127.0.0.1:{port}", "--realtime", "--stream",
        stdout=subprocess.PIPE, stderr=terminal if on_a_terminal else subprocess.PIPE,
        env=clean_env(),
    )  # fmt: skip
    if not on_a_terminal:
        stdout, stderr = await asyncio.wait_for(client.communicate(), 30)
        assert client.returncode is not None
        return client.returncode, stdout.decode(), stderr.decode()
    os.close(terminal)

    def read_terminal() -> bytes:
        seen = b""
        with contextlib.suppress(OSError):  # EIO once the client has closed its end
            while piece := os.read(main, 4096):
                seen += piece
        return seen

    try:
        shown = await asyncio.to_thread(read_terminal)
        stdout, _ = await asyncio.wait_for(client.communicate(), 30)
    finally:
        os.close(main)
    assert client.returncode is not None
    return client.returncode, stdout.decode(), shown.decode()


@pytest.mark.parametrize("on_a_terminal", [True, False], ids=["terminal", "pipe"])
async def test_progress_shows_on_a_terminal_only(tmp_path: Path, on_a_terminal: bool) -> None:
    audio = encode(utterances(RATE, count=1, burst=0.3, edge=0.1))  # 0.5 s
    path = write(tmp_path / "speech.wav", wav(fmt(WAVE_FORMAT_PCM, 1, 16), audio))
    async with (
        running_simulator(texts=["batti jalao"]) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
    ):
        status, stdout, stderr = await run_realtime(path, bridge.port, on_a_terminal)
    assert status == 0, stderr
    assert stdout == "batti jalao\n"
    if on_a_terminal:
        # The line is redrawn in place, and wiped before the streamed phrase is printed.
        assert "\rsending 0.0 / 0.5 s" in stderr
        assert "\rsending 0.5 / 0.5 s" in stderr
        assert re.search(r"\r +\r… batti jalao\r?\n", stderr), stderr
    else:
        assert stderr == "… batti jalao\n"
