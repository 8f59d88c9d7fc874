"""What the status page shows and ``/metrics`` exports: an :class:`ActivityObserver` that
keeps the last requests, counts outcomes, and tells live subscribers at once.

Everything here runs on the event loop in a few microseconds per request and never waits:
a subscriber that does not keep up loses updates (and gets a fresh snapshot when it next
reads), rather than holding memory or the pipeline.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..pipeline.activity import TRANSCRIPT, RequestRecord

RECENT_REQUESTS = 50
"""Requests the page lists; older ones are only counted."""
TEXT_SHOWN = 200
"""Characters of a transcript or error message kept for the page."""
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds after the end of the audio; the page's chart and the Prometheus histogram."""
SUBSCRIBER_BACKLOG = 100
"""Updates queued for one live page before it is considered gone and dropped."""


def page_record(record: RequestRecord) -> dict[str, Any]:
    """A request as the page shows it: text cut short."""
    shown = asdict(record)
    if len(record.text) > TEXT_SHOWN:
        shown["text"] = record.text[: TEXT_SHOWN - 1] + "…"
    return shown


class Metrics:
    """The Prometheus metrics, in a registry of their own (one per server)."""

    def __init__(
        self, active_sessions: Callable[[], float], active_connections: Callable[[], float]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "wyoming_bodhi_requests",
            "Requests, by result: transcript, or the error code sent to the client.",
            ["result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wyoming_bodhi_latency_seconds",
            "Seconds from the end of a request's audio to its answer.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.billed = Counter(
            "wyoming_bodhi_engine_audio_seconds",
            "Seconds of audio sent to each engine, keepalive silence included (billed).",
            ["engine"],
            registry=self.registry,
        )
        self.handshake_failures = Counter(
            "wyoming_bodhi_engine_handshake_failures",
            "Failed connections to an engine, by status (401, 503, unreachable, timeout, ...).",
            ["engine", "status"],
            registry=self.registry,
        )
        sessions = Gauge(
            "wyoming_bodhi_active_sessions",
            "Requests in progress (engine sessions open or opening).",
            registry=self.registry,
        )
        sessions.set_function(active_sessions)
        connections = Gauge(
            "wyoming_bodhi_active_connections",
            "Wyoming client connections open.",
            registry=self.registry,
        )
        connections.set_function(active_connections)


class Monitor:
    """Observes the bridge; the page and /metrics read it."""

    def __init__(
        self,
        active_sessions: Callable[[], float],
        active_connections: Callable[[], float],
    ) -> None:
        self.metrics = Metrics(active_sessions, active_connections)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_REQUESTS)
        self.results: collections.Counter[str] = collections.Counter()
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        """Requests per latency bucket; the last is "more than the largest"."""
        self.handshake_failures: collections.Counter[str] = collections.Counter()
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()

    # -- ActivityObserver ---------------------------------------------------------------

    def request_done(self, record: RequestRecord) -> None:
        metrics = self.metrics
        metrics.requests.labels(record.result).inc()
        self.results[record.result] += 1
        if record.engine:
            metrics.billed.labels(record.engine).inc(record.billed_seconds)
        if record.latency is not None and record.result == TRANSCRIPT:
            metrics.latency.observe(record.latency)
            self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, record.latency)] += 1
        shown = page_record(record)
        self.recent.appendleft(shown)
        self._publish({"type": "request", "request": shown, "counts": self.counts()})

    def handshake_failed(self, engine: str, code: str) -> None:
        status = code.removeprefix(f"{engine}-")
        self.metrics.handshake_failures.labels(engine, status).inc()
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
