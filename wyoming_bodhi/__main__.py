"""``wyoming-bodhi``: load settings, build the bridge, serve Wyoming."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from . import __version__
from .addresses import tcp_host_port
from .engines.base import Model
from .engines.websocket import engine_http
from .homeassistant.hass_names import HassNames
from .pipeline.bridge import Bridge
from .redaction import Secrets, redact_logging
from .server.health import check
from .server.listener import BridgeServer, raise_open_file_limit, serve_stdio
from .settings import (
    DEFAULT_URI,
    Settings,
    SettingsError,
    build_parser,
    catalogue,
    merge,
    validate,
)
from .simulators.demo import demo_backend
from .stopping import STOP_SIGNALS, stoppable

if TYPE_CHECKING:
    from .web.server import MetricsServer, StatusServer

_LOGGER = logging.getLogger("wyoming_bodhi")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format=settings.log_format,
        force=True,
    )
    # Every secret any setting declares (and the Supervisor's token, not a setting), blanked
    # out of every line at the sink, whatever logged it.
    redact_logging(Secrets((*settings.secrets, os.environ.get("SUPERVISOR_TOKEN"))))
    if settings.debug:
        # Third-party debug logs are noise here, and a client library's may show headers.
        for name in ("aiohttp", "asyncio", "zeroconf"):
            logging.getLogger(name).setLevel(logging.INFO)


@contextlib.asynccontextmanager
async def zeroconf_advertisement(settings: Settings) -> AsyncIterator[None]:
    if settings.zeroconf is None:
        yield
        return
    from .homeassistant.mdns import advertise

    advertisement = await advertise(settings.uri, settings.zeroconf or None)
    try:
        yield
    finally:
        await advertisement.close()


SUPERVISOR_CORE_URL = "http://supervisor/core"


@contextlib.asynccontextmanager
async def home_assistant_names(
    settings: Settings, http: aiohttp.ClientSession
) -> AsyncIterator[HassNames | None]:
    """Home Assistant's names, fetched and refreshed in the background, if configured."""
    url, token = settings.hass_url, settings.hass_token
    supervisor_token = os.environ.get("SUPERVISOR_TOKEN")
    if not (url and token) and settings.hass_names and supervisor_token:
        # In the add-on, the Supervisor proxies Home Assistant's API with its own token.
        url, token = SUPERVISOR_CORE_URL, supervisor_token
    if not (url and token):
        if settings.hass_names:
            _LOGGER.warning(
                "hass_names is on, but there is no Home Assistant to ask: set hass_url and "
                "HASS_TOKEN, or run as the add-on"
            )
        yield None
        return
    names = HassNames(http, url, token)
    names.start()
    try:
        yield names
    finally:
        await names.stop()


async def serve(settings: Settings) -> None:
    async with (
        demo_backend(settings) as settings,
        # No pool limit of aiohttp's own (100): --max-sessions is the limit that counts.
        # What a server says through it comes with the secrets blanked, before it is cut.
        engine_http(settings.secrets, connector=aiohttp.TCPConnector(limit=0)) as http,
        home_assistant_names(settings, http) as hass,
    ):
        bridge = Bridge(settings, http)
        if hass is not None:
            bridge.hass_names = lambda: hass.names
        if settings.uri.startswith("stdio://"):
            # One client, on our own stdin and stdout: nothing to accept.
            log_serving(bridge)
            await serve_stdio(bridge)
            return
        server = BridgeServer(bridge)
        # Observing from the start, so that the first request is on the page and in /metrics.
        page, probes = http_listeners(bridge, lambda: server.connections)
        with StopSignals(bridge) as signals:
            try:
                await server.start()
            except OSError as err:
                raise ServeError(cannot_serve(settings.uri, err)) from None
            try:
                await start_http(page, settings.http_uri, "--http-uri", "BODHI_HTTP_URI")
                await start_http(probes, settings.metrics_uri, "--metrics-uri", "BODHI_METRICS_URI")
                log_serving(bridge)
                async with zeroconf_advertisement(settings):
                    signum = await signals.first
                if signum == signal.SIGTERM and settings.drain_delay:
                    _LOGGER.info(
                        "Shutting down (SIGTERM): not ready, but taking requests for %g s more "
                        "(drain_delay); then requests in flight get %g s (shutdown_timeout)",
                        settings.drain_delay,
                        settings.shutdown_timeout,
                    )
                    await server.drain(signals.at + settings.drain_delay, signals.again)
                else:
                    # Ctrl-C comes from a person at a terminal, not from an orchestrator: no
                    # load balancer is there to notice, so no new connection is taken.
                    _LOGGER.info("Shutting down (%s)", signal.Signals(signum).name)
            finally:
                await server.finish(settings.shutdown_timeout, signals.again)
                # The page stops only now, so that its microphone was answered too; the
                # health checks and metrics were answered through the drain and the grace.
                # All three at once, each within 1.75 s (CLOSING_TIME, web.server.STOP_TIME):
                # one after the other, they would add up past Docker's 10 s.
                listeners = [listener for listener in (page, probes) if listener is not None]
                await asyncio.gather(server.close(), *(each.stop() for each in listeners))


