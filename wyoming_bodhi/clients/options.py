"""The options both clients take, declared once: one name, one type and one help text each,
so that ``wyoming-bodhi-transcribe --help`` and ``wyoming-bodhi-mic --help`` cannot drift.

No help text names an engine: which engines there are, and their credentials, are the
server's settings, and ``--direct`` reads them as the server does.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Final, Protocol

from .. import __version__
from .cli import seconds
from .connection import DEFAULT_URI

FILE_TIMEOUT: Final = 60.0
"""Seconds a file's transcript may take after the end of its audio: a file may be long, and
is sent faster than it is spoken."""
LIVE_TIMEOUT: Final = 30.0
"""Seconds a spoken command's transcript may take after the end of its audio."""


class Options(Protocol):
    """A parser, or one of its argument groups."""

    def add_argument(self, *name_or_flags: str, **kwargs: Any) -> argparse.Action: ...


def add_uri(options: Options) -> None:
    options.add_argument(
        "--uri",
        default=DEFAULT_URI,
        help="the Wyoming server: tcp://HOST:PORT or unix://PATH (default: %(default)s)",
    )


def add_request(options: Options) -> None:
    """What to ask for: ``--language`` and ``--model``."""
    options.add_argument("--language", help="language tag to request, e.g. hi, ta-IN, th")
    options.add_argument(
        "--model", help="model name to request (wyoming-bodhi --list-models lists them)"
    )


def add_direct(options: Options) -> None:
    options.add_argument(
        "--direct",
        action="store_true",
        help="no Wyoming server: stream to the engine itself at the speed of speech, through "
        "the server's pipeline in this process, with the server's credentials (its "
        "environment, *_FILE, or --config); shows the phrase being heard",
    )


def add_config(options: Options, modes: str = "--direct") -> None:
    """``--config``, for the modes (``modes``, e.g. ``--direct or --rest``) that read the
    server's settings."""
    options.add_argument(
        "--config",
        metavar="FILE",
        help=f"with {modes}: the server's YAML or JSON settings file (env BODHI_CONFIG)",
    )


def add_timeout(options: Options, default: float) -> None:
    """``--timeout``; its default differs between a file and a live command."""
    options.add_argument(
        "--timeout",
        type=seconds(allow_zero=False),
        default=default,
        metavar="SECONDS",
        help="give up when no transcript has come this long after the end of the audio "
        "(default: %(default)g)",
    )


def add_debug(options: Options) -> None:
    options.add_argument(
        "--debug",
        action="store_true",
        help="show the logs a client keeps quiet: the pipeline's, the sound libraries'",
    )


def add_version(options: Options, prog: str) -> None:
    options.add_argument("--version", action="version", version=f"{prog} {__version__}")


def show_debug_logs() -> None:
    """``--debug``: every log line, DEBUG and up, on stderr."""
    logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


__all__ = [
    "FILE_TIMEOUT",
    "LIVE_TIMEOUT",
    "Options",
    "add_config",
    "add_debug",
    "add_direct",
    "add_request",
    "add_timeout",
    "add_uri",
    "add_version",
    "show_debug_logs",
]
