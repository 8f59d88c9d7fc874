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
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Final

from wyoming.asr import Transcribe

from ..redaction import Secrets
from . import options
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
from .connection import ServerProblem, parse_uri
from .console import StatusLineHandler, say
from .direct import ClientRequest, DirectEngine, engine_settings
from .listener import PROG, Listener, Output, RequestOpener
from .microphone import Microphone, MicrophoneError, MicrophoneLost
from .remote import WyomingRequest, describe

DEFAULT_RATE: Final = 16000
DEFAULT_SILENCE: Final = 1.0
"""Quiet after speech that ends a command when the client has to find the end."""


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
    options.add_uri(target)
    options.add_direct(target)
    options.add_config(target)
    options.add_request(target)
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
    options.add_timeout(ending, options.LIVE_TIMEOUT)
    options.add_debug(parser)
    options.add_version(parser, PROG)
    return parser


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
        settings = engine_settings(args.config, output.notice)
        engine = await stack.enter_async_context(DirectEngine(settings))
        # A model or language no engine has is said now, not after the person speaks.
        engine.check(transcribe)
        handler = StatusLineHandler(output.status, PROG, Secrets(settings.secrets))
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
        options.show_debug_logs()
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
