"""The Wyoming server: accepts connections, and stops gracefully.

``wyoming.server.AsyncServer`` closes every connection at once on SIGTERM, dropping
utterances in flight without a word to their clients. Here a shutdown stops accepting,
gives in-flight utterances ``shutdown_timeout`` seconds to finish, ends the rest with an
``error`` event, and only then closes the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from urllib.parse import urlsplit

from .bridge import Bridge
from .handler import BodhiEventHandler
from .wire import MAX_LINE_BYTES

_LOGGER = logging.getLogger(__name__)


class BridgeServer:
    """Serves ``tcp://`` and ``unix://`` URIs (``stdio://`` is served by ``serve_stdio``)."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], BodhiEventHandler] = {}
        self._unix_path: Path | None = None

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._handlers)

    async def start(self) -> None:
        uri = urlsplit(self._bridge.settings.uri)
        if uri.scheme == "tcp":
            self._server = await asyncio.start_server(
                self._on_client, uri.hostname, uri.port, limit=MAX_LINE_BYTES
            )
        elif uri.scheme == "unix":
            self._unix_path = Path(uri.path)
            self._unix_path.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(
                self._on_client, uri.path, limit=MAX_LINE_BYTES
            )
        else:
            raise ValueError(f"BridgeServer cannot serve {uri.scheme}://")

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = BodhiEventHandler(reader, writer, self._bridge)
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = handler
        try:
            await handler.run()
        finally:
            self._handlers.pop(task, None)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let utterances finish within ``grace`` s, end the rest, close."""
        self._bridge.shutting_down = True
        if self._server is not None:
            self._server.close()
        busy = [handler for handler in self._handlers.values() if handler.busy]
        if busy:
            _LOGGER.info("Shutting down: waiting up to %g s for %d utterance(s)", grace, len(busy))
            waits = [asyncio.ensure_future(handler.wait_until_idle()) for handler in busy]
            _done, pending = await asyncio.wait(waits, timeout=grace)
            for wait in pending:
                wait.cancel()
        for handler in list(self._handlers.values()):
            await handler.shut_down()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=2.0)
        if self._unix_path is not None:
            with contextlib.suppress(OSError):
                self._unix_path.unlink(missing_ok=True)
        _LOGGER.info("Stopped")
