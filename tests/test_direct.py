"""``wyoming-bodhi-transcribe FILE --direct``: a file streamed to the engine itself (the
simulators here) at the speed of speech, with the server's credentials and pipeline."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from wyoming_bodhi.simulators.iapp import IappSimulator, SimulatorOptions

from . import signals
from .harness import API_KEY, CUSTOMER_ID, clean_env, running_simulator, self_signed_certificate
from .test_transcribe_client import Run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "batti-jalao.wav"
CLIENT = [sys.executable, "-m", "wyoming_bodhi.transcribe"]


async def run_direct(*args: str, env: dict[str, str], stderr_tty: bool = False) -> Run:
    """The command as a user runs it; stderr on a pseudo-terminal when asked."""

    def go() -> Run:
        started = time.monotonic()
        master = slave = None
        if stderr_tty:
            master, slave = pty.openpty()
        proc = subprocess.Popen(
            [*CLIENT, *args, "--direct"],
            stdout=subprocess.PIPE,
            stderr=slave if stderr_tty else subprocess.PIPE,
            env=clean_env(**env),
            text=True,
        )
        screen = b""
        if master is not None:
            assert slave is not None
            os.close(slave)
            while True:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                screen += data
            os.close(master)
        out, err = proc.communicate(timeout=60)
        return Run(
            proc.returncode,
            out,
            screen.decode() if stderr_tty else err,
            time.monotonic() - started,
        )

    return await asyncio.to_thread(go)


def bodhi_env(url: str, **extra: str) -> dict[str, str]:
    return {"BODHI_URL": url, "BODHI_API_KEY": API_KEY, "BODHI_CUSTOMER_ID": CUSTOMER_ID, **extra}


def wav_file(path: Path, rate: int, signal: signals.Signal) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(signals.encode(signal))
    return path


async def test_a_file_through_bodhi_directly_at_the_speed_of_speech() -> None:
    async with running_simulator(texts=["batti jalao", "pankha chalao"]) as simulator:
        run = await run_direct(str(SAMPLE), "--stream", env=bodhi_env(simulator.url))
        (record,) = simulator.connections

    assert run.returncode == 0, run.stderr
    assert run.stdout == "batti jalao pankha chalao\n"
    assert run.stderr == "… batti jalao\n… pankha chalao\n"
    with wave.open(str(SAMPLE)) as sample:
        seconds = sample.getnframes() / sample.getframerate()
    # Paced like speech (the pipeline's own pacing, from the client's feed).
    assert run.seconds >= seconds * 0.9
    frame_times = [frame.at for frame in record.frames]
    assert frame_times[-1] - frame_times[0] >= seconds * 0.8
    assert record.config is not None and record.config["sample_rate"] == 8000
    assert "exclude_partial" not in record.config  # partials wanted: they are shown


async def test_on_a_terminal_progress_and_the_phrase_being_heard_share_a_line() -> None:
    async with running_simulator(texts=["batti jalao abhi", "pankha chalao"]) as simulator:
        run = await run_direct(str(SAMPLE), env=bodhi_env(simulator.url), stderr_tty=True)

    assert run.returncode == 0, run.stderr
    assert run.stdout == "batti jalao abhi pankha chalao\n"
    screen = run.stderr
    assert "\rsending 0.1 / 2.5 s" in screen
    assert "  … batti" in screen and "  … pankha" in screen
    assert "waiting for the transcript" in screen
    assert "\n" not in screen  # all of it redrawn in place, then cleared
    assert screen.endswith("\r")


async def test_thai_through_iapp_directly(tmp_path: Path) -> None:
    rate = 16000
    thai = ["เปิดไฟ", "ปิดพัดลม"]
    path = wav_file(
        tmp_path / "thai.wav", rate, signals.utterances(rate, count=2, burst=0.6, gap=0.8, edge=0.2)
    )
    async with IappSimulator(SimulatorOptions(texts=thai)) as simulator:
        env = {"IAPP_API_KEY": "iapp-key-0123456789", "IAPP_URL": simulator.url}
        run = await run_direct(str(path), "--language", "th", env=env)
        (record,) = simulator.connections

    assert run.returncode == 0, run.stderr
    assert run.stdout == "เปิดไฟ ปิดพัดลม\n"
    # iApp takes 16 kHz: nothing was resampled, in 100 ms frames.
    assert {frame.size for frame in record.frames[:-1]} == {3200}


async def test_a_wrong_key_says_401_and_never_the_key() -> None:
    async with running_simulator(api_key="the-right-key-0000") as simulator:
        run = await run_direct(str(SAMPLE), env=bodhi_env(simulator.url))

    assert run.returncode == 1
    assert "Bodhi failed (bodhi-401)" in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr  # said once, not logged as well
    assert API_KEY not in run.stdout + run.stderr
    assert CUSTOMER_ID not in run.stdout + run.stderr


async def test_credentials_from_the_servers_config_file(tmp_path: Path) -> None:
    config = tmp_path / "wyoming-bodhi.yaml"
    async with running_simulator(texts=["batti jalao", "pankha chalao"]) as simulator:
        config.write_text(
            f"api_key: {API_KEY}\ncustomer_id: {CUSTOMER_ID}\nbodhi_url: {simulator.url}\n"
        )
        run = await run_direct(str(SAMPLE), "--config", str(config), env={})
    assert run.returncode == 0, run.stderr
    assert run.stdout == "batti jalao pankha chalao\n"


async def test_without_credentials_it_says_how_to_give_them() -> None:
    run = await run_direct(str(SAMPLE), env={})
    assert run.returncode == 2
    assert "no engine configured: set BODHI_API_KEY" in run.stderr
    # The client has no --demo: the way out it names is the server's.
    assert "try --demo" not in run.stderr
    assert "or start wyoming-bodhi --demo and transcribe through it, without --direct" in run.stderr
    assert "Traceback" not in run.stderr


async def test_demo_mode_is_refused_rather_than_its_key_sent_to_the_real_engine() -> None:
    # The bundled simulators run in the server; the demo's key, sent to the engine's real
    # address, would come back as a wrong key (or, as here, never leave at all).
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0)
        port = listener.getsockname()[1]
        run = await run_direct(
            str(SAMPLE), env={"BODHI_DEMO": "1", "BODHI_URL": f"ws://127.0.0.1:{port}"}
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    assert run.returncode == 2, run
    assert run.stderr == (
        "wyoming-bodhi-transcribe: --direct talks to the engine itself, and demo mode has no "
        "engine to talk to: unset BODHI_DEMO (or demo in the config file), or start "
        "wyoming-bodhi --demo and transcribe through it, without --direct\n"
    )


async def test_a_streamed_wav_of_unknown_length_gets_the_timeout_after_its_end(
    tmp_path: Path,
) -> None:
    """arecord writes 0xFFFFFFFF as the size into a pipe: the file's length is unknown until
    its end, which is where --timeout starts counting."""
    path = wav_file(tmp_path / "long.wav", 16000, signals.utterances(16000, count=2, gap=1.0))
    data = bytearray(path.read_bytes())
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    async with running_simulator(texts=["batti jalao", "pankha chalao"]) as simulator:

        def go() -> subprocess.CompletedProcess[str]:
            with path.open("rb") as audio:
                return subprocess.run(
                    [*CLIENT, "/dev/stdin", "--direct", "--timeout", "1"],
                    stdin=audio, capture_output=True, text=True, timeout=60,
                    env=clean_env(**bodhi_env(simulator.url)),
                )  # fmt: skip

        done = await asyncio.to_thread(go)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "batti jalao pankha chalao\n"


async def test_a_file_longer_than_max_audio_is_refused_before_sending() -> None:
    async with running_simulator() as simulator:
        run = await run_direct(str(SAMPLE), env=bodhi_env(simulator.url, BODHI_MAX_AUDIO="1"))
        assert simulator.connections == []
    assert run.returncode == 2
    assert "holds 2 s of audio; one request takes at most 1 s (max_audio" in run.stderr
    assert run.seconds < 10


async def test_an_engine_message_quoting_the_key_is_blanked_in_the_warning_shown() -> None:
    """The pipeline's warnings are shown above the status line, as the server logs them: with
    every secret blanked out, whatever an engine sent."""
    garbage = f"<not JSON: your key is {API_KEY}, customer {CUSTOMER_ID}>"
    async with running_simulator(texts=["batti jalao"], raw_before_results=[garbage]) as simulator:
        run = await run_direct(str(SAMPLE), env=bodhi_env(simulator.url))
    assert run.returncode == 0, run.stderr
    assert "Skipping a message from Bodhi: " in run.stderr
    assert "your key is …, customer …" in run.stderr
    assert API_KEY not in run.stderr and CUSTOMER_ID not in run.stderr


async def test_an_old_setting_name_is_said_once(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    async with running_simulator(tls_cert=str(cert), tls_key=str(key), texts=["ek"]) as simulator:
        run = await run_direct(str(SAMPLE), env=bodhi_env(simulator.url, BODHI_CA=str(cert)))
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[0] == (
        "wyoming-bodhi-transcribe: bodhi_ca (BODHI_CA) is deprecated: use ca_file (--ca-file, "
        "BODHI_CA_FILE); the old names will be removed in a later release"
    )
    assert run.stderr.count("deprecated") == 1
