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
import sys
from collections.abc import Sequence
from typing import Final

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error

from ..redaction import Secrets
from ..settings import Settings
from . import options
from .cli import (
    EXIT_INTERRUPTED,
    EXIT_SERVER,
    EXIT_USAGE,
    Parser,
    UsageError,
    quiet_stdout,
    seconds,
)
from .connection import Connector, ServerProblem, connect, parse_uri, read_failure
from .console import StatusLineHandler, say
from .direct import Completed, DirectEngine, Failed, Finished, Partial, engine_settings
from .progress import Progress
from .recording import FileReadError, Recording, open_recording
from .remote import hang_up

PROG: Final = "wyoming-bodhi-transcribe"


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
    options.add_uri(parser)
    options.add_request(parser)
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="send at the speed of speech, as a microphone would (shows progress on a terminal)",
    )
    parser.add_argument(
        "--stream", action="store_true", help="also print each streamed phrase (to stderr)"
    )
    options.add_timeout(parser, options.FILE_TIMEOUT)
    parser.add_argument(
        "--wait",
        type=seconds(allow_zero=True),
        default=0.0,
        metavar="SECONDS",
        help="if the server refuses the connection, keep trying this long, for a server "
        "just started in the background (default: %(default)g, do not wait)",
    )
    options.add_direct(parser)
    parser.add_argument(
        "--rest",
        action="store_true",
        help="no Wyoming server: post the whole file to the engine's whole-file API (engines "
        "that have one), with the server's credentials and settings (its environment, "
        "*_FILE, or --config)",
    )
    options.add_config(parser, "--direct or --rest")
    options.add_debug(parser)
    options.add_version(parser, PROG)
    return parser


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
    timeout: float = options.FILE_TIMEOUT,
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
    timeout: float = options.FILE_TIMEOUT,
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
    if args.debug:
        options.show_debug_logs()

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
            return run_rest(args, recording, fail, warn)
    progress = Progress(
        sys.stderr,
        recording.seconds,
        enabled=bool((args.realtime or args.direct) and sys.stderr and sys.stderr.isatty()),
    )
    settings: Settings | None = None
    if args.direct:
        try:
            settings = engine_settings(args.config, warn)
        except UsageError as err:
            recording.file.close()
            return fail(EXIT_USAGE, str(err))
        # The pipeline's own warnings (a retry, an engine's trouble), one line each, above
        # the progress line; the final error is said once, below.
        pipeline_log = logging.getLogger("wyoming_bodhi")
        pipeline_log.addHandler(StatusLineHandler(progress.line, PROG, Secrets(settings.secrets)))
        pipeline_log.propagate = args.debug
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
