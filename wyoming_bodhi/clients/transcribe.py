"""``wyoming-bodhi-transcribe FILE.wav``: a Wyoming client that prints a transcript.

It sends a WAV file the way Home Assistant sends a voice command (``transcribe``,
``audio-start``, ``audio-chunk``…, ``audio-stop``) to any Wyoming speech-to-text server,
prints each streamed ``transcript-chunk`` as it arrives (with ``--stream``) and then the
final transcript. Handy for trying the server, the demo mode, or a satellite's recordings.

Exit status: 0 with a transcript; 1 when the server could not be reached or gave none; 2 for
anything the user can fix (the file, an option), said in one line before any connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, TextIO

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error

from .. import __version__
from ..settings import Settings, SettingsError, load_client_settings
from ..wav import WavError, WavHeader, WireFormat, audio_chunks, read_header
from ..wire import MAX_PAYLOAD_BYTES
from .cli import (
    EXIT_INTERRUPTED,
    EXIT_SERVER,
    EXIT_USAGE,
    Parser,
    UsageError,
    quiet_stdout,
    seconds,
)
from .connection import (
    DEFAULT_URI,
    Connector,
    ServerProblem,
    connect,
    parse_uri,
    read_failure,
    reason,
)
from .console import StatusLine, StatusLineHandler, say
from .direct import Completed, DirectEngine, Failed, Finished, Partial
from .remote import hang_up

PROG: Final = "wyoming-bodhi-transcribe"
CHUNK_SECONDS: Final = 0.02
MAX_CHUNK_BYTES: Final = MAX_PAYLOAD_BYTES // 4
"""An audio-chunk's payload at most (64 KiB): 20 ms of a wide file (192 kHz, 32-bit,
24 channels) is 737 kB, and a server takes 256 KiB at most in one event (this one; others
may take less)."""
DEFAULT_TIMEOUT: Final = 60.0

# -- options ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Send a WAV file to a Wyoming speech-to-text server and print the transcript.",
        epilog="Exit status: 0 transcript printed, 1 server unreachable or no transcript, "
        "2 bad file or option.",
    )
    parser.add_argument(
        "wav",
        help="a WAV file: 8/16/24/32-bit integer or 32/64-bit float, any rate and channel count",
    )
    parser.add_argument(
        "--uri",
        default=DEFAULT_URI,
        help="the server: tcp://HOST:PORT or unix://PATH (default: %(default)s)",
    )
    parser.add_argument("--language", help="language tag to request, e.g. hi, ta-IN")
    parser.add_argument("--model", help="model name to request, e.g. ta-general-v2-8khz")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="send at the speed of speech, as a microphone would (shows progress on a terminal)",
    )
    parser.add_argument(
        "--stream", action="store_true", help="also print each streamed phrase (to stderr)"
    )
    parser.add_argument(
        "--timeout",
        type=seconds(allow_zero=False),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="give up when no transcript has come this long after the audio was sent "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--wait",
        type=seconds(allow_zero=True),
        default=0.0,
        metavar="SECONDS",
        help="if the server refuses the connection, keep trying this long, for a server "
        "just started in the background (default: %(default)g, do not wait)",
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        help="no Wyoming server: stream to the engine itself at the speed of speech, with "
        "the server's credentials (BODHI_API_KEY, IAPP_API_KEY, their *_FILE forms, or "
        "--config); shows the phrase being heard on a terminal",
    )
    parser.add_argument(
        "--rest",
        action="store_true",
        help="no Wyoming server: post the whole file to Bodhi's non-streaming API, with the "
        "server's credentials and settings (environment, *_FILE, --config)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="with --direct or --rest: the server's YAML or JSON settings file (env BODHI_CONFIG)",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


# -- the file ---------------------------------------------------------------------------


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


# -- progress on a terminal -------------------------------------------------------------


class Progress:
    """One ``sending 1.2 / 3.0 s`` status line on a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO, total: float | None, enabled: bool) -> None:
        self.line = StatusLine(stream, live=enabled)
        self._total = "" if total is None else f" / {total:.1f} s"
        self._tenths = -1
        self._sending = ""
        self._partial = ""

    def update(self, seconds: float) -> None:
        """The audio sent so far; redrawn once per tenth of a second of audio."""
        # The epsilon keeps 50 × 0.02 s from showing as 0.9.
        tenths = int(seconds * 10 + 1e-6)
        if tenths != self._tenths:
            self._tenths = tenths
            self._sending = f"sending {tenths / 10:.1f}{self._total or ' s'}"
            self._draw()

    def done(self, seconds: float) -> None:
        """All audio is sent: say what the wait is for until it is over."""
        self._sending = f"sent {seconds:.1f} s; waiting for the transcript"
        self._draw()

    def partial(self, text: str) -> None:
        """What the engine hears of the phrase being spoken (``--direct``), after the
        progress; a completed phrase clears it."""
        self._partial = text
        self._draw()

    def _draw(self) -> None:
        self.line.show(f"{self._sending}  … {self._partial}" if self._partial else self._sending)

    def message(self, line: str) -> None:
        """Print a line of its own (a streamed phrase) without garbling the progress line."""
        self._partial = ""
        self.line.clear()
        self.line.message(line)
        self._draw()

    def clear(self) -> None:
        self.line.clear()


