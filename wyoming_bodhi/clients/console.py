"""One live status line on a terminal, and plain lines everywhere.

A client shows what is happening now (a level meter, the partial text the recogniser is
hearing, how much of a file is sent) on one line redrawn in place, and prints what is done
(a completed phrase) as a line of its own above it. When the output is not a terminal the
status line is never drawn, so a pipe or a log gets only the finished lines.
"""

from __future__ import annotations

import logging
import os
import shutil
import unicodedata
from typing import TextIO

from ..redaction import RedactingFormatter, Secrets
from ..text import printable

ELLIPSIS = "…"


def terminal_safe(text: str) -> str:
    """Text a server or engine sent, fit for a terminal: control characters shown escaped
    (``\\x1b``, ``\\u202e``), never obeyed, so a transcript cannot retitle the window, clear the
    screen, rewrite a line or read backwards."""
    return printable(text, limit=None)


def say(stream: TextIO | None, line: str) -> None:
    """One line, made terminal-safe; nothing when the stream is closed (``>&-``)."""
    if stream is not None:
        # One write, so that the line reaches a shared terminal or pipe whole: print() writes
        # the newline apart, and a server logging to the same terminal (the README's Try it)
        # could land between the two.
        stream.write(terminal_safe(line) + "\n")
        stream.flush()


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: combining marks (Devanagari's vowel signs,
    Thai's tone marks) take none, East Asian wide characters two."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def tail_to_width(text: str, columns: int) -> str:
    """The end of ``text`` that fits ``columns``, marked with ``…`` when cut: for a phrase
    still being spoken, the newest words are the ones to see."""
    if display_width(text) <= columns:
        return text
    kept: list[str] = []
    width = display_width(ELLIPSIS)
    for char in reversed(text):
        width += display_width(char)
        if width > columns:
            break
        kept.append(char)
    # A cut through a cluster would leave a combining mark with nothing to sit on.
    while kept and display_width(kept[-1]) == 0:
        kept.pop()
    return ELLIPSIS + "".join(reversed(kept))


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` is (not stdout's: the line may be on stderr)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    # 0: a terminal that does not say (a bare pseudo-terminal): $COLUMNS, else 80.
    return columns or shutil.get_terminal_size().columns


class StatusLine:
    """A line redrawn in place on a terminal; :meth:`message` prints above it."""

    def __init__(self, stream: TextIO | None, *, live: bool | None = None) -> None:
        self._stream = stream
        self.live = bool(stream and stream.isatty()) if live is None else live
        """Whether the status line is drawn at all."""
        self._shown = ""
        self._shown_width = 0

    def show(self, text: str) -> None:
        """Replace the status line (a no-op unless live). Cut to the terminal's width: a
        wrapped line could not be redrawn in place."""
        stream = self._stream
        if not self.live or stream is None:
            return
        columns = max(10, _columns(stream) - 1)
        # A newline or a tab would break the line out of its place; spaces are kept (a
        # meter's empty part is spaces).
        text = tail_to_width("".join(c if c.isprintable() else " " for c in text), columns)
        if text == self._shown:
            return
        width = display_width(text)
        # Spaces rather than an ANSI erase: works on any terminal.
        pad = " " * max(0, self._shown_width - width)
        stream.write(f"\r{text}{pad}")
        if pad:
            stream.write("\r" + text)
        stream.flush()
        self._shown, self._shown_width = text, width

    def message(self, line: str) -> None:
        """Print a line of its own, keeping the status line below it."""
        shown = self._shown
        self.clear()
        say(self._stream, line)
        if shown:
            self.show(shown)

    def clear(self) -> None:
        if self._shown and self._stream is not None:
            self._stream.write("\r" + " " * self._shown_width + "\r")
            self._stream.flush()
            self._shown, self._shown_width = "", 0


class StatusLineHandler(logging.Handler):
    """The pipeline's warnings (a retry, an engine's trouble) as lines above the status line,
    with every secret blanked out as in the server's log: a warning may quote what an engine
    sent. The warning that goes with a request's final error is left out: the client says
    that error itself, once."""

    def __init__(self, line: StatusLine, prefix: str, secrets: Secrets | None = None) -> None:
        super().__init__(logging.WARNING)
        self._line = line
        self._prefix = prefix
        self.setFormatter(RedactingFormatter(_MessageOnly(), secrets or Secrets()))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "answered", False):
            return
        try:
            self._line.message(f"{self._prefix}: {self.format(record)}")
        except Exception:  # a log line must never break the client
            self.handleError(record)


class _MessageOnly(logging.Formatter):
    """The message alone: a status line has no room for a traceback (``--debug`` shows it)."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()
