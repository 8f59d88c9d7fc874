"""What machines ask: is the server alive, is it ready for a request, and its metrics.

``GET /healthz``, ``GET /readyz`` and ``GET /metrics``, on the metrics listener
(``metrics_uri``) and nothing else there: nothing on it costs money (no engine check, no
microphone) or shows a transcript (no live page, no status JSON), so it can be bound where a
load balancer, the kubelet and Prometheus reach it while the status page stays on loopback
or behind ingress. The status page serves ``/readyz`` and ``/metrics`` too, with the same
handlers.

- ``/healthz`` is liveness: 200 for as long as the process serves, through a drain and the
  grace after it, so that a liveness probe never kills a server that is finishing requests.
- ``/readyz`` is readiness: 200 while new requests are welcome, 503 from the first moment of
  a stop. At ``max_sessions`` it stays 200: one more request is answered ``busy`` at once,
  which tells the client more than a balancer with every replica taken out (no answer at
  all), and capacity changes faster than health checks see it; scale on the metrics.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..pipeline.bridge import Bridge
from .metrics import Metrics

BRIDGE_KEY = web.AppKey("bridge", Bridge)
METRICS_KEY = web.AppKey("metrics", Metrics)
KEEPALIVE_TIMEOUT = 10.0
"""Seconds an idle HTTP connection is kept: probes and scrapes come every few seconds, and an
idle socket held for aiohttp's default hour is a file descriptor taken from the server."""


def state(bridge: Bridge) -> str:
    """``ok`` while serving, ``draining`` once a stop has begun (still taking requests),
    ``stopping`` once new requests are refused."""
    if bridge.shutting_down:
        return "stopping"
    return "draining" if bridge.draining else "ok"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": state(request.app[BRIDGE_KEY]), "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE_KEY]
    body: dict[str, Any] = {
        "status": "ready" if bridge.ready else state(bridge),
        "sessions": bridge.active_utterances,
        "max_sessions": bridge.settings.max_sessions,
    }
    return web.json_response(body, status=200 if bridge.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[METRICS_KEY].registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def build_probes_app(bridge: Bridge, registry: Metrics) -> web.Application:
    """The metrics listener's application: these three routes, nothing else (404)."""
    app = web.Application(client_max_size=1024)
    app[BRIDGE_KEY] = bridge
    app[METRICS_KEY] = registry
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
