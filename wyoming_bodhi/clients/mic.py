"""``wyoming-bodhi-mic``: speak into a microphone and see what the recogniser hears, live.

It captures with PyAudio and streams to any Wyoming speech-to-text server (ours, or anyone's)
the way a satellite does, printing each phrase the moment the server streams it and then the
transcript. With ``--direct`` it talks to the engine itself, through the server's own
pipeline in this process, and shows the phrase being spoken as it changes.

A request ends when the server ends it (a server that finds the end itself:
``requires_external_vad: false``, like ours with ``--endpointing``), after ``--silence``
seconds of quiet following speech, after ``--seconds`` of audio, or on Ctrl-C, which still
waits for the transcript (a second Ctrl-C quits at once). ``--continuous`` listens for one
command after another.

Exit status: 0 when it listened and got its answers; 1 when the server or engine failed or
the microphone stopped; 2 for anything the user can fix (an option, a device, credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TextIO

from wyoming.asr import Transcribe

from .. import __version__
from ..pipeline.audio import UnsupportedAudioFormat
from ..settings import SettingsError, load_client_settings
from .cli import (
    EXIT_INTERRUPTED,
    EXIT_SERVER,
    EXIT_USAGE,
    Parser,
    UsageError,
    quiet_stdout,
    rate,
    seconds,
)
from .connection import DEFAULT_URI, ServerProblem, parse_uri
from .console import StatusLine, StatusLineHandler, say
from .direct import ClientRequest, Completed, DirectEngine, Failed, Finished, Partial
from .microphone import SAMPLE_WIDTH, Capture, Microphone, MicrophoneError, MicrophoneLost
from .remote import WyomingRequest, describe
from .speech import Activity, SpeechDetector, meter

PROG: Final = "wyoming-bodhi-mic"
DEFAULT_RATE: Final = 16000
DEFAULT_SILENCE: Final = 1.0
"""Quiet after speech that ends a command when the client has to find the end."""
DEFAULT_TIMEOUT: Final = 30.0
PREROLL_SECONDS: Final = 0.3
"""Audio kept from before speech is detected (--continuous): a command's first sound is
quieter than what triggers the detector."""
METER_SECONDS: Final = 0.1
NO_SPEECH_SECONDS: Final = 15.0
"""A command the client must find the end of, with no speech in it this long, is over."""

RequestOpener = Callable[[tuple[int, int, int]], Awaitable[ClientRequest]]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Capture from a microphone and print what a speech-to-text server (or, "
        "with --direct, the engine itself) hears.",
        epilog="Exit status: 0 listened and answered, 1 server, engine or microphone failed, "
        "2 bad option, device or settings. Ctrl-C ends the command and waits for its "
        "transcript; twice quits.",
    )
    target = parser.add_argument_group("where the audio goes")
    target.add_argument(
        "--uri",
        default=DEFAULT_URI,
        help="the Wyoming server: tcp://HOST:PORT or unix://PATH (default: %(default)s)",
    )
    target.add_argument(
        "--direct",
        action="store_true",
        help="talk to the engine itself, with the server's credentials (BODHI_API_KEY, "
        "IAPP_API_KEY, their *_FILE forms, or --config): shows the phrase being spoken",
    )
    target.add_argument("--config", metavar="FILE", help="with --direct: the server's config file")
    target.add_argument("--language", help="language tag to request, e.g. hi, ta-IN, th")
    target.add_argument("--model", help="model name to request, e.g. ta-general-v2-8khz")
    capture = parser.add_argument_group("the microphone")
    capture.add_argument(
        "--device", metavar="NAME|INDEX", help="input device (default: the system's)"
    )
    capture.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    capture.add_argument(
        "--rate",
        type=rate,
        default=DEFAULT_RATE,
        help="sample rate to capture at; a device that refuses it is used at its own "
        "(default: %(default)s)",
    )
    ending = parser.add_argument_group("when a command ends")
    ending.add_argument(
        "--silence",
        type=seconds(allow_zero=True, most=600),
        metavar="SECONDS",
        help=f"end after this much quiet following speech; 0: never (default: {DEFAULT_SILENCE:g} "
        "unless the server finds the end itself)",
    )
    ending.add_argument(
        "--seconds",
        type=seconds(allow_zero=False, most=3600),
        metavar="N",
        help="end after N s of audio (alone: record N s, pauses and all; with --silence: "
        "whichever comes first)",
    )
    ending.add_argument(
        "--continuous",
        action="store_true",
        help="listen for one command after another, each starting when speech does",
    )
    ending.add_argument(
        "--timeout",
        type=seconds(allow_zero=False),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="give up on a transcript not there this long after the audio ended "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the sound libraries' and the pipeline's logs"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


class Output:
    """What the person sees. Direct: each completed phrase is a line on stdout and the phrase
    being spoken is redrawn in place below. Through a server: phrases as ``… text`` lines on
    stderr, each transcript a line on stdout. A level meter on a terminal; plain lines in a
    pipe. Whatever a server or engine sent is shown with its control characters escaped."""

    def __init__(self, direct: bool, stdout: TextIO | None, stderr: TextIO | None) -> None:
        self.direct = direct
        self._stdout = stdout
        self._stderr = stderr
        on_stdout = direct and stdout is not None and stdout.isatty()
        self.status = StatusLine(stdout if on_stdout else stderr)
        self._status_on_stdout = on_stdout
        self._partial = ""

    def notice(self, text: str) -> None:
        """A line for the person, on stderr."""
        if self._status_on_stdout:
            self.status.clear()
            say(self._stderr, f"{PROG}: {text}")
        else:
            self.status.message(f"{PROG}: {text}")

    def level(self, dbfs: float, state: str) -> None:
        if not self._partial:
            self.status.show(f"{meter(dbfs)} {state}")

    def partial(self, text: str) -> None:
        """The phrase being spoken; "" when it is over (completed, or left out)."""
        self._partial = text
        if text:
            self.status.show(f"… {text}")
        else:
            self.status.clear()

    def phrase(self, text: str) -> None:
        self._partial = ""
        if self.direct:
            self.status.clear()
            say(self._stdout, text)
        else:
            self.status.message(f"… {text}")

    def transcript(self, text: str) -> None:
        self._partial = ""
        self.status.clear()
        if not text:
            self.notice("nothing was recognised")
        elif not self.direct:
            say(self._stdout, text)


class Listener:
    """The capture loop: one request after another, each ended by the first of its endings."""

    def __init__(
        self,
        capture: Capture,
        open_request: RequestOpener,
        output: Output,
        *,
        silence: float | None,
        seconds_limit: float | None,
        continuous: bool,
        timeout: float,
    ) -> None:
        self.capture = capture
        self._open_request = open_request
        self.output = output
        self._seconds_limit = seconds_limit
        self._continuous = continuous
        self._timeout = timeout
        self.detector = SpeechDetector(capture.rate, capture.channels, end_after=silence)
        chunk_seconds = 0.02
        self._preroll: collections.deque[bytes] = collections.deque(
            maxlen=max(1, round(PREROLL_SECONDS / chunk_seconds))
        )
        self.interrupted = False
        self._meter_due = 0.0
        self._waiting = False
        self._no_speech_limit = None if silence is None else NO_SPEECH_SECONDS
        """With the client finding the end, a command with no speech at all ends too."""

    def interrupt(self) -> None:
        """Ctrl-C: end the command being spoken (its transcript still comes), then stop."""
        self.interrupted = True
        self.capture.wake()
        if self._waiting:
            self.output.notice("waiting for the transcript; Ctrl-C again quits")

    async def run(self) -> int:
        self.capture.start()
        while not self.interrupted:
            if self._continuous and not await self._wait_for_speech():
                break
            status = await self._one_request()
            if status != 0 or not self._continuous:
                return status
            self.detector.reset()
        return 0

    async def _wait_for_speech(self) -> bool:
        """Until speech starts (True), keeping the audio just before it; False if stopped."""
        self._preroll.clear()
        while not self.interrupted:
            chunk = await self.capture.next()
            if chunk is None:
                continue
            self._preroll.append(chunk)
            activity = self.detector.feed(chunk)
            self._show_level("waiting for speech")
            if Activity.SPEECH_STARTED in activity:
                return True
        return False

    async def _one_request(self) -> int:
        capture = self.capture
        request = await self._open_request((capture.rate, SAMPLE_WIDTH, capture.channels))
        answer = asyncio.create_task(self._show_updates(request), name="updates")
        try:
            for chunk in self._preroll:
                await self._send(request, chunk)
            self._preroll.clear()
            lost: MicrophoneLost | None = None
            try:
                await self._stream(request, answer)
            except MicrophoneLost as err:
                # What was said before is still worth its transcript.
                lost = err
            if not request.finished:
                await request.end_audio()
            if not answer.done():
                self.output.level(self.detector.level.dbfs, "waiting for the transcript")
            self._waiting = True
            try:
                async with asyncio.timeout(self._timeout):
                    status = await asyncio.shield(answer)
            except TimeoutError:
                self.output.notice(
                    f"no transcript within {self._timeout:g} s of the end of the audio"
                )
                status = EXIT_SERVER
            finally:
                self._waiting = False
            if lost is not None:
                raise lost
            return status
        finally:
            answer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await answer
            await request.close()

    async def _send(self, request: ClientRequest, chunk: bytes) -> None:
        capture = self.capture
        try:
            await request.add_audio(chunk, capture.rate, SAMPLE_WIDTH, capture.channels)
        except UnsupportedAudioFormat as err:
            problem = f"{capture.device.name} captures audio that cannot be used: {err}"
            raise UsageError(problem) from None

    async def _stream(self, request: ClientRequest, answer: asyncio.Task[int]) -> None:
        """Send audio until an ending: the server's answer, quiet after speech, the limit,
        or Ctrl-C."""
        capture = self.capture
        sent = 0.0
        # The answer coming wakes the capture wait, so an ending the server decides is seen
        # at once rather than at the next chunk.
        answer.add_done_callback(lambda _task: capture.wake())
        while not (self.interrupted or request.finished):
            chunk = await capture.next()
            if chunk is None:
                continue
            await self._send(request, chunk)
            sent += len(chunk) / capture.bytes_per_second
            activity = self.detector.feed(chunk)
            self._show_level("hearing speech" if self.detector.in_speech else "listening")
            if self._seconds_limit is not None and sent >= self._seconds_limit - 1e-9:
                return
            if Activity.SPEECH_ENDED in activity:
                return
            no_speech = self._no_speech_limit
            if no_speech is not None and not self.detector.heard_speech and sent >= no_speech:
                self.output.notice(f"no speech heard in {no_speech:g} s")
                return

    async def _show_updates(self, request: ClientRequest) -> int:
        output = self.output
        async for update in request.updates():
            if isinstance(update, Partial):
                output.partial(update.text)
            elif isinstance(update, Completed):
                output.phrase(update.text)
            elif isinstance(update, Finished):
                output.transcript(update.text)
                return 0
            elif isinstance(update, Failed):
                output.status.clear()
                output.notice(f"{update.text} ({update.code})")
                return EXIT_SERVER
        return EXIT_SERVER

    def _show_level(self, state: str) -> None:
        # Redrawn ten times a second of audio, not per chunk: a terminal is slow.
        seconds = self.detector.seconds
        if seconds >= self._meter_due:
            self._meter_due = seconds + METER_SECONDS
            self.output.level(self.detector.level.dbfs, state)


def _describe_devices(microphone: Microphone) -> int:
    devices = microphone.devices()
    if not devices:
        say(sys.stderr, f"{PROG}: no input devices")
        return EXIT_USAGE
    for device in devices:
        mark = "*" if device.default else " "
        say(
            sys.stdout,
            f"{mark}{device.index:3d}  {device.name}  "
            f"({device.channels} channel(s), {device.rate} Hz)",
        )
    return 0


async def _opener(
    args: argparse.Namespace, output: Output, stack: contextlib.AsyncExitStack
) -> tuple[RequestOpener, float | None, str | None]:
    """How to open a request; the quiet that ends one unless --silence says otherwise; and
    who else ends one, if anyone does."""
    transcribe = Transcribe(name=args.model, language=args.language)
    if args.direct:
        try:
            settings = load_client_settings(args.config, os.environ)
        except SettingsError as err:
            raise UsageError(str(err)) from None
        engine = await stack.enter_async_context(DirectEngine(settings))
        # A model or language no engine has is said now, not after the person speaks.
        engine.check(transcribe)
        handler = StatusLineHandler(output.status, PROG)
        logging.getLogger("wyoming_bodhi").addHandler(handler)
        stack.callback(logging.getLogger("wyoming_bodhi").removeHandler, handler)

        async def open_direct(_audio: tuple[int, int, int]) -> ClientRequest:
            return engine.request(transcribe)

        # The pipeline ends a command itself only with endpointing.
        if settings.endpointing:
            return open_direct, None, "the engine ends it"
        return open_direct, DEFAULT_SILENCE, None

    uri = args.uri
    connector = parse_uri(uri)
    info = await describe(connector, uri, args.timeout)
    programs = [program for program in info.asr if program.installed]
    if not programs:
        raise ServerProblem(f"{uri} offers no speech-to-text")

    async def open_remote(audio: tuple[int, int, int]) -> ClientRequest:
        return await WyomingRequest.open(connector, uri, transcribe, audio, args.timeout)

    if programs[0].requires_external_vad is False:
        return open_remote, None, "the server ends it"
    return open_remote, DEFAULT_SILENCE, None


async def _listen(args: argparse.Namespace, microphone: Microphone, output: Output) -> int:
    async with contextlib.AsyncExitStack() as stack:
        # What the user can fix here comes before anything on the network.
        device = microphone.find(args.device)
        open_request, default_silence, ender = await _opener(args, output, stack)
        if args.silence is not None:
            silence = args.silence or None
        else:
            # --seconds alone asks for that much audio: the default quiet does not cut it short.
            silence = None if args.seconds else default_silence
        capture = microphone.open(device, args.rate)
        stack.callback(capture.close)
        if capture.rate != args.rate or capture.channels != 1:
            output.notice(
                f"{device.name} does not capture {args.rate} Hz mono; capturing "
                f"{capture.rate} Hz, {capture.channels} channel(s) (the "
                f"{'pipeline' if args.direct else 'server'} converts)"
            )
        listener = Listener(
            capture,
            open_request,
            output,
            silence=silence,
            seconds_limit=args.seconds,
            continuous=args.continuous,
            timeout=args.timeout,
        )
        ends = [
            ender,
            f"after {silence:g} s of quiet" if silence else None,
            f"after {args.seconds:g} s" if args.seconds else None,
            "on Ctrl-C",
        ]
        output.notice(
            f"listening to {device.name} at {capture.rate} Hz; a command ends "
            + ", ".join(end for end in ends if end)
        )
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None

        def on_sigint() -> None:
            if listener.interrupted:
                main.cancel()  # the second Ctrl-C: quit now
            else:
                listener.interrupt()

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            stack.callback(loop.remove_signal_handler, signal.SIGINT)
            # SIGTERM (kill, a service manager): quit now, tidily.
            loop.add_signal_handler(signal.SIGTERM, main.cancel)
            stack.callback(loop.remove_signal_handler, signal.SIGTERM)
        return await listener.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def fail(code: int, message: str) -> int:
        say(sys.stderr, f"{PROG}: {message}")
        return code

    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    else:
        # The pipeline's warnings reach the person as notices; nothing else is printed.
        logging.getLogger("wyoming_bodhi").propagate = False
    output: Output | None = None
    try:
        with Microphone(quiet=not args.debug) as microphone:
            # Made here: the microphone has moved Python's stderr away from PortAudio's.
            output = Output(args.direct, sys.stdout, sys.stderr)
            if args.list_devices:
                return _describe_devices(microphone)
            try:
                return asyncio.run(_listen(args, microphone, output))
            finally:
                output.status.clear()
    except UsageError as err:
        return fail(EXIT_USAGE, str(err))
    except MicrophoneLost as err:
        return fail(EXIT_SERVER, str(err))
    except MicrophoneError as err:
        return fail(EXIT_USAGE, str(err))
    except ServerProblem as err:
        return fail(EXIT_SERVER, str(err))
    except BrokenPipeError:
        # The reader went away (| head -1): stop quietly, as a filter does.
        quiet_stdout()
        return 0
    except (KeyboardInterrupt, asyncio.CancelledError):
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
