"""Every request in flight, whoever asked: a Wyoming client or the status page's microphone.

A stop has one path for all of them: wait, within the grace, until each is over; then answer
whatever is left with the same ``shutdown`` error, all at once. Each request still
writes its own answer its own way (a Wyoming event, a message on the page's socket).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

SHUTDOWN = "shutdown"
SHUTDOWN_TEXT = "the speech-to-text server is shutting down; try again"


class Ongoing(Protocol):
    """What a stop needs of a request (an :class:`~.utterance.Utterance`)."""

    @property
    def finished(self) -> bool:
        """Its final event is out: nothing more is owed to the client."""

    async def wait(self) -> None:
        """Until it is over."""

    def fail(self, text: str, code: str) -> None:
        """Answer it with an error now, unless it is already answered, and end it."""


class InFlight:
    """The requests not over yet; a request joins as it starts and leaves once it is over."""

    def __init__(self) -> None:
        self._requests: set[Ongoing] = set()

    def add(self, request: Ongoing) -> None:
        self._requests.add(request)

    def discard(self, request: Ongoing) -> None:
        self._requests.discard(request)

    @property
    def unanswered(self) -> int:
        return sum(1 for request in self._requests if not request.finished)

    async def wait(self, timeout: float, hurry: asyncio.Event | None = None) -> None:
        """Until every request is over, ``timeout`` s pass, or ``hurry`` is set. Requests that
        join meanwhile are not waited for: by then a stop refuses new ones."""
        over = asyncio.gather(*(request.wait() for request in self._requests))
        waits: set[asyncio.Future[Any]] = {over}
        if hurry is not None:
            waits.add(asyncio.ensure_future(hurry.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def fail_all(self, text: str = SHUTDOWN_TEXT, code: str = SHUTDOWN) -> None:
        """Answer every request still waiting for its answer with this error, now; each
        engine session then closes on its own (:meth:`wait` for them)."""
        for request in list(self._requests):
            request.fail(text, code)
