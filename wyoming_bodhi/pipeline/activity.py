"""What the bridge did, told as it happens: each request's outcome, each refused handshake.

The pipeline reports to an :class:`ActivityObserver`; the status page and ``/metrics`` are
observers. Reports are synchronous and cheap, and an observer must never wait or raise: a
voice command is never slowed by someone watching it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

_LOGGER = logging.getLogger(__name__)

TRANSCRIPT = "transcript"
"""The result of a request answered with a transcript; otherwise its error code."""
GONE = "client-gone"
"""The client left before its answer."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request, once it is over."""

    started_at: float
    """Wall-clock time (epoch seconds) the request began."""
    client: str
    """Who asked: the Wyoming client's address, or ``browser`` for the page's microphone."""
    engine: str
    model: str
    language: str
    audio_seconds: float
    """Audio the client sent."""
    billed_seconds: float
    """Audio sent to the engine, keepalive silence included: what the user pays for."""
    latency: float | None
    """Seconds from the end of the client's audio to the answer, when both happened."""
    result: str
    """``transcript``, an error code (``bodhi-401``, ``busy``, …), or ``client-gone``."""
    text: str
    """The transcript, or the error's message."""

    @classmethod
    def refused(cls, client: str, code: str, text: str) -> RequestRecord:
        """A request refused before any engine was involved."""
        return cls(
            started_at=time.time(),
            client=client,
            engine="",
            model="",
            language="",
            audio_seconds=0.0,
            billed_seconds=0.0,
            latency=None,
            result=code,
            text=text,
        )


class ActivityObserver(Protocol):
    def request_done(self, record: RequestRecord) -> None: ...

    def handshake_failed(self, engine: str, code: str) -> None: ...


class Observers:
    """Tells every observer added (the metrics, the status page), in turn. An observer's
    bug is logged, never the request's problem."""

    def __init__(self) -> None:
        self._observers: list[ActivityObserver] = []

    def add(self, observer: ActivityObserver) -> None:
        self._observers.append(observer)

    def request_done(self, record: RequestRecord) -> None:
        for observer in self._observers:
            try:
                observer.request_done(record)
            except Exception:
                _LOGGER.exception("Recording a request failed")

    def handshake_failed(self, engine: str, code: str) -> None:
        for observer in self._observers:
            try:
                observer.handshake_failed(engine, code)
            except Exception:
                _LOGGER.exception("Recording a handshake failure failed")
