"""Real microphones for tests on machines with no sound card.

Each context manager yields a :class:`Microphone`: the environment a subprocess needs so
that PyAudio → PortAudio → ALSA's ``default`` device captures the given recording, and
``play()`` to start the speech. The capturing process must be a subprocess: ALSA and
PulseAudio read their configuration from the environment once per process.

- :func:`pulse_microphone` — clocked like a real microphone. A private PulseAudio daemon
  (own ``HOME`` and ``XDG_RUNTIME_DIR``) has a null sink at the given rate; its monitor is
  the default source and ALSA's ``default`` goes to it. ``play()`` runs ``pacat`` into the
  sink, so the capture receives the speech at the speed of speech, silence around it.
- :func:`alsa_file_microphone` — ALSA's ``file`` plugin feeds the recording to the capture
  side with no clock: reads return at once, then silence. Quick, but a client must count
  time in captured samples, never on the wall clock, to behave the same on it.
- :func:`fixed_rate_microphone` — a device that, like much USB hardware opened through
  ``hw:``, only does one rate (48 kHz): a private JACK server with a dummy driver. Opening it
  at 16 kHz fails as such hardware does (``OSError(-9997, 'Invalid sample rate')``).
- :func:`no_microphone` — no input device at all.

Run as a script, this module is the capturing client the rig tests use (``record``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wyoming_bodhi.clients.microphone import quiet_sound_libraries

STARTUP_TIMEOUT = 10.0
# What a user installs on Debian / Raspberry Pi OS, and what .ci/run installs.
APT_PACKAGES = "portaudio19-dev pulseaudio pulseaudio-utils libasound2-plugins"
JACK_APT_PACKAGES = "jackd2 alsa-utils"


class RigError(RuntimeError):
    """A sound server of the rig did not start; the message carries its log."""


@dataclass
class Microphone:
    """What a capturing subprocess needs, and the speech it will hear."""

    env: dict[str, str]
    rate: int
    _player: Callable[[], subprocess.Popen[bytes]] | None = None
    _playing: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    played_at: list[float] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        """The rig's own processes: its sound servers and the players started so far."""
        return [proc.pid for proc in (*self._servers, *self._playing)]

    def play(self) -> None:
        """Start the speech; it takes as long to arrive as it takes to say.

        Start the capture first and play once it is reading: what is played before is not
        heard, as with a real microphone. A no-op for the file microphone, whose recording
        is already there from the first read.
        """
        if self._player is not None:
            self.played_at.append(time.monotonic())
            self._playing.append(self._player())

    def wait_played(self, timeout: float = 30.0) -> None:
        """Return once everything played has reached the device (``pacat`` drains first)."""
        for proc in self._playing:
            _, err = proc.communicate(timeout=timeout)
            if proc.returncode:
                raise RigError(f"player exited {proc.returncode}: {err.decode(errors='replace')}")

    def unplug(self) -> None:
        """The microphone goes away mid-capture, as a USB one pulled out: the sound server
        stops, and the capturing process's next read fails."""
        self._stop_players()
        for proc in self._servers:
            _stop(proc)

    def freeze(self) -> None:
        """The sound server hangs (SIGSTOP): the microphone delivers nothing, and says nothing,
        as a frozen PulseAudio or a wedged USB device does."""
        for proc in self._servers:
            proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for proc in self._servers:
            proc.send_signal(signal.SIGCONT)

    def _stop_players(self) -> None:
        for proc in self._playing:
            _stop(proc)


def capture_missing(*, jack: bool = False) -> str:
    """Why real capture cannot run here ("" when it can), with what to install."""
    missing: list[str] = []
    try:
        import pyaudio  # noqa: F401
    except ImportError as exc:
        missing.append(
            f"PyAudio does not import ({exc}): pip install -e '.[mic]' after apt-get install "
            "portaudio19-dev"
        )
    tools = ["pulseaudio", "pacat"] + (["jackd", "jack_thru", "jack_lsp", "aplay"] if jack else [])
    absent = [tool for tool in tools if shutil.which(tool) is None]
    if absent:
        packages = APT_PACKAGES + (f" {JACK_APT_PACKAGES}" if jack else "")
        missing.append(f"{', '.join(absent)} not found: apt-get install {packages}")
    plugin_dirs = [*Path("/usr/lib").glob("*/alsa-lib"), *Path("/usr").glob("lib*/alsa-lib")]
    if not any((folder / "libasound_module_pcm_pulse.so").exists() for folder in plugin_dirs):
        missing.append("ALSA's pulse plugin is missing: apt-get install libasound2-plugins")
    return "; ".join(missing)


