"""Serving the HTTP side beside the Wyoming server: the status page on ``http_uri``, and the
health and metrics listener on ``metrics_uri``."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from aiohttp import web

from ..addresses import WILDCARD_HOSTS, is_loopback, tcp_host_port
from ..pipeline.bridge import Bridge
from .app import build_app
from .metrics import Metrics
from .monitor import Monitor
from .probes import KEEPALIVE_TIMEOUT, build_probes_app

_LOGGER = logging.getLogger(__name__)

AIOHTTP_KEEPALIVE = 3630.0
"""aiohttp's own keep-alive timeout (seconds)."""


def listen_address(uri: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` as (host, port). No host given (``tcp://:10301``) is this machine
    only: the page has no password. Every interface is asked for by name (0.0.0.0 or ::)."""
    host_port = tcp_host_port(uri)
    assert host_port is not None
    return host_port[0] or "127.0.0.1", host_port[1]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free port)."""
    return socket.create_server(
        (host, port),
        family=socket.AF_INET6 if ":" in host else socket.AF_INET,
        dualstack_ipv6=host == "::",
    )


def shown_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class _Listener:
    """An aiohttp application on a ``tcp://`` URI: ``await start()``, ``await stop()``."""

    what = "HTTP"

    def __init__(
        self, uri: str, app: web.Application, *, keepalive_timeout: float = AIOHTTP_KEEPALIVE
    ) -> None:
        self.host, self.port = listen_address(uri)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, keepalive_timeout=keepalive_timeout
        )

    async def start(self) -> None:
        """Bind (port 0 picks a free port, then :attr:`port` says which) and serve."""
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        _LOGGER.info("%s on %s", self.what, shown_url(self.host, self.port))

    async def stop(self) -> None:
        await self._runner.cleanup()


class StatusServer(_Listener):
    """The status page. Observes the bridge from construction on.

    ``metrics``: the server's metrics, when it has them already (a metrics listener too);
    otherwise the page makes them."""

    what = "Status page"

    def __init__(
        self, bridge: Bridge, connections: Callable[[], int], metrics: Metrics | None = None
    ) -> None:
        uri = bridge.settings.http_uri
        assert uri is not None
        host, _port = listen_address(uri)
        self.metrics = metrics or Metrics.observing(bridge, connections)
        self.monitor = Monitor([engine.name for engine in bridge.engines])
        bridge.activity.add(self.monitor)
        loopback_only = host not in WILDCARD_HOSTS and is_loopback(host)
        app = build_app(bridge, self.monitor, self.metrics, loopback_only=loopback_only)
        super().__init__(uri, app)

    async def stop(self) -> None:
        self.monitor.close()
        await super().stop()


class MetricsServer(_Listener):
    """``/healthz``, ``/readyz`` and ``/metrics`` alone (see :mod:`.probes`). Stopped once
    everything else has, so that probes and scrapes are answered to the end."""

    what = "Health checks and metrics"

    def __init__(self, bridge: Bridge, metrics: Metrics) -> None:
        uri = bridge.settings.metrics_uri
        assert uri is not None
        super().__init__(
            uri, build_probes_app(bridge, metrics), keepalive_timeout=KEEPALIVE_TIMEOUT
        )
