"""Capturing from a microphone with PyAudio (PortAudio), as a stream of chunks on the event
loop, and the errors a person can act on.

PyAudio's reads block, so a thread reads and hands each chunk to the loop. PortAudio, ALSA
and JACK print pages of probing noise on a machine with few sound devices (``ALSA lib
confmisc.c: cannot find card '0'`` …); that is kept from the user's terminal unless
``--debug``. What they do mean is said in one line: no input device, a device that refuses
the rate (then its own rate is used and the server converts), a microphone that goes away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from .cli import UsageError

SAMPLE_WIDTH = 2
CHUNK_SECONDS = 0.02
CAPTURE_RATES = range(8000, 192_001)
"""Rates the clients take, as the server does."""
STALL_SECONDS = 3.0
"""A microphone that delivers nothing for this long (wall clock) has gone: a frozen sound
server, a wedged USB or Bluetooth device. A live one delivers every 20 ms."""
MAX_QUEUED_SECONDS = 30.0
"""Captured audio held while the loop is busy elsewhere; past this it is dropped, oldest
kept, rather than growing without bound behind a stalled server."""

# PortAudio's error numbers, as PyAudio raises them in OSError.errno.
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_DEVICE_UNAVAILABLE = -9985

INSTALL_HINT = (
    "the microphone needs PyAudio: pip install pyaudio (in a clone: pip install '.[mic]'); "
    "on Debian or Raspberry Pi OS first: sudo apt install portaudio19-dev"
)


class MicrophoneError(Exception):
    """The microphone cannot be used; the message says why."""


class MicrophoneLost(MicrophoneError):
    """The microphone stopped delivering audio while capturing (unplugged, or its sound
    server went away)."""


@dataclass(frozen=True, slots=True)
class Device:
    index: int
    name: str
    channels: int
    """Input channels it has."""
    rate: int
    """Its default sample rate."""
    default: bool = False


# The handlers stay referenced for the life of the process: the libraries keep calling them.
_QUIET_HANDLERS: list[Any] = []


def quiet_sound_libraries() -> None:
    """Route ALSA's and JACK's diagnostics away from stderr, for the life of the process.
    Both take a handler, set before PyAudio starts; a library not installed is skipped."""
    if _QUIET_HANDLERS:
        return
    # void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
    # The variadic tail is never read, so a fixed-argument callback is safe.
    alsa_handler = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )
    jack_handler = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
    with contextlib.suppress(OSError):
        asound = ctypes.CDLL("libasound.so.2")
        _QUIET_HANDLERS.append(alsa_handler(lambda *_: None))
        asound.snd_lib_error_set_handler(_QUIET_HANDLERS[-1])
    with contextlib.suppress(OSError):
        jack = ctypes.CDLL("libjack.so.0")
        _QUIET_HANDLERS.append(jack_handler(lambda _: None))
        jack.jack_set_error_function(_QUIET_HANDLERS[-1])
        jack.jack_set_info_function(_QUIET_HANDLERS[-1])


class _QuietStderr:
    """File descriptor 2 to /dev/null for as long as the microphone is in use, with Python's
    own ``sys.stderr`` moved to a copy of the real one: PortAudio itself prints there
    ("Expression 'paInvalidSampleRate' failed …", and more when a device goes away) with no
    handler to set, while our own messages and tracebacks still reach the terminal."""

    def __init__(self) -> None:
        self._saved_fd: int | None = None
        self._saved_stream: Any = None

    def __enter__(self) -> None:
        if sys.stderr is None:
            return
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        self._saved_stream = sys.stderr
        sys.stderr = os.fdopen(os.dup(self._saved_fd), "w", buffering=1, errors="replace")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *_: object) -> None:
        if self._saved_fd is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            sys.stderr.close()
        sys.stderr = self._saved_stream
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None


def _pyaudio() -> Any:
    try:
        import pyaudio  # type: ignore[import-untyped]
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return pyaudio


class Microphone:
    """``with Microphone(quiet=True) as mic:`` — PortAudio started, devices listed."""

    def __init__(self, *, quiet: bool = True) -> None:
        self._quiet = quiet
        self._pyaudio = _pyaudio()
        self._audio: Any = None
        self._captures: list[Capture] = []
        self._stderr = _QuietStderr()

    def __enter__(self) -> Microphone:
        if self._quiet:
            quiet_sound_libraries()
            self._stderr.__enter__()
        try:
            self._audio = self._pyaudio.PyAudio()
        except BaseException:
            self._stderr.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        try:
            for capture in self._captures:
                capture.close()
            # A read still blocked in a wedged device: terminating PortAudio under it can
            # crash the process; leaving it to the exit cannot.
            if self._audio is not None and not any(c.reading for c in self._captures):
                self._audio.terminate()
            self._audio = None
        finally:
            self._stderr.__exit__()

    def devices(self) -> list[Device]:
        """The input devices."""
        audio = self._audio
        try:
            default_index = int(audio.get_default_input_device_info()["index"])
        except OSError:
            default_index = None
        found = []
        for index in range(audio.get_device_count()):
            info = audio.get_device_info_by_index(index)
            channels = int(info.get("maxInputChannels", 0))
            if channels > 0:
                found.append(
                    Device(
                        index,
                        str(info.get("name", f"device {index}")),
                        channels,
                        int(info.get("defaultSampleRate", 0)),
                        index == default_index,
                    )
                )
        return found

    def find(self, wanted: str | None) -> Device:
        """The device ``--device`` names (an index, or part of a name), else the default."""
        devices = self.devices()
        if not devices:
            raise MicrophoneError(
                "no microphone found: PortAudio sees no input device; plug one in, or check "
                "that this user may use the sound devices (the 'audio' group)"
            )
        if wanted is None:
            for device in devices:
                if device.default:
                    return device
            raise MicrophoneError(
                "no default microphone: pick one with --device (see --list-devices)"
            )
        if wanted.strip().isdecimal():
            for device in devices:
                if device.index == int(wanted):
                    return device
            raise UsageError(
                f"--device {wanted}: no input device has that index{_listing(devices)}"
            )
        matches = [device for device in devices if wanted.casefold() in device.name.casefold()]
        exact = [device for device in matches if device.name.casefold() == wanted.casefold()]
        if len(exact) == 1 or len(matches) == 1:
            return (exact or matches)[0]
        if not matches:
            raise UsageError(
                f"--device {wanted!r}: no input device is called that{_listing(devices)}"
            )
        raise UsageError(
            f"--device {wanted!r} matches {len(matches)} devices; give its index{_listing(matches)}"
        )

    def open(self, device: Device, rate: int) -> Capture:
        """Capture 16-bit audio from ``device``: mono at ``rate`` if it can, else at its own
        rate, else with its own channel count; the server (or the pipeline) converts."""
        pyaudio = self._pyaudio
        tries = [(rate, 1)]
        own = device.rate if device.rate in CAPTURE_RATES else None
        if own and own != rate:
            tries.append((own, 1))
        if device.channels > 1:
            tries.append((own or rate, min(device.channels, 2)))
        refused: list[str] = []
        for try_rate, channels in tries:
            frames = max(1, round(try_rate * CHUNK_SECONDS))
            try:
                stream = self._audio.open(
                    format=pyaudio.paInt16,
                    channels=channels,
                    rate=try_rate,
                    input=True,
                    input_device_index=device.index,
                    frames_per_buffer=frames,
                )
            except (OSError, ValueError) as err:
                code = err.errno if isinstance(err, OSError) else None
                if code in (PA_INVALID_SAMPLE_RATE, PA_INVALID_CHANNEL_COUNT):
                    refused.append(f"{try_rate} Hz {'mono' if channels == 1 else 'stereo'}")
                    continue
                raise MicrophoneError(_open_failure(device, err)) from None
            capture = Capture(stream, device, try_rate, channels, frames)
            self._captures.append(capture)
            return capture
        raise MicrophoneError(f"{device.name} refuses to capture at {', '.join(refused)}")


def _listing(devices: list[Device]) -> str:
    shown = "; ".join(f"{d.index}: {d.name}" for d in devices)
    return f" (input devices: {shown})"


def _open_failure(device: Device, err: Exception) -> str:
    code = err.errno if isinstance(err, OSError) else None
    if code == PA_DEVICE_UNAVAILABLE:
        return f"{device.name} is busy: another program is using it"
    if code == PA_INVALID_DEVICE:
        return f"{device.name} cannot be opened for capture (is it still plugged in?)"
    detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return f"cannot open {device.name}: {detail}"


_END = object()


class Capture:
    """An open input stream. :meth:`start` begins reading in a thread; :meth:`next` gives the
    audio as read. Time is the audio's, counted in samples."""

    def __init__(self, stream: Any, device: Device, rate: int, channels: int, frames: int):
        self._stream = stream
        self.device = device
        self.rate = rate
        self.channels = channels
        self._frames = frames
        self._queue: collections.deque[bytes | BaseException | object] = collections.deque()
        self._ready = asyncio.Event()
        self._max_queued = max(1, round(MAX_QUEUED_SECONDS * rate / frames))
        self.dropped = 0
        """Chunks dropped because nobody took them in time."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def bytes_per_second(self) -> int:
        return self.rate * SAMPLE_WIDTH * self.channels

    @property
    def reading(self) -> bool:
        """A read is (still) under way in the capture thread."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def read() -> None:
            try:
                while not self._stop.is_set():
                    # An overflow (we were late) loses samples; raising would lose the stream.
                    chunk = self._stream.read(self._frames, exception_on_overflow=False)
                    loop.call_soon_threadsafe(self._put, chunk)
            except OSError as err:
                detail = err.strerror or str(err)
                problem = MicrophoneLost(f"{self.device.name} stopped delivering audio ({detail})")
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._put, problem)
            except RuntimeError:
                pass  # the loop is closed: nobody is listening

        self._thread = threading.Thread(target=read, name="microphone", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | object) -> None:
        if isinstance(item, bytes) and len(self._queue) >= self._max_queued:
            # The oldest is kept: what was said first, in order, and never a command whose
            # start is gone (a device that delivers faster than real time, as a file does,
            # fills the queue within milliseconds of a busy loop).
            self.dropped += 1
            return
        self._queue.append(item)
        self._ready.set()

    def wake(self) -> None:
        """Make :meth:`next` return None once, for whoever waits there to look around (Ctrl-C,
        the server's answer); safe from a signal handler run by the loop."""
        self._put(_END)

    async def next(self) -> bytes | None:
        """The next chunk, or None when woken. Raises :class:`MicrophoneLost`, also when the
        device delivers nothing for ``STALL_SECONDS``."""
        while not self._queue:
            self._ready.clear()
            try:
                async with asyncio.timeout(STALL_SECONDS):
                    await self._ready.wait()
            except TimeoutError:
                raise MicrophoneLost(
                    f"{self.device.name} stopped delivering audio (nothing for {STALL_SECONDS:g} s)"
                ) from None
        item = self._queue.popleft()
        if isinstance(item, BaseException):
            raise item
        if item is _END:
            return None
        assert isinstance(item, bytes)
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            # A read returns within a chunk; a wedged device must not hang the exit.
            self._thread.join(timeout=1.0)
            if self._thread.is_alive():
                return  # closing the stream under a read could crash PortAudio
        with contextlib.suppress(OSError):
            self._stream.stop_stream()
        with contextlib.suppress(OSError):
            self._stream.close()
