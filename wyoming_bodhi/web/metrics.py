"""The Prometheus metrics: an :class:`ActivityObserver` for what happened, gauges read at
scrape time for what is happening, and the process's own (memory, CPU, open files).

One registry per server, served by ``/metrics`` on the status page and on the metrics
listener alike; it exists whenever either is configured.

Label values come from a closed set, whatever an engine says: a result is a code of the
server's own, or one of the codes an engine's error table declares (``<engine>-401``,
``<engine>-timeout``); anything else folds into ``<engine>-error``. One series per code an
upstream invents would grow ``/metrics`` (and Prometheus) without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

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
from ..engines.errors import OTHER
from ..pipeline.activity import GONE, TRANSCRIPT, RequestRecord
from ..pipeline.bridge import Bridge

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds after the end of the audio; the page's chart and the Prometheus histogram."""

SERVER_RESULTS = frozenset(
    {TRANSCRIPT, GONE, "protocol", "busy", "audio-format", "unknown-model", "audio-too-long",
     "shutdown", "internal", "engine-error"}
)  # fmt: skip
"""Results the server itself gives a request."""


class Labels:
    """The closed set of label values: the server's own results, and each engine's error
    codes as its error table declares them; any other code is ``<engine>-error``."""

    def __init__(self, codes: Mapping[str, Collection[str]]) -> None:
        self._codes = {engine: frozenset(known) for engine, known in codes.items()}

    @classmethod
    def of(cls, bridge: Bridge) -> Labels:
        return cls(bridge.error_codes)

    def result(self, result: str) -> str:
        """A request's result as a label value."""
        if result in SERVER_RESULTS:
            return result
        for engine, known in self._codes.items():
            if result.startswith(f"{engine}-"):
                return result if result in known else f"{engine}-{OTHER}"
        return OTHER

    def status(self, engine: str, code: str) -> str:
        """A failed handshake's code as a status label: what follows ``<engine>-``."""
        known = self._codes.get(engine, frozenset())
        return code.removeprefix(f"{engine}-") if code in known else OTHER


class Metrics:
    """Create with :meth:`observing`; serve :attr:`registry`."""

    def __init__(self, bridge: Bridge, connections: Callable[[], float]) -> None:
        self.labels = Labels.of(bridge)
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
        self.requests.labels(self.labels.result(record.result)).inc()
        if record.engine:
            self.billed.labels(record.engine).inc(record.billed_seconds)
        if record.latency is not None and record.result == TRANSCRIPT:
            self.latency.observe(record.latency)

    def handshake_failed(self, engine: str, code: str) -> None:
        self.handshake_failures.labels(engine, self.labels.status(engine, code)).inc()
