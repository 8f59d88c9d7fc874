"""The capture rig works: real PyAudio → PortAudio → ALSA capture, in a subprocess, hears
the speech each microphone plays, with the clock (or lack of one) it claims, and fails the
way a client has to handle."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from tests import capture, signals
from tests.capture import Microphone

SCRIPT = Path(capture.__file__)


def speech(rate: int) -> signals.Signal:
    """Two speech-like bursts; a little fixed noise on them makes the cross-correlation
    peak unique (pure tones would match as well one period off)."""
    voiced = signals.utterances(rate, count=2, burst=0.5, gap=0.4, edge=0.2)
    noise = np.random.default_rng(13).standard_normal(len(voiced)) * 0.05
    noisy: signals.Signal = voiced + noise * (voiced != 0)
    return noisy


def locate(captured: signals.Signal, source: signals.Signal) -> tuple[int, float]:
    """Where the source's non-silent part sits in the capture, and how alike they are there
    (Pearson's r at that offset)."""
    voiced = np.flatnonzero(source)
    core = source[voiced[0] : voiced[-1] + 1]
    assert len(captured) >= len(core), "captured less audio than the speech lasts"
    size = 1 << int(np.ceil(np.log2(len(captured) + len(core))))
    spectrum = np.fft.rfft(captured, size) * np.conj(np.fft.rfft(core, size))
    sliding = np.fft.irfft(spectrum, size)[: len(captured) - len(core) + 1]
    offset = int(np.argmax(sliding))
    window = captured[offset : offset + len(core)]
    if not window.any():
        return offset, 0.0
    return offset - int(voiced[0]), float(np.corrcoef(window, core)[0, 1])


def run_record(
    microphone: Microphone,
    tmp_path: Path,
    seconds: float = 3.0,
    rate: int = 16000,
    *,
    when_capturing: Callable[[Microphone], None] = Microphone.play,
    quiet: str | None = "handlers",
) -> tuple[dict[str, Any], signals.Signal, str]:
    """Capture in a subprocess with the microphone's environment; once it reads, play (or
    whatever ``when_capturing`` does)."""
    out = tmp_path / f"captured-{time.monotonic_ns()}.raw"
    errors = out.with_suffix(".stderr")
    args = [sys.executable, str(SCRIPT), "record", f"--seconds={seconds}", f"--rate={rate}",
            f"--out={out}", *([f"--quiet={quiet}"] if quiet else [])]  # fmt: skip
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            args, env=microphone.env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    # A capture that hangs must fail the test, not block it: the read below ends at EOF.
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if first.startswith("capturing"):
            when_capturing(microphone)
        lines = (first + proc.stdout.read()).splitlines()
        proc.wait()
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0, errors.read_text()
    report: dict[str, Any] = json.loads(lines[-1])
    audio = signals.decode_s16(out.read_bytes()) if out.exists() else np.zeros(0)
    return report, audio, errors.read_text()


def silent(_: Microphone) -> None:
    """Play nothing."""


@pytest.fixture(autouse=True)
def _capture_runs_here() -> None:
    capture.require_capture()


def test_pulse_microphone_hears_speech_at_the_speed_of_speech(tmp_path: Path) -> None:
    source = speech(16000)
    with capture.pulse_microphone(signals.encode(source)) as microphone:
        report, captured, _ = run_record(microphone, tmp_path)
        microphone.wait_played()

    assert "open_error" not in report and "read_error" not in report, report
    assert len(captured) == 3 * 16000
    offset, likeness = locate(captured, source)
    assert likeness > 0.9, (offset, likeness)
    # A clocked source: three seconds of audio take about three seconds to arrive.
    assert report["read_s"] >= 2.5, report
    # All of the speech arrives, after the capture began: nothing played is lost.
    assert offset >= 0, offset
    assert microphone.played_at[0] >= report["read_began"]


def test_file_microphone_hands_over_the_recording_at_once(tmp_path: Path) -> None:
    # Ends in the middle of a burst: what follows must still be silence.
    source = speech(16000)[: -round(0.25 * 16000)]
    with capture.alsa_file_microphone(signals.encode(source)) as microphone:
        report, captured, _ = run_record(microphone, tmp_path, seconds=3.0)

    assert "open_error" not in report and "read_error" not in report, report
    offset, likeness = locate(captured, source)
    assert (offset, round(likeness, 3)) == (0, 1.0)
    # No clock: three seconds of audio in far less than three seconds.
    assert report["read_s"] < 1.5, report
    # After the recording: silence, not the plugin's stale ring buffer.
    assert not captured[len(source) :].any()


def test_pulse_resamples_for_a_client_below_the_source_rate(tmp_path: Path) -> None:
    source = speech(48000)
    with capture.pulse_microphone(signals.encode(source), rate=48000) as microphone:
        report, captured, _ = run_record(microphone, tmp_path, rate=16000)

    assert "open_error" not in report, report
    expected = soxr.resample(source, 48000, 16000)
    _, likeness = locate(captured, expected)
    assert likeness > 0.9


def test_a_48k_only_device_refuses_16k_and_captures_at_48k(tmp_path: Path) -> None:
    capture.require_capture(jack=True)
    source = speech(48000)
    with capture.fixed_rate_microphone(signals.encode(source), rate=48000) as microphone:
        refused, _, _ = run_record(microphone, tmp_path, rate=16000, when_capturing=silent)
        report, captured, _ = run_record(microphone, tmp_path, rate=48000)

    [default] = [device for device in refused["devices"] if device["name"] == "default"]
    assert default["defaultSampleRate"] == 48000.0
    assert refused["open_error"] == {
        "type": "builtins.OSError",
        "errno": -9997,
        "strerror": "Invalid sample rate",
        "args": ["-9997", "'Invalid sample rate'"],
    }
    assert "read_error" not in report, report
    _, likeness = locate(captured, source)
    assert likeness > 0.9
    assert report["read_s"] >= 2.5, report


def test_no_microphone_is_no_default_input_device(tmp_path: Path) -> None:
    if Path("/dev/snd").exists():
        pytest.skip("this machine has a sound card, which ALSA lists whatever the config")
    with capture.no_microphone() as microphone:
        report, _, _ = run_record(microphone, tmp_path)

    assert report["devices"] == []
    assert report["default_input_error"] == {
        "type": "builtins.OSError",
        "errno": None,
        "strerror": None,
        "args": ["'No Default Input Device Available'"],
    }
    # PyAudio's own message, "output" and all.
    assert report["open_error"] == {
        "type": "builtins.OSError",
        "errno": -9996,
        "strerror": "Invalid input device (no default output device)",
        "args": ["-9996", "'Invalid input device (no default output device)'"],
    }


def test_a_microphone_unplugged_mid_capture_fails_the_next_read(tmp_path: Path) -> None:
    with capture.pulse_microphone(bytes(16000)) as microphone:
        report, _, _ = run_record(microphone, tmp_path, 10, when_capturing=Microphone.unplug)

    assert report["read_error"] == {
        "type": "builtins.OSError",
        "errno": -9999,
        "strerror": "Unanticipated host error",
        "args": ["-9999", "'Unanticipated host error'"],
    }
    assert report["read_s"] < 9, report


def test_the_sound_libraries_chatter_unless_quietened(tmp_path: Path) -> None:
    capture.require_capture(jack=True)
    with capture.no_microphone() as microphone:
        _, _, noisy = run_record(microphone, tmp_path, quiet=None)
        _, _, handled = run_record(microphone, tmp_path, quiet="handlers")
        redirected, _, nothing = run_record(microphone, tmp_path, quiet="fd")
    with capture.fixed_rate_microphone(b"") as microphone:
        _, _, refusal_handled = run_record(microphone, tmp_path, quiet="handlers")
        refusal, _, refusal_nothing = run_record(microphone, tmp_path, quiet="fd")

    assert "ALSA lib" in noisy and "jack server is not running" in noisy
    # ALSA's and JACK's handlers silence their libraries, but not PortAudio's own report of
    # a refused open; pointing fd 2 elsewhere silences everything.
    assert handled == ""
    assert refusal_handled.startswith("Expression 'paInvalidSampleRate' failed in")
    assert nothing == refusal_nothing == ""
    assert "ALSA lib" in redirected["hidden_stderr"]
    assert refusal["open_error"]["errno"] == -9997
    assert "paInvalidSampleRate" in refusal["hidden_stderr"]


def _processes_mentioning(text: str) -> Iterator[str]:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            yield f"{cmdline.parent.name}: {args}"


def test_rigs_leave_no_process_or_file_behind() -> None:
    capture.require_capture(jack=True)
    with capture.pulse_microphone(bytes(3200)) as pulse:
        microphone_home = Path(pulse.env["HOME"]).parent
        pulse.play()
        assert list(_processes_mentioning(str(microphone_home)))
    with capture.fixed_rate_microphone(bytes(9600)) as jack:
        server = jack.env["JACK_DEFAULT_SERVER"]
        jack.play()
        jack_processes = [Path(f"/proc/{pid}") for pid in jack.pids]
        assert jack_processes and all(path.exists() for path in jack_processes)
        assert list(Path("/dev/shm").glob(f"*{server}*"))

    assert not list(_processes_mentioning(str(microphone_home)))
    assert not [path for path in jack_processes if path.exists()]
    assert not list(Path("/dev/shm").glob(f"*{server}*"))
    assert not microphone_home.exists()
