"""Where an utterance's events go, and the bounds on a client that stops reading them.

Both sides that serve requests (a Wyoming connection's outbox, the status page's microphone
socket) implement :class:`EventSink` within the same bounds: nothing that produces an event
ever waits on the client, and a client that stops reading is cut off.
"""

from __future__ import annotations

from typing import Final, Protocol

from wyoming.event import Event

WRITE_TIMEOUT: Final = 5.0
"""Seconds a write may make no progress: transcripts are a few hundred bytes."""
MAX_QUEUED: Final = 1024 * 1024
"""Bytes waiting for a client before it counts as not reading (Info is about 10 kB)."""


class ClientGone(Exception):
    """The client's connection is closed: nobody is waiting for the answer."""


class EventSink(Protocol):
    """Where an utterance's events go: its slot in the connection's output, in order."""

    def put(self, event: Event) -> None:
        """Queue an event without waiting. Raises :class:`ClientGone`, or ``ValueError`` for an
        event that cannot be encoded."""

    def close(self) -> None:
        """No more events for this request."""


__all__ = ["MAX_QUEUED", "WRITE_TIMEOUT", "ClientGone", "EventSink"]
