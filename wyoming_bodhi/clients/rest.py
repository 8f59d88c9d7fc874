"""``wyoming-bodhi-transcribe FILE --rest``: a whole file through an engine's non-streaming API.

No Wyoming server in between: the credentials and the engines' settings come from the same
environment variables, ``*_FILE`` secrets and config file as the server's
(:func:`~wyoming_bodhi.settings.load_client_settings`), and the engine and model from
``--model`` or ``--language`` as the server chooses them (:class:`~.direct.DirectEngine`). The
chosen engine must take whole recordings (:class:`~wyoming_bodhi.engines.base.WholeFileEngine`).

The audio is sent as the engine takes it, whatever the file holds: converted (as the server
converts a stream) to 16-bit mono at the engine's rate.

Time is bounded by the settings: ``connect_timeout`` to connect, and for everything
``connect_timeout + the audio's length + response_timeout``, so the engine may take as long
as the audio lasts (what it takes to stream it) before the usual wait for a final result.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Final

from wyoming.asr import Transcribe

from ..engines.base import TIMEOUT, EngineError, WholeFileEngine, redact
from ..pipeline.audio import OUTPUT_WIDTH, AudioConverter, UnsupportedAudioFormat
from ..settings import Settings
from .cli import EXIT_INTERRUPTED, EXIT_SERVER, EXIT_USAGE, UsageError
from .connection import DEFAULT_URI
from .console import say
from .direct import DirectEngine, engine_settings
from .options import FILE_TIMEOUT
from .recording import FileReadError, Recording

Fail = Callable[[int, str], int]

TIMEOUT_HINT: Final = (
    "try again later, or allow more time with BODHI_CONNECT_TIMEOUT and BODHI_RESPONSE_TIMEOUT"
)


def converted(recording: Recording, rate: int, max_seconds: float) -> bytes:
    """The recording as 16-bit mono PCM at ``rate``. Raises :class:`UsageError` for audio
    that cannot be converted or is too long."""
    file_rate, width, channels = recording.wire
    try:
        converter = AudioConverter(file_rate, width, channels, target_rate=rate)
    except UnsupportedAudioFormat as err:
        raise UsageError(f"{recording.path}: {err}") from None
    limit = int(max_seconds * rate) * OUTPUT_WIDTH
    pcm = bytearray()
    for chunk in recording.chunks():
        pcm += converter.convert(chunk)
        if len(pcm) > limit:
            raise UsageError(
                f"{recording.path}: longer than max_audio, {max_seconds:g} s (raise it with "
                "BODHI_MAX_AUDIO or max_audio in the config file)"
            )
    pcm += converter.flush()
    return bytes(pcm)


async def recognize(settings: Settings, transcribe: Transcribe, recording: Recording) -> str:
    """The chosen engine's transcript of the whole recording; raises :class:`UsageError` or
    the engine's :class:`EngineError`."""
    async with DirectEngine(settings) as direct:
        choice, request = direct.prepare(transcribe)
        engine = choice.engine
        if not isinstance(engine, WholeFileEngine):
            able = [e.plugin.title for e in settings.configured if e.plugin.capabilities.whole_file]
            raise UsageError(
                f"--rest: {engine.title} has no whole-file recognition; engines with it: "
                f"{', '.join(able)}"
            )
        pcm = converted(recording, engine.audio.rate, settings.max_audio)
        seconds = len(pcm) / engine.audio.bytes_per_second
        try:
            return await engine.recognize(
                request,
                pcm,
                connect_timeout=settings.connect_timeout,
                timeout=settings.connect_timeout + seconds + settings.response_timeout,
            )
        except EngineError as err:
            # Whatever the engine does itself: no credential it echoes reaches the terminal.
            raise redact(err, settings.secrets) from None


def _check_options(args: argparse.Namespace) -> None:
    """Refuse the file client's options for a Wyoming server: they would be ignored."""
    for flag, given in (
        ("--uri", args.uri != DEFAULT_URI),
        ("--wait", bool(args.wait)),
        ("--timeout", args.timeout != FILE_TIMEOUT),
        ("--realtime", args.realtime),
        ("--stream", args.stream),
    ):
        if given:
            raise UsageError(
                f"{flag} is for a Wyoming server, and --rest talks to the engine itself (its "
                "time limits are BODHI_CONNECT_TIMEOUT and BODHI_RESPONSE_TIMEOUT)"
            )


def _settings(config: str | None, notice: Callable[[str], None]) -> Settings:
    settings = engine_settings(config, notice, "--rest")
    if not any(entry.plugin.capabilities.whole_file for entry in settings.configured):
        able = [e.plugin for e in settings.engines if e.plugin.capabilities.whole_file]
        if not able:
            raise UsageError("--rest: no installed engine recognises whole files")
        keys = []
        for plugin in able:
            key = plugin.declaration(plugin.credential)
            keys.append(f"{key.env} (or {key.env}_FILE, or {key.name} in a config file)")
        apis = " or ".join(f"{plugin.title}'s" for plugin in able)
        raise UsageError(f"--rest uses {apis} non-streaming API: set {'; or '.join(keys)}")
    return settings


def run(
    args: argparse.Namespace, recording: Recording, fail: Fail, notice: Callable[[str], None]
) -> int:
    """``--rest``: print the transcript; the exit status (0, or the file client's own 1 and
    2), with the problem in one line (``notice``: a line for the person, on stderr)."""
    try:
        _check_options(args)
        settings = _settings(args.config, notice)
        transcribe = Transcribe(name=args.model or None, language=args.language or None)
        text = asyncio.run(recognize(settings, transcribe, recording))
    except (UsageError, FileReadError) as err:
        return fail(EXIT_USAGE, str(err))
    except EngineError as err:
        return fail(EXIT_SERVER, f"{err}; {TIMEOUT_HINT}" if err.kind == TIMEOUT else str(err))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    say(sys.stdout, text)
    return 0
