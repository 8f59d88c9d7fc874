"""``wyoming-bodhi-transcribe FILE --rest``: a whole file through Bodhi's non-streaming API.

No Wyoming server in between: the credentials and Bodhi's settings come from the same
environment variables, ``*_FILE`` secrets and config file as the server's
(:func:`~wyoming_bodhi.settings.load_client_settings`), the model from ``--model`` or
``--language`` as the server chooses it, and the file goes to ``POST <host>/api/transcribe`` on
the host of ``bodhi_url`` (:func:`~wyoming_bodhi.engines.bodhi.protocol.transcribe_url`).

The audio is sent as Bodhi's models take it, whatever the file holds: converted (as the
server converts a stream) to 16-bit mono at 8 kHz in a WAV file, which also makes the upload
small (16 kB a second).

Time is bounded by the settings: ``connect_timeout`` to connect, and for everything
``connect_timeout + the audio's length + response_timeout``, so Bodhi may take as long as
the audio lasts (what it takes to stream it) before the usual wait for a final result.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
from collections.abc import Callable
from typing import Final

import aiohttp

from ..engines.base import UnknownModelError
from ..engines.bodhi.client import BodhiCredentials
from ..engines.bodhi.errors import BodhiError, BodhiTimeoutError
from ..engines.bodhi.protocol import SAMPLE_RATE, TranscribeRequest, transcribe_url
from ..engines.bodhi.rest import transcribe_file
from ..pipeline.audio import OUTPUT_WIDTH, AudioConverter, UnsupportedAudioFormat
from ..settings import Settings, SettingsError, load_client_settings
from .cli import EXIT_INTERRUPTED, EXIT_SERVER, EXIT_USAGE, UsageError
from .connection import DEFAULT_URI
from .console import say
from .options import FILE_TIMEOUT
from .recording import FileReadError, Recording

Fail = Callable[[int, str], int]

TIMEOUT_HINT: Final = (
    "try again later, or allow more time with BODHI_CONNECT_TIMEOUT and BODHI_RESPONSE_TIMEOUT"
)


def choose_model(settings: Settings, model: str | None, language: str | None) -> str:
    """``--model`` if it is a Bodhi model; else the model for ``--language`` (as the server
    picks it: the configured default when it speaks the language, else that language in the
    configured domain); else the default. Raises :class:`UsageError`."""
    catalog = settings.catalog
    if model:
        try:
            return catalog.get(model).name
        except UnknownModelError as err:
            raise UsageError(f"--model: {err}") from None
    default = catalog.default(settings.model)
    if not language:
        return default.name
    spoken = catalog.for_language(language, settings.domain, default)
    if spoken is None:
        languages = sorted({m.primary_language for m in catalog})
        raise UsageError(
            f"--language {language}: no Bodhi model speaks it; Bodhi's languages: "
            f"{', '.join(languages)}"
        )
    return spoken.name


def wav_file(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM in a WAV file."""
    block = OUTPUT_WIDTH
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE",
        b"fmt ", 16, 1, 1, rate, rate * block, block, 8 * block,
        b"data", len(pcm),
    )  # fmt: skip
    return header + pcm


def bodhi_audio(recording: Recording, max_seconds: float) -> tuple[bytes, float]:
    """The recording converted for Bodhi, as a WAV file, and its length in seconds.
    Raises :class:`UsageError` for audio that cannot be converted or is too long."""
    rate, width, channels = recording.wire
    try:
        converter = AudioConverter(rate, width, channels, target_rate=SAMPLE_RATE)
    except UnsupportedAudioFormat as err:
        raise UsageError(f"{recording.path}: {err}") from None
    limit = int(max_seconds * SAMPLE_RATE) * OUTPUT_WIDTH
    pcm = bytearray()
    for chunk in recording.chunks():
        pcm += converter.convert(chunk)
        if len(pcm) > limit:
            raise UsageError(
                f"{recording.path}: longer than max_audio, {max_seconds:g} s (raise it with "
                "BODHI_MAX_AUDIO or max_audio in the config file)"
            )
    pcm += converter.flush()
    return wav_file(bytes(pcm), SAMPLE_RATE), len(pcm) / OUTPUT_WIDTH / SAMPLE_RATE


async def transcribe_rest(settings: Settings, model: str, wav: bytes, seconds: float) -> str:
    """Post the file; the transcript, or :class:`BodhiError`."""
    assert settings.api_key is not None
    credentials = BodhiCredentials(settings.api_key, settings.customer_id)
    request = TranscribeRequest(
        model=model,
        # Flags Bodhi defaults to false are left out unless asked for, as in a stream.
        parse_number=settings.parse_number or None,
        hotwords=settings.hotwords,
    )
    timeout = settings.connect_timeout + seconds + settings.response_timeout
    async with aiohttp.ClientSession() as http:
        transcription = await transcribe_file(
            http,
            transcribe_url(settings.bodhi_url),
            credentials,
            request,
            wav,
            connect_timeout=settings.connect_timeout,
            timeout=timeout,
            ssl_context=settings.ssl_context(),
        )
    return transcription.text


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
                f"{flag} is for a Wyoming server, and --rest talks to Bodhi itself (its time "
                "limits are BODHI_CONNECT_TIMEOUT and BODHI_RESPONSE_TIMEOUT)"
            )


def _settings(config: str | None) -> Settings:
    try:
        settings = load_client_settings(config)
    except SettingsError as err:
        raise UsageError(str(err)) from None
    if settings.demo:
        raise UsageError(
            "--rest talks to Bodhi itself, and demo mode has no Bodhi to talk to: "
            "unset BODHI_DEMO (or demo in the config file)"
        )
    if not settings.api_key:
        raise UsageError(
            "--rest uses Bodhi's non-streaming API: set BODHI_API_KEY (or BODHI_API_KEY_FILE, "
            "or api_key in a config file)"
        )
    return settings


def run(args: argparse.Namespace, recording: Recording, fail: Fail) -> int:
    """``--rest``: print the transcript; the exit status (0, or the file client's own 1 and
    2), with the problem in one line."""
    try:
        _check_options(args)
        settings = _settings(args.config)
        model = choose_model(settings, args.model, args.language)
        wav, seconds = bodhi_audio(recording, settings.max_audio)
        text = asyncio.run(transcribe_rest(settings, model, wav, seconds))
    except (UsageError, FileReadError) as err:
        return fail(EXIT_USAGE, str(err))
    except BodhiTimeoutError as err:
        return fail(EXIT_SERVER, f"{err}; {TIMEOUT_HINT}")
    except BodhiError as err:
        return fail(EXIT_SERVER, str(err))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    say(sys.stdout, text)
    return 0