def pyaudio_capture_available(*, jack: bool = False) -> bool:
    return not capture_missing(jack=jack)


def require_capture(*, jack: bool = False) -> None:
    """Skip the calling test when capture cannot run here — but fail under CI, whose
    .ci/run installs everything, so that a broken install never hides as a skip."""
    from .harness import unavailable  # not at the top: this file also runs as a script

    reason = capture_missing(jack=jack)
    if reason:
        unavailable("real capture", reason)


def _isolated_env(root: Path) -> dict[str, str]:
    """The caller's environment with a private home: nothing of the user's sound setup
    (their ~/.asoundrc, their PulseAudio or JACK server) can leak into a test."""
    home, runtime = root / "home", root / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    client_conf = root / "client.conf"
    # A client that cannot reach our daemon must fail, not start one of its own.
    client_conf.write_text("autospawn = no\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULSE_", "JACK_", "ALSA_", "XDG_"))
        # Nor the developer's own keys: a client under test must never reach a real service.
        and not key.startswith(("BODHI_", "WYOMING_", "IAPP_"))
        and key not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
    }
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        XDG_CONFIG_HOME=str(home / ".config"),
        PULSE_CLIENTCONFIG=str(client_conf),
        # Unreachable unless a rig below points it at its own daemon.
        PULSE_SERVER=f"unix:{root / 'no-pulse'}",
        JACK_NO_START_SERVER="1",
        JACK_DEFAULT_SERVER=f"none-{root.name}",
        # No session bus: PulseAudio would otherwise try to autolaunch a dbus-daemon.
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={root / 'no-dbus'}",
    )
    return env