# -- talking to the server --------------------------------------------------------------


async def _send(
    client: AsyncClient,
    recording: Recording,
    request: Transcribe,
    realtime: bool,
    progress: Progress,
) -> None:
    loop = asyncio.get_running_loop()
    rate, width, channels = recording.wire
    bytes_per_second = rate * width * channels
    await client.write_event(request.event())
    await client.write_event(AudioStart(rate, width, channels).event())
    started = loop.time()
    sent_seconds = 0.0
    for audio in recording.chunks():
        await client.write_event(AudioChunk(rate, width, channels, audio).event())
        sent_seconds += len(audio) / bytes_per_second
        progress.update(sent_seconds)
        if realtime:
            # An absolute schedule, so the pace does not drift however long the file.
            await asyncio.sleep(max(0.0, started + sent_seconds - loop.time()))
    await client.write_event(AudioStop().event())
    progress.done(sent_seconds)


async def _answer(client: AsyncClient, uri: str, stream: bool, progress: Progress) -> str:
    try:
        while (event := await client.read_event()) is not None:
            data = event.data or {}
            text = data.get("text", "")
            if not isinstance(text, str):
                raise ServerProblem(f"{uri} sent an invalid {event.type} event (text)")
            if stream and event.type == "transcript-chunk":
                progress.message(f"… {text.strip()}")
            elif Transcript.is_type(event.type):
                return text
            elif Error.is_type(event.type):
                code = data.get("code")
                raise ServerProblem(f"{uri} answered with an error ({code}): {text}")
    except Exception as err:
        raise read_failure(uri, err) from None
    raise ServerProblem(f"{uri} closed the connection without a transcript")


async def exchange(
    client: AsyncClient,
    uri: str,
    recording: Recording,
    request: Transcribe,
    *,
    realtime: bool,
    stream: bool,
    timeout: float,
    progress: Progress,
) -> str:
    """Send the recording, return the transcript; `ServerProblem` for anything else."""
    loop = asyncio.get_running_loop()
    sender = asyncio.create_task(_send(client, recording, request, realtime, progress))
    answer = asyncio.create_task(_answer(client, uri, stream, progress))
    # Until the audio is all sent, allow for its duration too when it goes at speech speed;
    # of a length not known (a pipe), no deadline until it is sent.
    pacing: float | None = 0.0
    if realtime:
        pacing = recording.seconds
    audio_sent = False
    try:
        first = None if pacing is None else loop.time() + pacing + timeout
        async with asyncio.timeout_at(first) as deadline:
            await asyncio.wait({sender, answer}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not answer.done():
                # A send that failed on the socket means the server went: its answer (an
                # error, or the close) says more than the broken pipe does.
                if isinstance(sender.exception(), FileReadError):
                    sender.result()
                audio_sent = sender.exception() is None
                deadline.reschedule(loop.time() + timeout)
            return await answer
    except TimeoutError:
        after = " of the end of the audio" if audio_sent else ": the server stopped taking audio"
        raise ServerProblem(f"{uri}: no transcript within {timeout:g} s{after}") from None
    finally:
        progress.clear()
        for task in (sender, answer):
            task.cancel()
        for task in (sender, answer):
            # Whatever they raised has been acted on already, or no longer matters.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def transcribe(
    recording: Recording,
    uri: str,
    connector: Connector,
    request: Transcribe,
    *,
    realtime: bool = False,
    stream: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    wait: float = 0.0,
    progress: Progress | None = None,
) -> str:
    """Connect (waiting up to ``wait`` s for the server), send, and return the transcript."""
    if progress is None:
        progress = Progress(sys.stderr, recording.seconds, enabled=False)
    client = await connect(connector, uri, wait, timeout)
    try:
        return await exchange(
            client,
            uri,
            recording,
            request,
            realtime=realtime,
            stream=stream,
            timeout=timeout,
            progress=progress,
        )
    finally:
        await hang_up(client)


