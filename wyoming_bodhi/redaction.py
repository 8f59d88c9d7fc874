"""Secrets blanked out of text, wherever the text goes.

The secrets are found, not listed: every value a setting's declaration marks secret (an
engine's key, the customer id, Home Assistant's token; see ``Settings.secrets``). Our own
messages never hold one; what a server says, or a library's exception, might: an engine that
quotes the key it was sent back in its error. So what an engine's server sends is blanked as
it arrives, before any engine reads or cuts it (:func:`..engines.websocket.engine_http`);
text that came from outside passes through :meth:`Secrets.text` again where it is made (an
engine's error, a check's answer), and every log line passes through it at the sink
(:class:`RedactingFormatter`), as does what the status page serves.

Text is cut short before it is shown (``text.printable``, reprlib, a plugin's own way), and a
cut can fall inside a secret: so :meth:`Secrets.text` blanks not only each whole secret but
each piece of one that is too long to be chance, and each piece a cut left beside its mark.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Final

MIN_REDACTED_LENGTH: Final = 4
"""Shorter "secrets" are not worth mangling every message for."""
BLANK: Final = "…"
FINGERPRINT_LENGTH: Final = 4
"""Characters of a key that :func:`fingerprint` shows, on purpose: the only piece of one
ever shown. Also the shortest piece blanked beside a cut's mark: shorter, it is chance."""
FINGERPRINTED: Final = 12
"""Keys this long or longer have a fingerprint; shorter ones show nothing."""
CUT_MARKS: Final = (BLANK, "...", "\\u2026", "**")
"""What a cut leaves where it fell: ``text.printable``'s, reprlib's, most people's; ``…`` as
JSON writes it (the status page's answers are blanked once written); and a server's own mask
(``Q7ZX9K************abcd``)."""
LONG_PIECE: Final = 8
"""A piece of a secret this long is blanked wherever it is (a cut that left no mark): no
ordinary text holds eight characters of a random key by chance. Half of a shorter key."""


FOLDED_PIECE: Final = 12
"""The same, in the letters and digits of text alone, whatever case (see :func:`_folded`):
longer, since words run together there ("is not a UUID" holds ``notauuid``)."""


FOLDED_WITHIN: Final = 4096
"""Texts longer than this are searched as they are only (an engine's flood, blanked as it
arrives, at the speed it arrives; a long partial): what is shown of an engine's message is
cut far shorter (500 characters at most), and blanked again, in full, where it is shown."""


