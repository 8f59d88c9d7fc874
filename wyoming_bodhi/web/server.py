"""Serving the HTTP side beside the Wyoming server, on ``http_uri``."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from aiohttp import web

from ..addresses import tcp_host_port
from ..pipeline.activity import safely
from ..pipeline.bridge import Bridge
from .app import build_app
from .monitor import Monitor

_LOGGER = logging.getLogger(__name__)


class StatusServer:
    """``await start()``; ``await stop()``. Observes the bridge from construction on."""

    def __init__(self, bridge: Bridge, connections: Callable[[], int]) -> None:
        uri = bridge.settings.http_uri
        assert uri is not None
        host_port = tcp_host_port(uri)
        assert host_port is not None
        # No host given (tcp://:10301) is this machine only: the page has no password.
        # Every interface is asked for by name (0.0.0.0 or ::).
        self.host, self.port = host_port[0] or "127.0.0.1", host_port[1]
        self.monitor = Monitor(lambda: bridge.active_utterances, connections)
        bridge.activity = safely(self.monitor)
        self._app = build_app(bridge, self.monitor)
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)

    async def start(self) -> None:
        """Bind (port 0 picks a free port, then :attr:`port` says which) and serve."""
        host = self.host
        ipv6 = ":" in host
        sock = socket.create_server(
            (host, self.port),
            family=socket.AF_INET6 if ipv6 else socket.AF_INET,
            dualstack_ipv6=host == "::",
        )
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        shown = f"[{host}]" if ipv6 else host
        _LOGGER.info("Status page on http://%s:%d/", shown, self.port)

    async def stop(self) -> None:
        self.monitor.close()
        await self._runner.cleanup()
