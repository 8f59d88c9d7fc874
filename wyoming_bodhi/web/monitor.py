"""What the status page shows: an :class:`ActivityObserver` that keeps the last requests,
counts outcomes, and tells live subscribers at once (``/metrics`` has its own observer,
:class:`~.metrics.Metrics`).

Everything here runs on the event loop in a few microseconds per request and never waits:
a subscriber that does not keep up loses updates (and gets a fresh snapshot when it next
reads), rather than holding memory or the pipeline.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
from collections.abc import Collection
from dataclasses import asdict, replace
from typing import Any

from ..pipeline.activity import TRANSCRIPT, RequestRecord
from .metrics import LATENCY_BUCKETS, outcome_label, result_label

RECENT_REQUESTS = 50
"""Requests the page lists; older ones are only counted."""
TEXT_SHOWN = 200
"""Characters of a transcript or error message kept for the page."""
SUBSCRIBER_BACKLOG = 100
"""Updates queued for one live page before it is considered gone and dropped."""


def page_record(record: RequestRecord) -> dict[str, Any]:
    """A request as the page shows it: text cut short."""
    shown = asdict(record)
    if len(record.text) > TEXT_SHOWN:
        shown["text"] = record.text[: TEXT_SHOWN - 1] + "…"
    return shown


class Monitor:
    """Observes the bridge; the page reads it. Results and statuses are counted under the
    same closed set of names as in /metrics (``engines``: the engines' names)."""

    def __init__(self, engines: Collection[str] = ()) -> None:
        self.engines = tuple(engines)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_REQUESTS)
        self.results: collections.Counter[str] = collections.Counter()
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        """Requests per latency bucket; the last is "more than the largest"."""
        self.handshake_failures: collections.Counter[str] = collections.Counter()
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()

    # -- ActivityObserver ---------------------------------------------------------------

    def request_done(self, record: RequestRecord) -> None:
        record = replace(record, result=result_label(record.result, self.engines))
        self.results[record.result] += 1
        if record.latency is not None and record.result == TRANSCRIPT:
            self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, record.latency)] += 1
        shown = page_record(record)
        self.recent.appendleft(shown)
        self._publish({"type": "request", "request": shown, "counts": self.counts()})

    def handshake_failed(self, engine: str, code: str) -> None:
        status = outcome_label(code.removeprefix(f"{engine}-"))
        self.handshake_failures[f"{engine} {status}"] += 1
        self._publish({"type": "counts", "counts": self.counts()})

    # -- for the page ---------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return {
            "results": dict(self.results),
            "latency_buckets": list(LATENCY_BUCKETS),
            "latency_counts": list(self.latency_counts),
            "handshake_failures": dict(self.handshake_failures),
        }

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, update: dict[str, Any]) -> None:
        """Tell every live page (an engine check's result, say)."""
        self._publish(update)

    def close(self) -> None:
        """The server is stopping: every live page is told there is no more."""
        for queue in list(self._subscribers):
            self._drop(queue)

    def _publish(self, update: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        # A page that falls this far behind is closed; it reconnects for a fresh snapshot.
        self._subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)
