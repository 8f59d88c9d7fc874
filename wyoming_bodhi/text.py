"""Text from outside (what a client, an engine or a server sent), fit for a log line, a
message or a terminal: valid Unicode, no control characters, and short.

The one bound on outside text in this package: every log line and message that carries what
a client or an engine sent goes through :func:`printable` or :func:`quoted`.
"""

from __future__ import annotations

import re
import reprlib

_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029"
    # Bidirectional controls: they reorder what follows on a terminal (U+202E shows
    # "lanigiro"). Joiners (U+200C, U+200D), which Indian scripts need, are not among them.
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate, which UTF-8 cannot encode: what a client sent
    as JSON (``"\\ud800"``) and that could not be passed on or logged as it is."""
    return _SURROGATES.search(text) is not None


def valid_unicode(text: str) -> str:
    """``text`` without lone surrogates: JSON can carry them (``"\\ud800"``), UTF-8 cannot,
    and what an engine says ends up in a UTF-8 Wyoming event or log line."""
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def printable(text: str, limit: int | None = 500) -> str:
    """What a server or client said, fit for a message that is logged or shown: valid
    Unicode, no control characters (a newline could forge a log line, an escape could drive a
    terminal, a right-to-left override could show text backwards), at most ``limit``
    characters and a ``…`` where it was cut (None: all of it)."""
    cut = limit is not None and len(text) > limit
    if limit is not None:
        text = text[: limit - 1] if cut else text
    text = _CONTROL.sub(_escape, valid_unicode(text))
    return text + "…" if cut else text


_QUOTED = reprlib.Repr()
_QUOTED.maxlevel = 2
_QUOTED.maxdict = _QUOTED.maxlist = _QUOTED.maxtuple = _QUOTED.maxset = 4


def quoted(value: object, limit: int = 80) -> str:
    """``repr(value)`` of a value from outside (an event type, a segment id, a code), fit
    for a message or log line as :func:`printable` makes text: at most ``limit`` characters,
    and cheap however large the value (a megabyte string is never copied whole)."""
    _QUOTED.maxstring = _QUOTED.maxother = _QUOTED.maxlong = max(limit, 8)
    try:
        shown = _QUOTED.repr(value)
    except (ValueError, RecursionError):  # an int too long to print; a structure too deep
        shown = f"<{type(value).__name__}>"
    return printable(shown, limit)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


__all__ = ["has_lone_surrogate", "printable", "quoted", "valid_unicode"]
