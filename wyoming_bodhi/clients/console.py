"""One live status line on a terminal, and plain lines everywhere.

A client shows what is happening now (a level meter, the partial text the recogniser is
hearing, how much of a file is sent) on one line redrawn in place, and prints what is done
(a completed phrase) as a line of its own above it. When the output is not a terminal the
status line is never drawn, so a pipe or a log gets only the finished lines.
"""

from __future__ import annotations

import shutil
import unicodedata
from typing import TextIO

ELLIPSIS = "…"


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


class StatusLine:
    """A line redrawn in place on a terminal; :meth:`message` prints above it."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self._stream = stream
        self.live = stream.isatty() if live is None else live
        """Whether the status line is drawn at all."""
        self._shown = ""
        self._shown_width = 0

    def show(self, text: str) -> None:
        """Replace the status line (a no-op unless live). Cut to the terminal's width: a
        wrapped line could not be redrawn in place."""
        if not self.live:
            return
        columns = max(10, shutil.get_terminal_size().columns - 1)
        # A newline or a tab would break the line out of its place; spaces are kept (a
        # meter's empty part is spaces).
        text = tail_to_width("".join(c if c.isprintable() else " " for c in text), columns)
        if text == self._shown:
            return
        width = display_width(text)
        # Spaces rather than an ANSI erase: works on any terminal.
        pad = " " * max(0, self._shown_width - width)
        self._stream.write(f"\r{text}{pad}")
        if pad:
            self._stream.write("\r" + text)
        self._stream.flush()
        self._shown, self._shown_width = text, width

    def message(self, line: str) -> None:
        """Print a line of its own, keeping the status line below it."""
        shown = self._shown
        self.clear()
        print(line, file=self._stream, flush=True)
        if shown:
            self.show(shown)

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * self._shown_width + "\r")
            self._stream.flush()
            self._shown, self._shown_width = "", 0
