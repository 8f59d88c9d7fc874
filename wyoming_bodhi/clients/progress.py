"""The file client's progress on a terminal: how much audio is sent, then what it waits for."""

from __future__ import annotations

from typing import TextIO

from .console import StatusLine


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


__all__ = ["Progress"]
