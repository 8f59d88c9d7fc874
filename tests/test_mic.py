"""wyoming-bodhi-mic through the real capture path: PyAudio → PortAudio → ALSA → a private
PulseAudio (or ALSA's file plugin, or a 48 kHz-only JACK device) playing speech, as a
separate process, into the bridge and the simulator on 127.0.0.1 — or straight to the
simulator with --direct."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from wyoming.asr import Transcript
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.server import AsyncEventHandler, AsyncServer

from tests import capture, signals
from tests.capture import Microphone
from wyoming_bodhi.clients import microphone

from .harness import API_KEY, CUSTOMER_ID, free_port, running_bridge, running_simulator

RATE = 16000
TEXTS = ["batti jalao", "pankha chalao abhi"]
TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _capture_runs_here() -> None:
    capture.require_capture()


def speech(count: int = 2, burst: float = 0.8, gap: float = 0.6, edge: float = 0.3) -> bytes:
    return signals.encode(signals.utterances(RATE, count=count, burst=burst, gap=gap, edge=edge))


@dataclass
class Run:
    """What the client printed, with when (seconds after play), and how it ended."""

    stdout: list[tuple[float, str]] = field(default_factory=list)
    stderr: list[tuple[float, str]] = field(default_factory=list)
    terminal: str = ""
    """Everything written to the pseudo-terminal, when stdout was one."""
    returncode: int | None = None
    elapsed: float = 0.0

    @property
    def out(self) -> list[str]:
        return [line for _, line in self.stdout]

    @property
    def err(self) -> str:
        return "\n".join(line for _, line in self.stderr)


def direct_env(url: str, **extra: str) -> dict[str, str]:
    return {"BODHI_URL": url, "BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID, **extra}


async def run_mic(
    microphone: Microphone,
    *args: str,
    env: dict[str, str] | None = None,
    play: bool = True,
    during: Callable[[asyncio.subprocess.Process, float], Awaitable[None]] | None = None,
    tty: bool = False,
    timeout: float = TIMEOUT,
    stdout: int | None = None,
) -> Run:
    """Start the client in the microphone's environment; play once it is listening.

    ``stdout``: the write end of a pipe of the test's own for the client's output (closed
    here once the client has it), instead of one this reads."""
    run = Run()
    command = [sys.executable, "-m", "wyoming_bodhi.mic", *args]
    master = slave = None
    if tty:
        master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        *command,
        env={**microphone.env, **(env or {})},
        stdout=slave if tty else asyncio.subprocess.PIPE if stdout is None else stdout,
        stderr=asyncio.subprocess.PIPE,
    )
    for descriptor in (slave, stdout):
        if descriptor is not None:
            os.close(descriptor)
    assert proc.stderr is not None
    started = time.monotonic()
    # Notices (a device's own rate) come first; the speech is played once it listens.
    while line := (await asyncio.wait_for(proc.stderr.readline(), timeout)).decode():
        run.stderr.append((0.0, line.rstrip("\n")))
        if "listening" in line:
            break
    begin = time.monotonic()
    if play and "listening" in run.err:
        microphone.play()

    async def lines(stream: asyncio.StreamReader, into: list[tuple[float, str]]) -> None:
        while line := await stream.readline():
            into.append((time.monotonic() - begin, line.decode().rstrip("\n")))

    async def terminal() -> None:
        assert master is not None
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        run.terminal = b"".join(chunks).decode()

    readers = [lines(proc.stderr, run.stderr)]
    if tty:
        readers.append(terminal())
    elif stdout is None:
        assert proc.stdout is not None
        readers.append(lines(proc.stdout, run.stdout))
    try:
        async with asyncio.timeout(timeout):
            jobs = [*readers, proc.wait()]
            if during is not None:
                jobs.append(during(proc, begin))
            await asyncio.gather(*jobs)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if master is not None:
            os.close(master)
    run.returncode = proc.returncode
    run.elapsed = time.monotonic() - started
    return run


def interrupt_at(*seconds: float) -> Callable[[asyncio.subprocess.Process, float], Awaitable[None]]:
    """Ctrl-C at these times after play."""

    async def send(proc: asyncio.subprocess.Process, begin: float) -> None:
        for at in seconds:
            await asyncio.sleep(max(0.0, begin + at - time.monotonic()))
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)

    return send


# -- through the bridge ---------------------------------------------------------------------


async def test_mic_through_the_bridge_prints_each_phrase_then_the_transcript() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.pulse_microphone(speech()) as microphone:
            run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}")
        (record,) = simulator.connections

    assert run.returncode == 0, run.err
    assert "listening to default at 16000 Hz" in run.err
    assert "after 1 s of quiet" in run.err
    phrases = [line for _, line in run.stderr if line.startswith("… ")]
    assert phrases == ["… batti jalao", "… pankha chalao abhi"]
    assert run.out == ["batti jalao pankha chalao abhi"]
    # Each phrase was printed as it came, not at the end: the first before the second was said.
    first_phrase = next(t for t, line in run.stderr if line == "… batti jalao")
    assert first_phrase < 0.3 + 0.8 + 0.6 + 0.8
    # The capture is what the bridge sent on: 16 kHz mono became Bodhi's 8 kHz.
    assert record.config is not None and record.config["sample_rate"] == 8000
    assert record.eof_received


async def test_a_server_that_finds_the_end_ends_the_command() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True) as bridge,
    ):
        with capture.pulse_microphone(speech()) as microphone:
            run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}")

    assert run.returncode == 0, run.err
    # Info says requires_external_vad: false, so the client does not look for quiet itself.
    assert "a command ends the server ends it, on Ctrl-C" in run.err
    # The bridge ended it at the first phrase, long before the second was said.
    assert run.out == ["batti jalao"]
    assert run.stdout[0][0] < 0.3 + 0.8 + 0.6 + 0.8


async def test_ctrl_c_mid_utterance_still_prints_the_transcript() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.pulse_microphone(speech(burst=1.5, gap=0.6)) as microphone:
            # During the second phrase (0.3 + 1.5 + 0.6 = 2.4 s to 3.9 s).
            run = await run_mic(
                microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", during=interrupt_at(3.0)
            )

    assert run.returncode == 0, run.err
    assert run.out == ["batti jalao pankha chalao abhi"]
    assert run.stdout[0][0] < 3.0 + 1.0  # at once: no waiting for quiet


async def test_a_second_ctrl_c_quits_at_once() -> None:
    async with (
        running_simulator(texts=TEXTS, silent_after_eof=True) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.pulse_microphone(speech(count=1)) as microphone:
            run = await run_mic(
                microphone,
                "--uri",
                f"tcp://127.0.0.1:{bridge.port}",
                during=interrupt_at(0.5, 1.0),
            )

    assert run.returncode == 130
    assert run.out == []
    assert run.elapsed < 10.0


async def test_continuous_listens_for_one_command_after_another() -> None:
    async with (
        running_simulator(texts=TEXTS, record_audio=True) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        # Two commands with 2.5 s between them: more than the 1 s of quiet that ends one.
        with capture.pulse_microphone(speech(burst=0.8, gap=2.5)) as microphone:
            run = await run_mic(
                microphone,
                "--uri",
                f"tcp://127.0.0.1:{bridge.port}",
                "--continuous",
                during=interrupt_at(5.5),
            )
        connections = simulator.connections

    assert run.returncode == 0, run.err
    # One request per command, each on its own connection; each simulator session scripts
    # its own first text.
    assert run.out == ["batti jalao", "batti jalao"]
    assert len(connections) == 2
    # A request starts when speech does, not while the room is quiet...
    assert run.stdout[1][0] > 0.3 + 0.8 + 2.5
    for connection in connections:
        audio = signals.decode_s16(bytes(connection.audio))
        # ...with the moment before it: the 0.3 s kept from before speech was detected
        # starts quiet, then the command.
        assert signals.level_db(audio[: int(8000 * 0.15)]) < -50
        assert signals.level_db(audio[int(8000 * 0.3) : int(8000 * 0.8)]) > -20


async def test_seconds_counts_captured_audio_not_the_clock() -> None:
    """ALSA's file plugin delivers the recording as fast as it is read: --seconds 2 is two
    seconds of audio, however soon they come."""
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.alsa_file_microphone(speech(), trailing_silence=3.0) as microphone:
            run = await run_mic(
                microphone,
                "--uri",
                f"tcp://127.0.0.1:{bridge.port}",
                "--seconds",
                "2",
                "--silence",
                "0",
            )
        (record,) = simulator.connections

    assert run.returncode == 0, run.err
    assert "after 2 s, on Ctrl-C" in run.err and "quiet" not in run.err
    # 2 s at 8 kHz, 16-bit, in whole frames (the last one padded).
    sent = sum(frame.size for frame in record.frames)
    assert 2 * 16000 <= sent < 2 * 16000 + 1600 + 1


async def test_seconds_alone_records_that_long_through_pauses() -> None:
    """--seconds N is N seconds of audio: the default 1 s of quiet does not end it first
    (two phrases 1.5 s apart); --silence given as well ends it at the first pause."""
    audio = speech(count=2, burst=0.8, gap=1.5)  # 0.3 + 0.8 + 1.5 + 0.8 + 0.3 = 3.7 s
    sent: list[int] = []
    announced: list[str] = []
    for extra in ([], ["--silence", "1"]):
        async with (
            running_simulator(texts=TEXTS) as simulator,
            running_bridge(simulator.url) as bridge,
        ):
            with capture.alsa_file_microphone(audio, trailing_silence=3.0) as microphone:
                run = await run_mic(
                    microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", "--seconds", "3",
                    *extra,
                )  # fmt: skip
            (record,) = simulator.connections
        assert run.returncode == 0, run.err
        sent.append(sum(frame.size for frame in record.frames))
        announced.append(run.err)
    alone, with_silence = sent
    # 3 s at 8 kHz, 16-bit, in whole frames (the last one padded).
    assert 3 * 16000 <= alone < 3 * 16000 + 1600 + 1
    assert "after 3 s, on Ctrl-C" in announced[0] and "quiet" not in announced[0]
    # The first phrase and a second of quiet: 0.3 + 0.8 + 1.0 s, well short of 3 s.
    assert with_silence < 2.5 * 16000
    assert "after 1 s of quiet, after 3 s" in announced[1]


async def test_a_backlog_past_the_limit_keeps_the_oldest_audio() -> None:
    """A device faster than real time (the file microphone above) runs ahead of a busy
    loop by seconds of audio within milliseconds: what is kept is the start, in order, so a
    command never loses its beginning (the test above ended at 3 s, not at its first pause,
    when the speech went and only the silence after it was left)."""

    class Unclocked:
        """Numbered chunks, as fast as they are asked for."""

        def __init__(self) -> None:
            self.count = 0

        def read(self, frames: int, exception_on_overflow: bool) -> bytes:
            self.count += 1
            return self.count.to_bytes(4, "big") * (frames // 2)

        def stop_stream(self) -> None:
            pass

        def close(self) -> None:
            pass

    stream = Unclocked()
    device = microphone.Device(0, "unclocked", 1, 8000)
    capture_ = microphone.Capture(stream, device, 8000, 1, 160)
    limit = round(microphone.MAX_QUEUED_SECONDS * 8000 / 160)
    capture_.start()
    try:
        # The loop is busy (a server slow to answer): the reader runs past the limit.
        deadline = time.monotonic() + 10
        while stream.count <= 2 * limit and time.monotonic() < deadline:
            time.sleep(0.01)  # noqa: ASYNC251 (the loop is meant to be busy)
        await asyncio.sleep(0)  # the loop takes what the reader handed it
        assert stream.count > 2 * limit
        chunks = [await capture_.next() for _ in range(limit)]
        assert [chunk[:4] if chunk else b"" for chunk in chunks] == [
            n.to_bytes(4, "big") for n in range(1, limit + 1)
        ]
        assert capture_.dropped > 0
    finally:
        capture_.close()


async def test_anyone_elses_wyoming_server_that_closes_after_each_transcript() -> None:
    """A server like wyoming-faster-whisper: needs the client to find the end, answers one
    transcript per connection, and closes."""
    heard: list[int] = []

    class OneShot(AsyncEventHandler):
        audio = 0

        async def handle_event(self, event: Event) -> bool:
            if Describe.is_type(event.type):
                await self.write_event(ONE_SHOT_INFO.event())
            elif event.type == "audio-chunk":
                self.audio += len(event.payload or b"")
            elif event.type == "audio-stop":
                heard.append(self.audio)
                await self.write_event(Transcript(text=f"heard {len(heard)}").event())
                return False
            return True

    port = free_port()
    server = AsyncServer.from_uri(f"tcp://127.0.0.1:{port}")
    task = asyncio.create_task(server.run(OneShot))
    try:
        await asyncio.sleep(0.2)
        with capture.pulse_microphone(speech(burst=0.8, gap=2.5)) as microphone:
            run = await run_mic(
                microphone, "--uri", f"tcp://127.0.0.1:{port}", "--continuous",
                during=interrupt_at(5.5),
            )  # fmt: skip
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert run.returncode == 0, run.err
    assert "after 1 s of quiet" in run.err
    assert run.out == ["heard 1", "heard 2"]
    # Each request carried its command, and its quiet after, at 16 kHz 16-bit.
    assert all(2 * RATE * 1.5 <= size <= 2 * RATE * 3.0 for size in heard), heard


ONE_SHOT_INFO = Info(
    asr=[
        AsrProgram(
            name="one-shot",
            description="a test server",
            attribution=Attribution(name="tests", url="https://example.invalid"),
            installed=True,
            version="1",
            models=[
                AsrModel(
                    name="m",
                    description="m",
                    attribution=Attribution(name="tests", url="https://example.invalid"),
                    installed=True,
                    languages=["hi"],
                    version="1",
                )
            ],
            requires_external_vad=True,
        )
    ]
)


# -- direct -----------------------------------------------------------------------------------


async def test_direct_on_a_terminal_redraws_the_phrase_being_spoken_in_place() -> None:
    texts = ["batti jalao abhi turant", "pankha chalao"]
    async with running_simulator(texts=texts) as simulator:
        with capture.pulse_microphone(speech(burst=1.2)) as microphone:
            run = await run_mic(microphone, "--direct", env=direct_env(simulator.url), tty=True)

    assert run.returncode == 0, run.err
    screen = run.terminal
    # The partial grows word by word on one line (carriage returns, no newlines)...
    assert "\r… batti" in screen and "\r… batti jalao abhi" in screen
    partials = screen[screen.index("\r… batti") : screen.index("batti jalao abhi turant\r\n")]
    assert "\n" not in partials
    # ...then the completed phrase is a line of its own, and so is the next one.
    assert screen.index("\r… batti jalao") < screen.index("batti jalao abhi turant\r\n")
    assert screen.index("batti jalao abhi turant\r\n") < screen.index("pankha chalao\r\n")
    assert "\r… pankha" in screen
    # The level meter was drawn while listening.
    assert "▕" in screen and "listening" in screen


async def test_direct_piped_prints_completed_phrases_only() -> None:
    texts = ["batti jalao abhi turant", "pankha chalao"]
    async with running_simulator(texts=texts) as simulator:
        with capture.pulse_microphone(speech(burst=1.2)) as microphone:
            run = await run_mic(microphone, "--direct", env=direct_env(simulator.url))
        (record,) = simulator.connections

    assert run.returncode == 0, run.err
    assert run.out == texts
    assert "\r" not in "".join(run.out) + run.err
    # Partials were asked for (the person watching wants them), at Bodhi's 8 kHz.
    assert record.config is not None
    assert "exclude_partial" not in record.config
    assert record.config["sample_rate"] == 8000


async def test_direct_with_a_wrong_key_says_401_and_never_the_key() -> None:
    async with running_simulator(api_key="the-right-key-0000") as simulator:
        with capture.pulse_microphone(speech(count=1)) as microphone:
            run = await run_mic(microphone, "--direct", env=direct_env(simulator.url))

    assert run.returncode == 1
    assert "(bodhi-401)" in run.err
    assert API_KEY not in run.err + "".join(run.out)
    assert CUSTOMER_ID not in run.err + "".join(run.out)


async def test_direct_without_credentials_is_a_usage_error() -> None:
    with capture.pulse_microphone(speech(count=1)) as microphone:
        run = await run_mic(microphone, "--direct", env={"BODHI_URL": "ws://127.0.0.1:9"})
    assert run.returncode == 2
    assert "no engine configured" in run.err


# -- devices and failures ---------------------------------------------------------------------


async def test_a_48k_only_device_is_captured_at_its_own_rate_and_converted() -> None:
    capture.require_capture(jack=True)
    source = signals.utterances(48000, count=2, burst=0.8, gap=0.6, edge=0.3)
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.fixed_rate_microphone(signals.encode(source)) as microphone:
            run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}")

    assert run.returncode == 0, run.err
    assert "does not capture 16000 Hz mono; capturing 48000 Hz, 1 channel(s)" in run.err
    assert run.out == ["batti jalao pankha chalao abhi"]


async def test_no_microphone_is_said_plainly() -> None:
    async with running_simulator() as simulator, running_bridge(simulator.url) as bridge:
        with capture.no_microphone() as microphone:
            run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", play=False)
    assert run.returncode == 2
    assert "no microphone found" in run.err
    # Not a word from ALSA, JACK or PortAudio.
    assert "ALSA lib" not in run.err and "jack" not in run.err.lower()
    assert len(run.stderr) == 1, run.err


async def test_a_microphone_unplugged_mid_command_still_gets_its_transcript() -> None:
    async def unplug(_proc: asyncio.subprocess.Process, begin: float) -> None:
        # After the first phrase is said and answered, during the second.
        await asyncio.sleep(max(0.0, begin + 2.2 - time.monotonic()))
        await asyncio.to_thread(microphone.unplug)

    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.pulse_microphone(speech(burst=0.8, gap=0.6)) as microphone:
            run = await run_mic(
                microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", during=unplug
            )

    assert run.returncode == 1
    assert "stopped delivering audio" in run.err
    assert run.out and run.out[0].startswith("batti jalao")
    # Not a word from PortAudio or ALSA about it.
    assert all(line.startswith(("wyoming-bodhi-mic: ", "… ")) for _, line in run.stderr), run.err


async def test_unreachable_and_busy_servers() -> None:
    with capture.pulse_microphone(speech(count=1)) as microphone:
        port = free_port()
        run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{port}", play=False)
        assert run.returncode == 1
        assert f"cannot connect to tcp://127.0.0.1:{port}: connection refused" in run.err

        async with (
            running_simulator() as simulator,
            running_bridge(simulator.url, max_connections=1) as bridge,
        ):
            _reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
            try:
                await asyncio.sleep(0.2)
                run = await run_mic(
                    microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", play=False
                )
            finally:
                writer.close()
    assert run.returncode == 1
    assert "(busy)" in run.err


async def test_device_choice_and_listing() -> None:
    with capture.pulse_microphone(speech(count=1)) as microphone:
        listed = await run_mic_plain(microphone, "--list-devices")
        assert listed.returncode == 0
        assert any(
            line.startswith("*") and "default" in line for line in listed.stdout.splitlines()
        )
        missing = await run_mic_plain(microphone, "--device", "no such thing")
        assert missing.returncode == 2
        assert "--device 'no such thing': no input device is called that (input devices:" in (
            missing.stderr
        )
        assert "default" in missing.stderr


async def test_without_pyaudio_it_says_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "pyaudio.py"
    fake.write_text("raise ImportError('No module named pyaudio')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wyoming_bodhi.mic"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "pip install pyaudio (in a clone: pip install '.[mic]')" in done.stderr
    assert "sudo apt install portaudio19-dev" in done.stderr


async def run_mic_plain(microphone: Microphone, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wyoming_bodhi.mic", *args],
        env=microphone.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


# -- what an adversarial review found ---------------------------------------------------------


ESCAPES = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED\x1b[0m\rOVER"


@contextlib.asynccontextmanager
async def hostile_server(mode: str) -> AsyncIterator[int]:
    """A Wyoming server that misbehaves in one way, on 127.0.0.1."""
    info = ONE_SHOT_INFO.event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(event_type: str, data: Any) -> None:
            writer.write((json.dumps({"type": event_type, "data": data}) + "\n").encode())
            await writer.drain()

        try:
            while line := await reader.readline():
                header = json.loads(line)
                for length_key in ("data_length", "payload_length"):
                    if header.get(length_key):
                        await reader.readexactly(header[length_key])
                kind = header["type"]
                if kind == "describe":
                    if mode == "garbage-info":
                        writer.write(b'{"type": "info", "data": [1, 2]}\n')
                        await writer.drain()
                    else:
                        await send("info", info.data)
                elif kind == "audio-start" and mode == "stop-reading":
                    await asyncio.sleep(3600)  # never reads again
                elif kind == "audio-chunk" and mode in ("inject", "bad-text"):
                    if mode == "inject":
                        await send("transcript-chunk", {"text": f"chunk {ESCAPES}"})
                        await send("transcript", {"text": f"final {ESCAPES}"})
                    else:
                        await send("transcript", {"text": 42})
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    # A small receive buffer: a server that stops reading is felt at once.
    for sock in server.sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_what_a_server_sends_is_never_obeyed_by_the_terminal() -> None:
    async with hostile_server("inject") as port:
        with capture.pulse_microphone(speech(count=1)) as microphone:
            run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{port}")
    assert run.returncode == 0, run.err
    everything = run.err + "".join(run.out)
    assert "\x1b" not in everything and "\x07" not in everything and "\r" not in everything
    assert run.out == ["final \\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31mRED\\x1b[0m\\x0dOVER"]


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("garbage-info", "sent an invalid event"),
        ("bad-text", "sent an invalid event"),
    ],
)
async def test_a_malformed_event_is_one_line_not_a_traceback(mode: str, said: str) -> None:
    async with hostile_server(mode) as port:
        with capture.pulse_microphone(speech(count=1)) as microphone:
            run = await run_mic(microphone, "--uri", f"tcp://127.0.0.1:{port}")
    assert run.returncode == 1
    assert said in run.err and "Traceback" not in run.err


async def test_a_server_that_stops_reading_does_not_hang_the_client() -> None:
    async with hostile_server("stop-reading") as port:
        # The file microphone delivers its audio at once: the socket's buffers fill fast.
        with capture.alsa_file_microphone(speech(), trailing_silence=240.0) as microphone:
            run = await run_mic(
                microphone, "--uri", f"tcp://127.0.0.1:{port}", "--seconds", "240",
                "--silence", "0", "--timeout", "3", timeout=40,
            )  # fmt: skip
    assert run.returncode == 1
    assert "stopped taking audio" in run.err
    assert run.elapsed < 20


async def test_a_frozen_microphone_is_said_and_the_client_ends() -> None:
    async def freeze(_proc: asyncio.subprocess.Process, begin: float) -> None:
        await asyncio.sleep(max(0.0, begin + 1.0 - time.monotonic()))
        microphone.freeze()

    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.pulse_microphone(speech(count=1, burst=2.0)) as microphone:
            try:
                run = await run_mic(
                    microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", during=freeze
                )
            finally:
                microphone.thaw()
    assert run.returncode == 1
    assert "stopped delivering audio (nothing for 3 s)" in run.err
    assert run.elapsed < 15


async def test_a_closed_pipe_ends_it_quietly() -> None:
    # As `| head -1`: the reader takes the first transcript and goes away; the next one meets
    # the closed pipe, and the client ends, at once and with 0, as a filter does.
    read_end, write_end = os.pipe()

    def first_line_then_gone() -> None:
        with open(read_end, "rb") as reader:
            reader.readline()

    async def read_one_then_close(proc: asyncio.subprocess.Process, _begin: float) -> None:
        await asyncio.to_thread(first_line_then_gone)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        if proc.returncode is None:  # it did not notice: a Ctrl-C ends it, not with 0
            proc.send_signal(signal.SIGINT)

    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        with capture.pulse_microphone(speech(burst=0.6, gap=2.5)) as microphone:
            run = await run_mic(
                microphone, "--uri", f"tcp://127.0.0.1:{bridge.port}", "--continuous",
                during=read_one_then_close, stdout=write_end,
            )  # fmt: skip
    assert run.returncode == 0, run.err
    assert "Traceback" not in run.err and "BrokenPipe" not in run.err


async def test_usage_errors_come_before_listening() -> None:
    with capture.pulse_microphone(speech(count=1)) as microphone:
        model = await run_mic(
            microphone, "--direct", "--model", "no-such-model",
            env={"BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID}, play=False,
        )  # fmt: skip
        thai_only = await run_mic(
            microphone, "--direct", "--language", "hi",
            env={"IAPP_API_KEY": "iapp-key-0123456789", "IAPP_URL": "ws://127.0.0.1:9"},
            play=False,
        )  # fmt: skip
    assert model.returncode == 2 and "unknown model 'no-such-model'" in model.err
    assert thai_only.returncode == 2
    assert "no configured engine speaks 'hi'; languages: th, th-TH" in thai_only.err
    for run in (model, thai_only):
        assert "listening" not in run.err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--silence", "1e308", "at most 600 seconds"),
        ("--rate", "0", "expected a sample rate from 8000 to 192000 Hz"),
        ("--rate", "400000", "expected a sample rate from 8000 to 192000 Hz"),
        ("--seconds", "nan", "expected a positive number of seconds"),
    ],
)
def test_option_values_are_checked(option: str, value: str, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wyoming_bodhi.mic", option, value],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


async def test_the_end_is_announced_as_it_will_happen() -> None:
    async with hostile_server("none") as port:
        with capture.pulse_microphone(speech(count=1)) as microphone:
            run = await run_mic(
                microphone, "--uri", f"tcp://127.0.0.1:{port}", "--silence", "0",
                play=False, during=interrupt_at(0.5, 1.0),
            )  # fmt: skip
    assert "a command ends on Ctrl-C" in run.err


async def test_direct_with_endpointing_leaves_no_status_on_the_terminal() -> None:
    async with running_simulator(texts=TEXTS) as simulator:
        env = direct_env(simulator.url, BODHI_ENDPOINTING="true")
        with capture.pulse_microphone(speech()) as microphone:
            run = await run_mic(microphone, "--direct", env=env, tty=True)
    assert run.returncode == 0, run.err
    assert "the engine ends it" in run.err
    assert "batti jalao\r\n" in run.terminal
    # After the answer: no "waiting for the transcript", and the status line cleared.
    tail = run.terminal.rsplit("batti jalao\r\n", 1)[1]
    assert "waiting" not in tail
    assert tail.strip(" \r") == ""
