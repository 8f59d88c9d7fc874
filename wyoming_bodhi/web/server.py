"""Serving the HTTP side beside the Wyoming server: the status page on ``http_uri`` and the
health and metrics listener on ``metrics_uri``, each within bounds of its own.

At most ``max_connections`` connections at once per listener (the page's are
``http_max_connections``, live pages and microphone tests included: a WebSocket keeps its
connection). Connections are accepted one at a time, only while there is room: one more is
answered ``503`` and closed (a few at a time), and beyond those, connections wait in the
kernel's queue. So a listener never holds more than :func:`open_files` descriptors, on
asyncio's loop or uvloop alike, and with the open-file budget
(:func:`..server.listener.raise_open_file_limit`) nothing done to it can take those the
Wyoming side needs.

No one peer can take a listener from the others (a load balancer's or the kubelet's health
checks, Prometheus, another browser):

- a peer ``http_allow`` refuses is answered ``403`` as it is accepted, before it takes a
  place, and it never reaches aiohttp;
- one address holds at most :func:`per_peer` of the places, so a quarter of them is always
  left to the others (all of them when ``http_allow`` admits one address only, the add-on's
  ingress proxy);
- a connection must send its first request's head within :data:`HEAD_TIMEOUT` of being
  accepted, far sooner than its keep-alive timeout, which then bounds how long it may rest
  between requests, or take to send the next head (aiohttp's own default is an hour).

One connection's handling (counted, turned away, aborted in a stop; what aiohttp says of
it) is :mod:`.connection`'s: a request aiohttp cannot read is one warning line per
interval, not an ERROR with a traceback each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import Counter
from collections.abc import Callable, Sequence

from aiohttp import web

from ..addresses import ip_of, is_loopback, tcp_host_port
from ..logs import Throttled
from ..pipeline.bridge import Bridge
from .access import Network, networks, peer_allowed
from .app import build_app
from .connection import Counted, ServerLog, TurnedAway
from .metrics import Labels, Metrics
from .monitor import Monitor
from .probes import KEEPALIVE_TIMEOUT as PROBES_KEEPALIVE_TIMEOUT
from .probes import build_probes_app

_LOGGER = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT = 20.0
"""Seconds a page connection may go without a request (its first included) before it is
closed. Browsers reconnect as they need; above the 15 s for which aiohttp's client pool (Home
Assistant's ingress proxy) keeps a connection, so that it never reuses one as it closes."""
PROBE_CONNECTIONS = 16
"""Connections the metrics listener serves at once: health checks and scrapes are short, and
a few balancers, a kubelet and Prometheus need no more."""
TURNING_AWAY = 4
"""Connections being answered 503 at once; more wait in the kernel's queue meanwhile."""
HEAD_TIMEOUT = 3.0
"""Seconds a connection has, from being accepted, to send its first request's head (request
line and headers). Health checks, scrapes, proxies and browsers send it at once; a
connection that sends nothing, or a header now and then, is only holding a place."""
REFUSED = "not allowed from this address\n"
STOP_SLACK = 0.25
"""Seconds a listener's connections get, once aborted, to end before its stop gives up."""
ABORT_AT = 1.5
"""Seconds into a stop at which the connections still open are aborted: a page that does not
answer its WebSocket's close frame, a client still sending a request's body. Until then they
have what a Wyoming client has to take its last answer (1 s) and hang up (0.5 s)."""
STOP_TIME = ABORT_AT + STOP_SLACK
"""Seconds, at most, a listener's :meth:`~_Listener.stop` takes: the 1.75 s of the Wyoming
side's close (``server.listener.CLOSING_TIME``), alongside which it runs, so that a stop's
arithmetic (drain_delay + shutdown_timeout + 1.75 s) holds with the page and the metrics
listener open too."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def open_files(max_connections: int) -> int:
    """Descriptors a listener holds at most with ``max_connections``."""
    return max_connections + TURNING_AWAY


def page_connections(files: int) -> int:
    """The connections a listener may serve with ``files`` descriptors (at least one)."""
    return max(1, files - TURNING_AWAY)


def per_peer(max_connections: int) -> int:
    """The connections one address may hold of ``max_connections``: all but a quarter, which
    is kept for everyone else."""
    return max(1, max_connections - max_connections // 4)


def _only_one_address(allowed: Sequence[Network]) -> bool:
    return len(allowed) == 1 and allowed[0].num_addresses == 1


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
    """An aiohttp application on a ``tcp://`` URI, at most ``max_connections`` at once:
    ``await start()``, ``await stop()``."""

    what = "HTTP"
    noun = "HTTP"
    named = "HTTP server"
    """What its refusals call it."""
    """What its connections are called in the log."""
    limit_name = "its limit"
    """How the limit is set, for the words a turned-away connection gets."""

    def __init__(
        self,
        uri: str,
        app: web.Application,
        warnings: Throttled,
        *,
        max_connections: int,
        keepalive_timeout: float,
        allowed: Sequence[Network] = (),
    ) -> None:
        self.host, self.port = listen_address(uri)
        self.max_connections = max_connections
        self.connections = 0
        """Connections served now."""
        self._allowed = allowed
        self.per_peer = max_connections if _only_one_address(allowed) else per_peer(max_connections)
        """Connections one address may hold: with one address allowed, there are no others
        to keep room for."""
        self._held: Counter[str] = Counter()
        """Connections served now, by address."""
        self._turning_away = 0
        self._room = asyncio.Event()
        self._room.set()
        self._runner = web.AppRunner(
            app,
            access_log=None,
            logger=ServerLog(self.noun, warnings),
            # aiohttp waits up to this for a request's handler, then cancels it and waits up
            # to this again: counted twice, it is the whole of STOP_TIME.
            shutdown_timeout=STOP_TIME / 2,
            keepalive_timeout=keepalive_timeout,
        )
        self._open: set[Counted] = set()
        """The connections being served, to abort what is still open late in a stop."""
        self._accepting: asyncio.Task[None] | None = None
        self._warnings = warnings

    async def start(self) -> None:
        """Bind (port 0 picks a free port, then :attr:`port` says which) and serve."""
        sock = bind(self.host, self.port)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        self._accepting = asyncio.create_task(self._accept(sock), name=f"{self.what} accept")
        _LOGGER.info("%s on %s", self.what, shown_url(self.host, self.port))

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        with sock:
            while True:
                await self._room.wait()
                try:
                    conn, address = await loop.sock_accept(sock)
                except OSError as err:
                    if err.errno not in _OUT_OF_RESOURCES:
                        # One connection's trouble (reset before it was accepted, say).
                        _LOGGER.debug("Accepting an HTTP connection failed: %r", err)
                        await asyncio.sleep(0.01)
                        continue
                    self._warnings.warning(
                        _LOGGER,
                        "Cannot accept %s connections: %s; they wait meanwhile. Raise the "
                        "open-file limit (ulimit -n)",
                        self.noun,
                        err,
                    )
                    await asyncio.sleep(1.0)
                    continue
                await self._serve(loop, conn, address[0])

    async def _serve(self, loop: asyncio.AbstractEventLoop, conn: socket.socket, peer: str) -> None:
        protocol = self._protocol(peer)
        if protocol is None:
            conn.close()
            return
        try:
            await loop.connect_accepted_socket(lambda: protocol, conn)
        except OSError:
            conn.close()
            protocol.connection_lost(None)

    def _protocol(self, peer: str) -> asyncio.Protocol | None:
        """For a connection just accepted from ``peer``: aiohttp's, counted; or a refusal;
        or None, to be closed without a word, when refusals are being said as fast as they
        may be already."""
        if self._allowed and not peer_allowed(peer, self._allowed):
            self._warnings.warning(
                _LOGGER, "Refusing a %s connection from %s: not in http_allow", self.noun, peer
            )
            return self._turn_away("403 Forbidden", REFUSED)
        if self.connections >= self.max_connections:
            self._warnings.warning(
                _LOGGER,
                "Turning away a %s connection: %d open (%s)",
                self.noun,
                self.max_connections,
                self.limit_name,
            )
            return self._turn_away(
                "503 Service Unavailable",
                f"the {self.named} has {self.max_connections} connections open "
                f"({self.limit_name}); try again shortly\n",
            )
        address = str(ip_of(peer) or peer)
        if self._held[address] >= self.per_peer:
            self._warnings.warning(
                _LOGGER,
                "Turning away a %s connection from %s: it holds %d, as many as one address may",
                self.noun,
                address,
                self.per_peer,
            )
            return self._turn_away(
                "503 Service Unavailable",
                f"this address has {self.per_peer} connections open to the "
                f"{self.named}, as many as one address may of its "
                f"{self.max_connections}; try again shortly\n",
            )
        handler = self._runner.server
        assert handler is not None
        self.connections += 1
        self._held[address] += 1
        self._update_room()
        counted = Counted(handler(), lambda gone: self._released(address, gone), HEAD_TIMEOUT)
        self._open.add(counted)
        return counted

    def _turn_away(self, status: str, text: str) -> asyncio.Protocol | None:
        if self._turning_away >= TURNING_AWAY:
            return None
        self._turning_away += 1
        self._update_room()
        return TurnedAway(status, text, self._turned_away)

    def _released(self, address: str, counted: Counted) -> None:
        self._open.discard(counted)
        self.connections -= 1
        self._held[address] -= 1
        if not self._held[address]:
            del self._held[address]
        self._update_room()

    def _turned_away(self) -> None:
        self._turning_away -= 1
        self._update_room()

    def _update_room(self) -> None:
        if self.connections < self.max_connections or self._turning_away < TURNING_AWAY:
            self._room.set()
        else:
            self._room.clear()

    async def stop(self) -> None:
        """Stop accepting, let the requests being served end, and close every connection,
        within :data:`STOP_TIME`. What is still open at :data:`ABORT_AT` is aborted: a
        WebSocket's close waits for the page's own close frame, and a request's body may
        come a byte at a time; neither may hold up the exit. aiohttp stops waiting for a
        handler by then (twice its shutdown timeout); should anything else outlast that, the
        stop gives up at :data:`STOP_TIME` all the same, :data:`STOP_SLACK` after the abort."""
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        aborting = asyncio.get_running_loop().call_later(ABORT_AT, self._abort_open)
        cleanup = asyncio.create_task(self._runner.cleanup(), name=f"{self.what} stop")
        try:
            # aiohttp's own bound (twice shutdown_timeout) is STOP_TIME already; this one
            # also covers what it does not bound, so that STOP_TIME holds whatever happens.
            _done, pending = await asyncio.wait({cleanup}, timeout=STOP_TIME)
        finally:
            aborting.cancel()
        if not pending:
            await cleanup  # what it raised, if anything
            return
        _LOGGER.warning("The %s did not stop within %g s", self.noun, STOP_TIME)
        cleanup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleanup

    def _abort_open(self) -> None:
        if self._open:
            _LOGGER.debug("Stopping: aborting %d %s connection(s)", len(self._open), self.noun)
        for counted in list(self._open):
            counted.abort()


class StatusServer(_Listener):
    """The status page. Observes the bridge from construction on.

    ``metrics``: the server's metrics, when it has them already (a metrics listener too);
    otherwise the page makes them. ``max_connections``: fewer than ``http_max_connections``
    when the open-file limit leaves no more (see :func:`page_connections`)."""

    what = "Status page"
    noun = "page"
    named = "status page"
    limit_name = "http_max_connections"

    def __init__(
        self,
        bridge: Bridge,
        connections: Callable[[], int],
        metrics: Metrics | None = None,
        *,
        max_connections: int | None = None,
    ) -> None:
        settings = bridge.settings
        uri = settings.http_uri
        assert uri is not None
        self.metrics = metrics or Metrics.observing(bridge, connections)
        self.monitor = Monitor(Labels.of(bridge))
        bridge.activity.add(self.monitor)
        allowed = max_connections or settings.http_max_connections
        if allowed < settings.http_max_connections:
            _LOGGER.warning(
                "The status page serves %d connections at once, not %d (http_max_connections), "
                "so that the Wyoming side keeps the open files it needs",
                allowed,
                settings.http_max_connections,
            )
        super().__init__(
            uri,
            build_app(bridge, self.monitor, self.metrics),
            bridge.warnings,
            max_connections=allowed,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
            allowed=networks(settings.http_allow),
        )
        if not settings.http_allow and not is_loopback(self.host):
            # The page has no login of its own: said once, where the operator looks first.
            _LOGGER.warning(
                "The status page on %s is open to every peer that reaches the port: they see "
                "recent transcripts and can run the microphone test and the engine check on "
                "your account. Limit it with --http-allow (e.g. 192.168.1.0/24), or put it "
                "behind a proxy with a login",
                shown_url(self.host, self.port),
            )

    async def stop(self) -> None:
        self.monitor.close()
        await super().stop()


class MetricsServer(_Listener):
    """``/healthz``, ``/readyz`` and ``/metrics`` alone (see :mod:`.probes`). Stopped along
    with the Wyoming side's close and the page, once the requests have ended, so that probes
    and scrapes are answered through the drain and the grace, and a stop still fits Docker's
    10 s."""

    what = "Health checks and metrics"
    noun = "metrics listener"
    named = "metrics listener"
    limit_name = "the metrics listener's limit"

    def __init__(self, bridge: Bridge, metrics: Metrics) -> None:
        uri = bridge.settings.metrics_uri
        assert uri is not None
        super().__init__(
            uri,
            build_probes_app(bridge, metrics),
            bridge.warnings,
            max_connections=PROBE_CONNECTIONS,
            keepalive_timeout=PROBES_KEEPALIVE_TIMEOUT,
        )
