"""The Prometheus metrics: an :class:`ActivityObserver` for what happened, gauges read at
scrape time for what is happening, and the process's own (memory, CPU, open files).

One registry per server, served by ``/metrics`` on the status page and on the metrics
listener alike; it exists whenever either is configured.

Label values come from a closed set, whatever an engine says: a result is a code of the
server's own, or an engine's code with an outcome this module knows (``bodhi-401``,
``iapp-timeout``); anything else folds into ``<engine>-error``. One series per code an
upstream invents would grow ``/metrics`` (and Prometheus) without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from .. import __version__
from ..pipeline.activity import GONE, TRANSCRIPT, RequestRecord
from ..pipeline.bridge import Bridge

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds after the end of the audio; the page's chart and the Prometheus histogram."""

SERVER_RESULTS = frozenset(
    {TRANSCRIPT, GONE, "protocol", "busy", "audio-format", "unknown-model", "audio-too-long",
     "shutdown", "internal", "engine-error"}
)  # fmt: skip
"""Results the server itself gives a request."""
ENGINE_OUTCOMES = frozenset(
    {"400", "401", "402", "403", "404", "408", "429", "500", "502", "503", "504",
     "unreachable", "tls", "timeout", "connection-lost", "protocol", "rejected", "error"}
)  # fmt: skip
"""What follows ``<engine>-`` in an engine's error code (or is a refused handshake's status):
the statuses the engines document or that say something a user can act on, and the kinds of
failure. Anything else is ``error``."""
OTHER = "error"


def result_label(result: str, engines: Collection[str]) -> str:
    """A request's result as a label value: from a closed set (see the module's text)."""
    if result in SERVER_RESULTS:
        return result
    for engine in engines:
        outcome = result.removeprefix(f"{engine}-")
        if outcome != result:
            return f"{engine}-{outcome_label(outcome)}"
    return OTHER


def outcome_label(outcome: str) -> str:
    """What follows ``<engine>-`` in a code, or a handshake's status, as a label value."""
    return outcome if outcome in ENGINE_OUTCOMES else OTHER


class Metrics:
    """Create with :meth:`observing`; serve :attr:`registry`."""

    def __init__(self, bridge: Bridge, connections: Callable[[], float]) -> None:
        self.engines = tuple(engine.name for engine in bridge.engines)
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # What prometheus-client's default registry has: process_resident_memory_bytes,
        # process_open_fds, process_cpu_seconds_total, python_info, python_gc_*.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        Info(
            "wyoming_bodhi_build", "The version of wyoming-bodhi serving.", registry=registry
        ).info({"version": __version__})
        self.requests = Counter(
            "wyoming_bodhi_requests",
            "Requests, by result: transcript, or the error code sent to the client.",
            ["result"],
            registry=registry,
        )
        self.latency = Histogram(
            "wyoming_bodhi_latency_seconds",
            "Seconds from the end of a request's audio to its answer.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.billed = Counter(
            "wyoming_bodhi_engine_audio_seconds",
            "Seconds of audio sent to each engine, keepalive silence included (billed).",
            ["engine"],
            registry=registry,
        )
        self.handshake_failures = Counter(
            "wyoming_bodhi_engine_handshake_failures",
            "Failed connections to an engine, by status (401, 503, unreachable, timeout, ...).",
            ["engine", "status"],
            registry=registry,
        )
        gauges: list[tuple[str, str, Callable[[], float]]] = [
            ("wyoming_bodhi_active_sessions",
             "Requests in progress (engine sessions open or opening).",
             lambda: bridge.active_utterances),
            ("wyoming_bodhi_sessions_limit",
             "Requests this server takes at once (max_sessions); more are answered busy.",
             lambda: bridge.settings.max_sessions),
            ("wyoming_bodhi_active_connections", "Wyoming client connections open.", connections),
            ("wyoming_bodhi_draining",
             "1 once a stop has begun: not ready for new requests, finishing those in flight.",
             lambda: 0.0 if bridge.ready else 1.0),
        ]  # fmt: skip
        for name, text, read in gauges:
            Gauge(name, text, registry=registry).set_function(read)

    @classmethod
    def observing(cls, bridge: Bridge, connections: Callable[[], float]) -> Metrics:
        """Metrics told every request's outcome from now on."""
        metrics = cls(bridge, connections)
        bridge.activity.add(metrics)
        return metrics

    # -- ActivityObserver ---------------------------------------------------------------

    def request_done(self, record: RequestRecord) -> None:
        self.requests.labels(result_label(record.result, self.engines)).inc()
        if record.engine:
            self.billed.labels(record.engine).inc(record.billed_seconds)
        if record.latency is not None and record.result == TRANSCRIPT:
            self.latency.observe(record.latency)

    def handshake_failed(self, engine: str, code: str) -> None:
        status = outcome_label(code.removeprefix(f"{engine}-"))
        self.handshake_failures.labels(engine, status).inc()