async def transcribe_direct(
    recording: Recording,
    settings: Settings,
    request: Transcribe,
    *,
    stream: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
) -> str:
    """Stream the recording to the engine itself at the speed of speech, through the
    server's pipeline in this process; return the transcript."""
    if progress is None:
        progress = Progress(sys.stderr, recording.seconds, enabled=False)
    seconds = recording.seconds
    if seconds is not None and seconds > settings.max_audio:
        raise UsageError(
            f"{recording.path} holds {seconds:.0f} s of audio; one request takes at most "
            f"{settings.max_audio:g} s (max_audio: raise it with BODHI_MAX_AUDIO)"
        )
    async with DirectEngine(settings) as engine:
        engine.check(request)
        direct = engine.request(request)
        title = direct.engine_title
        loop = asyncio.get_running_loop()
        # No deadline while the audio is sent (the pipeline bounds that): from its end on,
        # the transcript gets ``timeout``.
        deadline = asyncio.timeout(None)

        async def send() -> None:
            rate, width, channels = recording.wire
            bytes_per_second = rate * width * channels
            started = loop.time()
            sent = 0.0
            for audio in recording.chunks():
                if direct.finished:
                    return
                await direct.add_audio(audio, rate, width, channels)
                sent += len(audio) / bytes_per_second
                progress.update(sent)
                # An absolute schedule, so the pace does not drift however long the file.
                await asyncio.sleep(max(0.0, started + sent - loop.time()))
            await direct.end_audio()
            progress.done(sent)
            deadline.reschedule(loop.time() + timeout)

        async def answer() -> str:
            async for update in direct.updates():
                if isinstance(update, Partial):
                    progress.partial(update.text)
                elif isinstance(update, Completed):
                    if stream:
                        progress.message(f"… {update.text}")
                    else:
                        progress.partial("")
                elif isinstance(update, Finished):
                    return update.text
                elif isinstance(update, Failed):
                    if update.code == "audio-too-long":
                        raise UsageError(
                            f"{recording.path} is longer than {settings.max_audio:g} s "
                            "(max_audio: raise it with BODHI_MAX_AUDIO)"
                        )
                    raise ServerProblem(f"{title} failed ({update.code}): {update.text}")
            raise ServerProblem(f"{title} gave no transcript")

        sender = asyncio.create_task(send())
        try:
            async with deadline:
                text = await answer()
            return text
        except TimeoutError:
            raise ServerProblem(
                f"{title}: no transcript within {timeout:g} s of the end of the audio"
            ) from None
        finally:
            progress.clear()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            await direct.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, as a filter does.
        quiet_stdout()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)

    def fail(code: int, message: str) -> int:
        say(sys.stderr, f"{PROG}: {message}")
        return code

    def warn(message: str) -> None:
        say(sys.stderr, f"{PROG}: {message}")

    try:
        connector = parse_uri(args.uri)
        recording = open_recording(args.wav, warn)
    except UsageError as err:
        return fail(EXIT_USAGE, str(err))
    if args.rest:
        from .rest import run as run_rest

        with recording.file:
            return run_rest(args, recording, fail)
    progress = Progress(
        sys.stderr,
        recording.seconds,
        enabled=bool((args.realtime or args.direct) and sys.stderr and sys.stderr.isatty()),
    )
    settings: Settings | None = None
    if args.direct:
        try:
            settings = load_client_settings(args.config, os.environ)
        except SettingsError as err:
            recording.file.close()
            return fail(EXIT_USAGE, str(err))
        # The pipeline's own warnings (a retry, an engine's trouble), one line each, above
        # the progress line; the final error is said once, below.
        pipeline_log = logging.getLogger("wyoming_bodhi")
        pipeline_log.addHandler(StatusLineHandler(progress.line, PROG))
        pipeline_log.propagate = False
    request = Transcribe(name=args.model, language=args.language)
    with recording.file:
        try:
            if settings is not None:
                run = transcribe_direct(
                    recording,
                    settings,
                    request,
                    stream=args.stream,
                    timeout=args.timeout,
                    progress=progress,
                )
            else:
                run = transcribe(
                    recording,
                    args.uri,
                    connector,
                    request,
                    realtime=args.realtime,
                    stream=args.stream,
                    timeout=args.timeout,
                    wait=args.wait,
                    progress=progress,
                )
            text = asyncio.run(run)
        except UsageError as err:
            return fail(EXIT_USAGE, str(err))
        except ServerProblem as err:
            return fail(EXIT_SERVER, str(err))
        except FileReadError as err:
            return fail(EXIT_USAGE, str(err))
        except KeyboardInterrupt:
            progress.clear()
            return EXIT_INTERRUPTED
    say(sys.stdout, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