def _stop(proc: subprocess.Popen[Any]) -> None:
    # harness.stop_process, which this file cannot import when it runs as a script.
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _log(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@contextlib.contextmanager
def no_microphone() -> Iterator[Microphone]:
    """No input device: no sound card, no ~/.asoundrc, no sound server reachable."""
    with tempfile.TemporaryDirectory(prefix="no-mic-") as tmp:
        yield Microphone(_isolated_env(Path(tmp)), rate=16000)


@contextlib.contextmanager
def alsa_file_microphone(
    audio: bytes, rate: int = 16000, trailing_silence: float = 1.0
) -> Iterator[Microphone]:
    """ALSA's ``default`` captures ``audio`` (16-bit mono) through the file plugin, unclocked.

    The plugin converts nothing and accepts any rate: open the device at ``rate``, mono,
    16-bit, or the recording is misread. Past the end of the file it does not give clean
    silence — stale samples from its ring buffer recur every period — so the recording gets
    a second of zeros after it, which flushes the ring buffer before the end is reached.
    """
    with tempfile.TemporaryDirectory(prefix="file-mic-") as tmp:
        root = Path(tmp)
        env = _isolated_env(root)
        infile = root / "speech.raw"
        infile.write_bytes(audio + bytes(2 * round(rate * trailing_silence)))
        (root / "home" / ".asoundrc").write_text(
            "pcm.!default {\n"
            '    type file\n    slave.pcm "null"\n    file "/dev/null"\n'
            f'    infile "{infile}"\n    format "raw"\n'
            "}\n"
        )
        yield Microphone(env, rate)


def _wait_for_unix_socket(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RigError(f"sound server exited {proc.returncode}:\n{_log(log)}")
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(path))
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise RigError(f"sound server not ready after {STARTUP_TIMEOUT} s:\n{_log(log)}")
        time.sleep(0.01)


@contextlib.contextmanager
def pulse_microphone(audio: bytes, rate: int = 16000) -> Iterator[Microphone]:
    """A private PulseAudio daemon whose default source hears ``audio`` (16-bit mono at
    ``rate``) in real time once ``play()`` is called. Clients may ask for any rate: the
    daemon resamples, as a desktop's PulseAudio or PipeWire does."""
    with tempfile.TemporaryDirectory(prefix="pulse-mic-") as tmp:
        root = Path(tmp)
        env = _isolated_env(root)
        native = root / "native"
        env["PULSE_SERVER"] = f"unix:{native}"
        daemon_conf = root / "daemon.conf"
        daemon_conf.write_text("")  # not /etc/pulse/daemon.conf
        env["PULSE_CONFIG"] = str(daemon_conf)
        script = root / "mic.pa"
        # The socket opens last, so a client that can connect finds the source in place.
        # norewinds: a new stream is otherwise mixed into audio the sink already rendered
        # ahead, which its monitor has passed on; the first 1024 frames played went missing.
        script.write_text(
            f"load-module module-null-sink sink_name=mic rate={rate} channels=1 format=s16le "
            "norewinds=1\n"
            "set-default-sink mic\n"
            "set-default-source mic.monitor\n"
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={native}\n"
        )
        (root / "home" / ".asoundrc").write_text(
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n"
        )
        speech = root / "speech.raw"
        speech.write_bytes(audio)
        log = root / "pulseaudio.log"
        with log.open("wb") as log_file:
            daemon = subprocess.Popen(
                ["pulseaudio", "-n", f"--file={script}", "--daemonize=no",
                 "--exit-idle-time=-1", "--use-pid-file=no", "--realtime=no",
                 "--high-priority=no", "--disable-shm=yes", "--log-target=stderr"],
                env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            )  # fmt: skip

        def player() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                ["pacat", "--playback", "--device=mic", "--raw", f"--rate={rate}",
                 "--channels=1", "--format=s16le", str(speech)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip

        microphone = Microphone(env, rate, _player=player, _servers=[daemon])
        try:
            _wait_for_unix_socket(native, daemon, log)
            yield microphone
        finally:
            microphone.unplug()


# One name for every JACK rig on the machine, used by one rig at a time. JACK registers each
# server name in a machine-wide table of 8 slots in /dev/shm, and frees a slot whose server
# died uncleanly only when a server of the same name starts again: unique names would
# leak slots until "Too many servers already active".
JACK_SERVER = "wyoming-bodhi-capture-rig"


@contextlib.contextmanager
def _jack_rig_lock() -> Iterator[None]:
    with open(Path(tempfile.gettempdir()) / f"{JACK_SERVER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def fixed_rate_microphone(audio: bytes, rate: int = 48000) -> Iterator[Microphone]:
    """ALSA's ``default`` only captures at ``rate``; ``play()`` says ``audio`` (16-bit mono at
    ``rate``) into it in real time.

    A private JACK server with a dummy driver runs at ``rate``; ALSA's jack plugin, with no
    ``plug`` in front, takes only that rate, like a USB microphone opened as ``hw:``.
    ``jack_thru`` is the fixed point both ends connect to: aplay's output into its input,
    the capture from its output. (jackd's own loopback ports would spare that process, but
    under load they drop and repeat whole periods.)
    """
    with _jack_rig_lock(), tempfile.TemporaryDirectory(prefix="jack-mic-") as tmp:
        root = Path(tmp)
        env = _isolated_env(root)
        server = JACK_SERVER
        env["JACK_DEFAULT_SERVER"] = server
        # Debian's jackd asks the session bus for the sound card: there is none to reserve.
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        (root / "home" / ".asoundrc").write_text(
            "pcm.!default { type jack; capture_ports { 0 jack_thru:output_1 } }\n"
            "pcm.speaker {\n"
            "    type plug\n"
            "    slave.pcm { type jack; playback_ports { 0 jack_thru:input_1 } }\n"
            "}\n"
        )
        speech = root / "speech.raw"
        speech.write_bytes(audio)
        log = root / "jack.log"
        # --sync: the server waits for late clients instead of skipping them. Without it, on
        # a busy machine (no realtime scheduling here) whole periods went missing.
        jackd = ["jackd", "--no-realtime", "--sync", f"--name={server}", "-d", "dummy",
                 f"--rate={rate}", "--capture=1", "--playback=1", "--period=1024"]  # fmt: skip
        with log.open("wb") as log_file:
            daemon = subprocess.Popen(
                jackd, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
            )

        def player() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                ["aplay", "-q", "-D", "speaker", "-t", "raw", "-f", "S16_LE", "-r", str(rate),
                 "-c", "1", str(speech)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip

        # Stopped in this order: jack_thru first, leaving the server cleanly; jackd stopped
        # first can die of SIGPIPE on its way out and not unregister.
        servers = [daemon]
        microphone = Microphone(env, rate, _player=player, _servers=servers)
        try:
            _wait_for_jack(env, "system:capture_1", daemon, log)
            with log.open("ab") as log_file:
                through = subprocess.Popen(
                    ["jack_thru"], env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=log_file,
                )  # fmt: skip
            servers.insert(0, through)
            # jack_thru connects to the system ports, then sets its signal handlers: stopped
            # before that, it dies without leaving the server, and jackd then hangs on SIGTERM.
            _wait_for_jack(env, "jack_thru:output_1", through, log, connected="system:playback_1")
            yield microphone
        finally:
            microphone.unplug()
            _remove_jack_leftovers(server)


def _remove_jack_leftovers(server: str) -> None:
    """JACK keeps a socket and semaphores per server and client in /dev/shm and does not
    always remove them (a client that exits on the server's shutdown leaves its semaphore).
    Only this server's, by its name; JACK's shared registry stays."""
    for path in Path("/dev/shm").glob(f"jack*_{server}_*"):
        with contextlib.suppress(OSError):
            path.unlink()


def _jack_connections(env: dict[str, str]) -> dict[str, list[str]]:
    """Every JACK port, with the ports it is connected to (``jack_lsp -c``)."""
    listing = subprocess.run(
        ["jack_lsp", "-c"], env=env, capture_output=True, text=True, timeout=10
    )
    ports: dict[str, list[str]] = {}
    for line in listing.stdout.splitlines() if listing.returncode == 0 else []:
        if line.startswith((" ", "\t")) and ports:
            ports[list(ports)[-1]].append(line.strip())
        elif line.strip():
            ports[line.strip()] = []
    return ports


def _wait_for_jack(
    env: dict[str, str],
    port: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    connected: str | None = None,
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        ports = _jack_connections(env)
        if port in ports and (connected is None or connected in ports[port]):
            return
        if proc.poll() is not None:
            raise RigError(f"JACK exited {proc.returncode}:\n{_log(log)}")
        if time.monotonic() > deadline:
            raise RigError(f"no JACK port {port} after {STARTUP_TIMEOUT} s:\n{_log(log)}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------
# The capturing client: ``python tests/capture.py record ...`` in a rig's environment.


@contextlib.contextmanager
def _keep_stderr() -> Iterator[list[str]]:
    yield []


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "errno": getattr(exc, "errno", None),
        "strerror": getattr(exc, "strerror", None),
        "args": [repr(arg) for arg in exc.args],
    }


@contextlib.contextmanager
def stderr_to_file() -> Iterator[list[str]]:
    """Point file descriptor 2 at a temporary file for the block; what was written there is
    appended to the yielded list. It catches every library's output, PortAudio's own
    ("Expression 'paInvalidSampleRate' failed in …") included, but for the whole process:
    use it only while nothing else runs that could write to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def record(
    seconds: float, rate: int, out: Path, device: int | None, quiet: str | None
) -> dict[str, Any]:
    """Capture ``seconds`` of 16-bit mono from the default input; report what happened.

    ``quiet``: None lets the sound libraries print; "handlers" installs
    :func:`quiet_sound_libraries`; "fd" wraps start-up and opening in :func:`stderr_to_file`
    and reports what it caught as ``hidden_stderr``.
    """
    if quiet == "handlers":
        quiet_sound_libraries()
    hide = stderr_to_file if quiet == "fd" else _keep_stderr
    import pyaudio

    report: dict[str, Any] = {"rate": rate}
    began = time.monotonic()
    with hide() as hidden:
        audio = pyaudio.PyAudio()
    report["init_s"] = time.monotonic() - began
    try:
        report["devices"] = [
            {key: info[key] for key in ("index", "name", "maxInputChannels", "defaultSampleRate")}
            for info in map(audio.get_device_info_by_index, range(audio.get_device_count()))
        ]
        try:
            report["default_input"] = audio.get_default_input_device_info()["name"]
        except OSError as exc:
            report["default_input_error"] = _error(exc)
        began = time.monotonic()
        try:
            with hide() as hidden_at_open:
                stream = audio.open(
                    format=pyaudio.paInt16,
                    channels=1,
                    rate=rate,
                    input=True,
                    input_device_index=device,
                    frames_per_buffer=1024,
                )
        except (OSError, ValueError) as exc:
            report["open_error"] = _error(exc)
            return report
        finally:
            if quiet == "fd":
                report["hidden_stderr"] = "".join(hidden + hidden_at_open)
        report["open_s"] = time.monotonic() - began
        want = round(seconds * rate)
        captured = bytearray()
        # CLOCK_MONOTONIC is one clock for every process: the test compares it with its own.
        report["read_began"] = began = time.monotonic()
        # The test starts playing on this line: nothing played earlier could be heard.
        print("capturing", flush=True)
        try:
            while len(captured) < 2 * want:
                frames = min(1024, want - len(captured) // 2)
                captured += stream.read(frames, exception_on_overflow=False)
        except OSError as exc:
            report["read_error"] = _error(exc)
        report["read_s"] = time.monotonic() - began
        stream.close()
        out.write_bytes(bytes(captured))
        return report
    finally:
        audio.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description="The rig's capturing client.")
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="capture from the default input, report as JSON")
    rec.add_argument("--seconds", type=float, default=3.0)
    rec.add_argument("--rate", type=int, default=16000)
    rec.add_argument("--device", type=int, default=None)
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument(
        "--quiet", choices=["handlers", "fd"], help="keep the sound libraries' chatter off stderr"
    )
    args = parser.parse_args()
    report = record(args.seconds, args.rate, args.out, args.device, args.quiet)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