class _Secret:
    """One secret value, and how to find it and its pieces in text."""

    def __init__(self, value: str, long_piece: int = LONG_PIECE) -> None:
        self.value = value
        # As it is written once quoted: JSON and repr() escape quotes and backslashes.
        self.forms = tuple(dict.fromkeys((value, json.dumps(value)[1:-1], repr(value)[1:-1])))
        self.run = max(FINGERPRINT_LENGTH + 1, min(long_piece, len(value) // 2))
        # Any piece ``run`` long holds one of these whole: blocks half as long, end to end.
        # Only where text holds a block is a piece looked for around it.
        size = (self.run + 1) // 2
        self.blocks: dict[str, tuple[int, ...]] = {
            value[at : at + size]: _found(value, value[at : at + size])
            for at in range(0, len(value) - size + 1, size)
        }
        # Its last characters are the fingerprint's: a suffix no longer than that is public.
        self.suffix = FINGERPRINT_LENGTH + 1 if len(value) >= FINGERPRINTED else FINGERPRINT_LENGTH

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where ``text`` holds this secret, or a piece of it worth blanking."""
        for form in self.forms:
            for at in _found(text, form):
                yield at, at + len(form)
        for block, offsets in self.blocks.items():
            for at in _found(text, block):
                for offset in offsets:
                    start, end = _common(text, at, self.value, offset, len(block))
                    if end - start >= self.run:
                        yield start, end
        for mark in CUT_MARKS:
            at = text.find(mark)
            while at >= 0:
                end = at + len(mark)
                before = self._prefix_before(text, at)
                if before:
                    yield at - before, end
                after = self._suffix_after(text, end)
                if after:
                    yield at, end + after
                at = text.find(mark, end)

    def _prefix_before(self, text: str, at: int) -> int:
        """The length of the longest piece the secret begins with that ends at ``at`` (where
        a cut's mark begins), if long enough to count."""
        value, least = self.value, FINGERPRINT_LENGTH
        if at < least or text[at - least : at] not in value:
            return 0
        for length in range(min(len(value) - 1, at), least - 1, -1):
            if text.startswith(value[:length], at - length):
                return length
        return 0

    def _suffix_after(self, text: str, end: int) -> int:
        """The length of the longest piece the secret ends with that starts at ``end`` (where
        a cut's mark ends), if longer than what the fingerprint shows."""
        value, least = self.value, self.suffix
        if text[end : end + least] not in value:
            return 0
        for length in range(min(len(value) - 1, len(text) - end), least - 1, -1):
            if text.startswith(value[-length:], end):
                return length
        return 0


def _found(text: str, piece: str) -> tuple[int, ...]:
    """Where ``text`` holds ``piece``, overlaps included."""
    found = []
    at = text.find(piece)
    while at >= 0:
        found.append(at)
        at = text.find(piece, at + 1)
    return tuple(found)


def _common(text: str, at: int, value: str, offset: int, length: int) -> tuple[int, int]:
    """The span of ``text`` around ``text[at : at + length]``, which is
    ``value[offset : offset + length]``, that goes on matching ``value`` either way."""
    start, before = at, offset
    while start > 0 and before > 0 and text[start - 1] == value[before - 1]:
        start, before = start - 1, before - 1
    end, after = at + length, offset + length
    while end < len(text) and after < len(value) and text[end] == value[after]:
        end, after = end + 1, after + 1
    return start, end


_LETTERS_AND_DIGITS: Final = re.compile(r"[^\W_]+")


def _folded(text: str) -> str:
    """``text``'s letters and digits alone, case folded.

    A server may quote a key in another case, or broken up (``Q7ZX-9KJV-…``, a zero-width
    joiner or a control character every few characters, which a terminal shows as nothing):
    secrets are also looked for in this view of the text."""
    return "".join(run.casefold() for run in _LETTERS_AND_DIGITS.findall(text))


def _origins(text: str) -> list[int]:
    """Where each character of ``_folded(text)`` came from in ``text``."""
    origins: list[int] = []
    for run in _LETTERS_AND_DIGITS.finditer(text):
        start, end = run.span()
        if len(run.group().casefold()) == end - start:
            origins.extend(range(start, end))
        else:  # a letter that folds to several ("ß" → "ss")
            for at in range(start, end):
                origins.extend([at] * len(text[at].casefold()))
    return origins


class Secrets:
    """A set of secret values, and text with each of them (and any piece of one a cut left)
    blanked out."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        # Longest first, as they are listed.
        self.values: tuple[str, ...] = tuple(
            sorted(
                {value for value in values if value and len(value) >= MIN_REDACTED_LENGTH},
                key=len,
                reverse=True,
            )
        )
        self._secrets = tuple(map(_Secret, self.values))
        folded = {_folded(value) for value in self.values}
        self._folded = tuple(
            # Short ones are looked for as they are only: half of one is a word by chance.
            _Secret(value, FOLDED_PIECE)
            for value in folded
            if len(value) >= 2 * LONG_PIECE
        )

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """``text`` with each secret blanked out, and each piece of one that is long enough
        not to be chance: eight characters anywhere (half of a shorter secret), in any case
        and whatever is put between its letters and digits, or, beside a cut's mark (``…``,
        ``...``, a mask's ``**``), the start of one before it and the end of one after it,
        from four characters on. A key's last four, its fingerprint, stay."""
        spans = [span for secret in self._secrets for span in secret.spans(text)]
        if self._folded and len(text) <= FOLDED_WITHIN:
            view = _folded(text)
            found = [
                (start, end)
                for secret in self._folded
                for start, end in secret.spans(view)
                # Its last four alone, in any case or spelling, is the fingerprint.
                if end - start > FINGERPRINT_LENGTH
            ]
            if found:
                origins = _origins(text)
                spans.extend((origins[start], origins[end - 1] + 1) for start, end in found)
        if not spans:
            return text
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        shown: list[str] = []
        kept = 0
        for start, end in merged:
            shown.append(text[kept:start])
            # A cut's own mark beside the blank stands for both.
            if not (text.endswith(BLANK, 0, start) or text.startswith(BLANK, end)):
                shown.append(BLANK)
            kept = end
        shown.append(text[kept:])
        return "".join(shown)

    def data(self, data: bytes) -> bytes:
        """Bytes blanked as :meth:`text` blanks text; those that are not UTF-8 kept as they
        are (a reply that is not text may still quote a key)."""
        text = data.decode("utf-8", "surrogateescape")
        blanked = self.text(text)
        return data if blanked == text else blanked.encode("utf-8", "surrogateescape")


def fingerprint(secret: str) -> str:
    """Enough of a key to tell two apart in a log, not enough to use one: ``…1234``."""
    if len(secret) < FINGERPRINTED:
        return BLANK
    return f"{BLANK}{secret[-FINGERPRINT_LENGTH:]}"


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message, arguments, traceback) has the secrets blanked
    out: the last line of defence, behind redaction where outside text is first handled."""

    def __init__(self, inner: logging.Formatter, secrets: Secrets) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets.text(self.inner.format(record))


def redact_logging(secrets: Secrets, logger: logging.Logger | None = None) -> None:
    """Every handler of ``logger`` (the root's by default) formats through
    :class:`RedactingFormatter`."""
    if not secrets:
        return
    for handler in (logger or logging.getLogger()).handlers:
        inner = handler.formatter or logging.Formatter()
        if not isinstance(inner, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(inner, secrets))


__all__ = [
    "BLANK",
    "FINGERPRINT_LENGTH",
    "MIN_REDACTED_LENGTH",
    "RedactingFormatter",
    "Secrets",
    "fingerprint",
    "redact_logging",
]