def http_listeners(
    bridge: Bridge, connections: Callable[[], int]
) -> tuple[StatusServer | None, MetricsServer | None]:
    """The status page and the metrics listener, as configured, sharing one set of metrics."""
    settings = bridge.settings
    if not (settings.http_uri or settings.metrics_uri):
        raise_open_file_limit(settings.max_connections, settings.max_sessions)
        return None, None
    # Imported only when asked for: a server without them starts sooner.
    from .web.metrics import Metrics
    from .web.server import (
        PROBE_CONNECTIONS,
        MetricsServer,
        StatusServer,
        open_files,
        page_connections,
    )

    # The Wyoming side's files come first; the page takes what is left of the limit.
    probe_files = open_files(PROBE_CONNECTIONS) if settings.metrics_uri else 0
    page_files = open_files(settings.http_max_connections) if settings.http_uri else 0
    granted = raise_open_file_limit(
        settings.max_connections, settings.max_sessions, page_files + probe_files
    )
    metrics = Metrics.observing(bridge, connections)
    page = (
        StatusServer(
            bridge,
            connections,
            metrics,
            max_connections=page_connections(max(0, granted - probe_files)),
        )
        if settings.http_uri
        else None
    )
    probes = MetricsServer(bridge, metrics) if settings.metrics_uri else None
    return page, probes


async def start_http(
    listener: StatusServer | MetricsServer | None, uri: str | None, flag: str, env: str
) -> None:
    if listener is None:
        return
    try:
        await listener.start()
    except OSError as err:
        raise ServeError(cannot_serve(uri or "", err, flag, env)) from None


