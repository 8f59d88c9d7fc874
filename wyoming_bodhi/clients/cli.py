"""What every client's command line shares: exit statuses, one-line errors, option types."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import Final, NoReturn

EXIT_SERVER: Final = 1
"""The server (or engine) could not be reached, or gave no transcript."""
EXIT_USAGE: Final = 2
"""Something the user can fix: a file, an option, a setting."""
EXIT_INTERRUPTED: Final = 130


class UsageError(Exception):
    """Something the user can fix: a file, an option. Exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's usage dump buries the one line that matters.
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def seconds(allow_zero: bool, most: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            kind = "zero or more" if allow_zero else "a positive number of"
            raise argparse.ArgumentTypeError(f"expected {kind} seconds, got {text!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"at most {most:g} seconds, got {text!r}")
        return value

    return parse


def rate(text: str) -> int:
    """A sample rate, as the server takes them."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 8000 <= value <= 192_000:
        raise argparse.ArgumentTypeError(
            f"expected a sample rate from 8000 to 192000 Hz, got {text!r}"
        )
    return value


def quiet_stdout() -> None:
    """Standard output's reader has gone (``| head``): point it at /dev/null, so that Python's
    own flush at exit does not fail again (what the Python documentation advises)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        if sys.stdout is not None:
            os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
