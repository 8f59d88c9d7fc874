"""One engine's errors as a table: its codes, and the words for each way a session fails.

Every engine's error codes are a closed set, ``<engine>-<outcome>``: the statuses it
documents refusing a connection with (``<engine>-401``), those it documents reporting in a
session (``<engine>-400``), one per kind of failure (``<engine>-timeout``), and ``<engine>-error``
for anything else, the status named in the message. The set is what ``/metrics`` labels and
the documentation list (:meth:`ErrorTable.codes`), whatever an engine sends.

The shared WebSocket transport (:mod:`.websocket`) raises an engine's errors through its
table; so does the engine's own protocol code. An engine with its own exception classes
(whose tests, or a vendor SDK's conformance tests, catch them) passes a ``make`` that
picks the class by code; the words are still the table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from .base import (
    CONNECTION_LOST,
    PROTOCOL,
    REFUSED,
    REJECTED,
    TIMEOUT,
    TLS,
    UNREACHABLE,
    EngineError,
    engine_code,
    retryable_code,
    retryable_status,
)

OTHER: Final = "error"
"""The outcome of a code for anything an engine does not document: ``<engine>-error``."""

FAILURE_KINDS: Final = (UNREACHABLE, TLS, TIMEOUT, CONNECTION_LOST, PROTOCOL)
"""Kinds of failure whose code is the kind itself (``<engine>-timeout``)."""


class ErrorFactory(Protocol):
    """Makes an engine's error; ``code`` and ``retryable`` are already decided."""

    def __call__(self, kind: str, message: str, *, code: str, retryable: bool) -> EngineError: ...


def plain_error(kind: str, message: str, *, code: str, retryable: bool) -> EngineError:
    return EngineError(message, code=code, kind=kind, retryable=retryable)


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """An engine's error codes and words; see the module's text."""

    engine: str
    """The engine's name: the prefix of its codes."""
    title: str
    """For messages: the product's name."""
    url_flag: str
    """Where the user sets the engine's URL (``--<engine>-url``): for hints."""
    refusals: Mapping[int, str]
    """The HTTP statuses the engine documents refusing a connection with, each with what
    to do about it."""
    reports: Mapping[int, str] = field(default_factory=dict)
    """Further statuses it documents reporting in a session (not as a refusal), with what
    they mean."""
    make: ErrorFactory = plain_error

    def code(self, status: int | str | None) -> str:
        """The code for a status the engine reported: a documented one, else
        ``<engine>-error``."""
        return engine_code(self.engine, status, {**self.refusals, **self.reports})

    def error(
        self, kind: str, message: str, *, code: str | None = None, retryable: bool = False
    ) -> EngineError:
        """An error of ``kind``; its code is ``<engine>-<kind>`` unless given."""
        return self.make(kind, message, code=code or f"{self.engine}-{kind}", retryable=retryable)

    def refused(self, status: int) -> EngineError:
        """The connection was refused with an HTTP status."""
        message = self.refusals.get(
            status, f"{self.title} refused the WebSocket connection with HTTP {status}"
        )
        code = engine_code(self.engine, status, self.refusals)
        return self.make(REFUSED, message, code=code, retryable=retryable_status(status))

    def rejected(self, message: str, status: int | str | None) -> EngineError:
        """The engine refused the request in the session, reporting ``status``."""
        return self.make(
            REJECTED, message, code=self.code(status), retryable=retryable_code(status)
        )

    def unreachable(self, message: str) -> EngineError:
        return self.error(UNREACHABLE, message, retryable=True)

    def tls(self, message: str) -> EngineError:
        return self.error(TLS, message)

    def timeout(self, message: str) -> EngineError:
        return self.error(TIMEOUT, message, retryable=True)

    def lost(self, detail: str = "") -> EngineError:
        """The connection closed before the engine ended the session."""
        return self.error(
            CONNECTION_LOST,
            f"the connection to {self.title} closed before the transcript was complete"
            + (f" ({detail})" if detail else ""),
            retryable=True,
        )

    def protocol(self, message: str) -> EngineError:
        """The engine sent something that is not a message it documents."""
        return self.error(PROTOCOL, message)

    def codes(self) -> dict[str, str]:
        """Every code this engine's errors can have, each with its kind of failure."""
        engine = self.engine
        codes = {f"{engine}-{status}": REFUSED for status in sorted(self.refusals)}
        codes |= {
            f"{engine}-{status}": REJECTED
            for status in sorted(self.reports)
            if status not in self.refusals
        }
        codes |= {f"{engine}-{kind}": kind for kind in FAILURE_KINDS}
        codes[f"{engine}-{OTHER}"] = OTHER
        return codes


__all__ = ["FAILURE_KINDS", "OTHER", "ErrorFactory", "ErrorTable", "plain_error"]
