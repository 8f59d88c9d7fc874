"""Secrets blanked out of text, wherever the text goes.

The secrets are found, not listed: every value a setting's declaration marks secret (an
engine's key, the customer id, Home Assistant's token; see ``Settings.secrets``). Our own
messages never hold one; what a server says, or a library's exception, might: an engine that
quotes the key it was sent back in its error. So text that came from outside passes through
:meth:`Secrets.text` where it is made (an engine's error, a check's answer), and every log
line passes through it again at the sink (:class:`RedactingFormatter`), as does what the
status page serves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

MIN_REDACTED_LENGTH: Final = 4
"""Shorter "secrets" are not worth mangling every message for."""
BLANK: Final = "…"


class Secrets:
    """A set of secret values, and text with each of them blanked out."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        # Longest first: a secret that contains another is blanked whole.
        self.values: tuple[str, ...] = tuple(
            sorted(
                {value for value in values if value and len(value) >= MIN_REDACTED_LENGTH},
                key=len,
                reverse=True,
            )
        )

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        for secret in self.values:
            if secret in text:
                text = text.replace(secret, BLANK)
        return text


def fingerprint(secret: str) -> str:
    """Enough of a key to tell two apart in a log, not enough to use one: ``…1234``."""
    return f"{BLANK}{secret[-4:]}" if len(secret) >= 12 else BLANK


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
    "MIN_REDACTED_LENGTH",
    "RedactingFormatter",
    "Secrets",
    "fingerprint",
    "redact_logging",
]