class StopSignals:
    """SIGTERM and SIGINT (Docker, Kubernetes and the Supervisor stop containers with
    SIGTERM). The first begins a stop: the server says it is not ready at once, in the
    signal's own callback. A second one hurries it: no more waiting for requests, what is
    still in flight is answered ``shutdown`` now."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._loop = asyncio.get_running_loop()
        self.first: asyncio.Future[int] = self._loop.create_future()
        """The first signal's number."""
        self.at = 0.0
        """When it came, by the event loop's clock."""
        self.again = asyncio.Event()
        self._before: dict[signal.Signals, Any] = {}

    def __enter__(self) -> StopSignals:
        self._before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError):
                self._loop.add_signal_handler(signum, self._received, signum)
        return self

    def __exit__(self, *_exc: object) -> None:
        # Back to what was there before (the command's own stop, see .stopping) for the
        # little that is left to do, not to the default the loop leaves (for PID 1: the
        # signal is dropped); held back meanwhile, so that none falls in between.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for signum in STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError):
                    self._loop.remove_signal_handler(signum)
                if self._before.get(signum) is not None:
                    signal.signal(signum, self._before[signum])
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _received(self, signum: int) -> None:
        if self.first.done():
            _LOGGER.info("%s again: stopping now", signal.Signals(signum).name)
            self.again.set()
            return
        self._bridge.draining = True
        self.at = self._loop.time()
        self.first.set_result(signum)


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on (None: asyncio's own).

    uvloop (libuv underneath) runs the same code on a faster loop; it is an optional extra,
    used by ``auto`` when installed. Raises :class:`ServeError` when it is asked for by name
    but missing.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ServeError(
                "event_loop uvloop needs uvloop: pip install uvloop (in a clone: pip install "
                "'.[uvloop]'), or use --event-loop asyncio"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def log_serving(bridge: Bridge) -> None:
    settings = bridge.settings
    engines = "; ".join(
        f"{engine.title} at {engine.url} "
        f"({'demo credentials' if settings.demo else engine.describe_credentials()}, "
        f"{len(engine.models)} models)"
        for engine in bridge.engines
    )
    loop = asyncio.get_running_loop()
    _LOGGER.info(
        "wyoming-bodhi %s serving %s with %s; default model %s; event loop %s",
        __version__,
        settings.uri,
        engines,
        settings.model,
        "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio",
    )


class ServeError(Exception):
    """The server cannot start; the message says what to do."""


def cannot_serve(uri: str, err: OSError, flag: str = "--uri", env: str = "WYOMING_URI") -> str:
    reason = err.strerror or str(err) or err.__class__.__name__
    host_port = tcp_host_port(uri)
    if host_port is None:
        return f"cannot serve {uri}: {reason}"
    host, port = host_port
    # Ten up: the next two are the status page's and the metrics listener's by convention.
    another = f"tcp://{host or '0.0.0.0'}:{port + 10 if port else 10300}"
    if err.errno == errno.EADDRINUSE:
        hint = (
            f"port {port} is already in use (another wyoming-bodhi or Wyoming server?); pick "
            f"another with {flag} {another} (or {env})"
        )
    elif err.errno == errno.EACCES:
        hint = f"not allowed to listen on port {port}; pick one above 1023 with {flag} {another}"
    elif err.errno == errno.EADDRNOTAVAIL:
        hint = f"this machine has no address {host}; use {flag} tcp://0.0.0.0:{port} for all"
    else:
        hint = reason
    return f"cannot serve {uri}: {hint}"


def list_models(models: Iterable[Model]) -> None:
    """``name  languages  description``, a model a line."""
    rows = [(model.name, ", ".join(model.languages), model.description) for model in models]
    width = max(len(name) for name, _, _ in rows)
    for name, languages, description in rows:
        print(f"{name:<{width}}  {languages:<24}  {description}")


def health_check(uri: str) -> int:
    problem = asyncio.run(check(uri))
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print(f"healthy: {uri}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # What the command does first (see .stopping): a stop while starting ends it at once.
    return stoppable(lambda: run(argv))


def run(argv: Sequence[str] | None) -> int:
    try:
        # The flags are the engines' too: a plugin that cannot be used stops even --help.
        args = build_parser().parse_args(argv)
        raw = merge(args, os.environ)
        if args.health_check:
            # Only the address matters: no credentials are needed to ask for Info.
            return health_check(str(raw.get("uri") or DEFAULT_URI))
        if args.list_models:
            # Nor to list the models.
            list_models(model for _, models in catalogue(raw) for model in models)
            return 0
        settings = validate(raw)
    except SettingsError as err:
        print(f"wyoming-bodhi: {err}", file=sys.stderr)
        return 2
    configure_logging(settings)
    for notice in settings.deprecations:
        _LOGGER.warning("%s", notice)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
            runner.run(serve(settings))
    except SettingsError as err:
        # A plugin that fails to build its engine or to start its simulator: as at start.
        print(f"wyoming-bodhi: {err}", file=sys.stderr)
        return 2
    except (ServeError, RuntimeError) as err:
        # Start-up problems we can name (a port in use, a missing optional extra).
        print(f"wyoming-bodhi: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"wyoming-bodhi: {cannot_serve(settings.uri, err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
