"""The HTTP side: the status page, its API, the page's microphone, and what machines ask
(``/healthz``, ``/readyz``, ``/metrics``: see :mod:`.probes`).

Every URL the page uses is relative, so it works as it is under Home Assistant's ingress
prefix (``/api/hassio_ingress/<token>/``). Nothing served here holds a credential: the
configuration is shown with its secrets as "set" or "not set", and every JSON answer is
written with each secret value blanked out, should an engine have quoted one.

Who may use it (see :mod:`.access`): ``http_allow`` (the add-on allows only the Supervisor's
ingress proxy), which the listener applies as it accepts a connection (:mod:`.server`); a
request must name the server by an address, ``localhost`` or a name in
``http_hosts`` (a DNS-rebinding page cannot pass for it); and a browser's request must come
from the page's own origin, so another site open in the same browser can neither read the
live feed nor start what costs something (a microphone session, an engine check).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import WSMsgType, web

from .. import __version__
from ..pipeline.bridge import Bridge
from ..redaction import Secrets
from .access import host_allowed, origin_allowed
from .browser_mic import CLOSE_TIMEOUT, microphone_socket
from .check import CheckRate, check_engine
from .metrics import Metrics
from .monitor import Monitor
from .probes import BRIDGE_KEY, METRICS_KEY, metrics, readyz

_LOGGER = logging.getLogger(__name__)

STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "worklet.js": "text/javascript",
    "style.css": "text/css",
}
# Framed by Home Assistant's own page under ingress (the same origin as ours there).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'none'"
)

MONITOR_KEY = web.AppKey("monitor", Monitor)
STATIC_KEY = web.AppKey("static", dict)
CHECKS_KEY = web.AppKey("checks", dict)
CHECK_RATES_KEY = web.AppKey("check_rates", dict)
DUMPS_KEY: web.AppKey[Callable[[Any], str]] = web.AppKey("dumps")
"""JSON with the secrets blanked out: what every answer here is written with."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static() -> dict[str, bytes]:
    folder = resources.files(__package__).joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def build_app(bridge: Bridge, monitor: Monitor, registry: Metrics) -> web.Application:
    settings = bridge.settings
    hosts = frozenset(settings.http_hosts)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Before any handler: a refused WebSocket never opens, a refused action never starts.
        headers = request.headers
        if not host_allowed(headers.get("Host"), hosts):
            return web.Response(
                status=403,
                text="this server answers only to its addresses, localhost, and the names "
                "given to it (--http-host NAME, http_hosts, BODHI_HTTP_HOSTS): open it by one "
                "of those\n",
            )
        if not origin_allowed(
            headers.get("Origin"), headers.get("Host"), headers.get("X-Forwarded-Host")
        ):
            return web.json_response(
                {"error": "only the status page itself may do this (Origin does not match)"},
                status=403,
            )
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    app = web.Application(middlewares=[guard], client_max_size=4096)
    app[BRIDGE_KEY] = bridge
    app[MONITOR_KEY] = monitor
    app[METRICS_KEY] = registry
    app[STATIC_KEY] = _static()
    app[CHECKS_KEY] = {}
    app[CHECK_RATES_KEY] = {}
    secrets = Secrets(bridge.secrets)
    app[DUMPS_KEY] = lambda data: secrets.text(json.dumps(data))
    app.router.add_get("/", _page)
    for name in STATIC_FILES:
        if name != "index.html":
            app.router.add_get(f"/{name}", _static_file)
    app.router.add_get("/api/status", _status)
    app.router.add_get("/api/live", _live)
    app.router.add_post("/api/check/{engine}", _check)
    app.router.add_get("/api/microphone", _microphone)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", readyz)
    return app


# -- the page ---------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATIC_KEY]["index.html"], content_type="text/html")


async def _static_file(request: web.Request) -> web.Response:
    name = request.path.rsplit("/", 1)[-1]
    content_type = STATIC_FILES[name]
    return web.Response(body=request.app[STATIC_KEY][name], content_type=content_type)


def snapshot(bridge: Bridge, monitor: Monitor) -> dict[str, Any]:
    """Everything the page shows, at once."""
    return {
        "type": "snapshot",
        "version": __version__,
        "engines": [
            {
                "name": engine.name,
                "title": engine.title,
                "vendor": engine.vendor,
                "url": _without_userinfo(engine.url),
                "credentials": engine.describe_credentials(),
                "models": [
                    {"name": model.name, "languages": list(model.languages)}
                    for model in engine.models
                ],
                "audio": f"{engine.audio.rate} Hz 16-bit mono",
            }
            for engine in bridge.engines
        ],
        "configuration": effective_configuration(bridge),
        "recent": list(monitor.recent),
        "counts": monitor.counts(),
        "active_sessions": bridge.active_utterances,
        "max_sessions": bridge.settings.max_sessions,
        "demo": bridge.settings.demo,
    }


def effective_configuration(bridge: Bridge) -> dict[str, Any]:
    """Every setting's value, secrets only as set / not set, URLs without user info."""
    settings = bridge.settings
    shown: dict[str, Any] = {}
    for spec, value in settings.declared():
        if spec.secret:
            shown[spec.name] = "set" if value else "not set"
        elif isinstance(value, str) and "://" in value:
            shown[spec.name] = _without_userinfo(value)
        elif isinstance(value, tuple):
            shown[spec.name] = [str(item) if not isinstance(item, str) else item for item in value]
        elif dataclasses.is_dataclass(value):
            shown[spec.name] = str(value)
        else:
            shown[spec.name] = value
    if settings.chunk_ms is None:
        # Unset means chosen per engine: say what each engine gets.
        chosen = {e.title: settings.frame_ms(e.audio.frame_ms) for e in bridge.engines}
        shown["chunk_ms"] = "unset: " + ", ".join(f"{ms} ms ({t})" for t, ms in chosen.items())
    return shown


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _status(request: web.Request) -> web.Response:
    return web.json_response(
        snapshot(request.app[BRIDGE_KEY], request.app[MONITOR_KEY]), dumps=request.app[DUMPS_KEY]
    )


async def _live(request: web.Request) -> web.WebSocketResponse:
    """A snapshot, then every update as it happens (WebSocket: Home Assistant's ingress
    passes it through as it is, where it may buffer a streamed response)."""
    bridge, monitor = request.app[BRIDGE_KEY], request.app[MONITOR_KEY]
    dumps = request.app[DUMPS_KEY]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1024, timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    updates = monitor.subscribe()
    try:
        await ws.send_json(snapshot(bridge, monitor), dumps=dumps)

        async def drain() -> None:
            # The page sends nothing; reading notices it leave.
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    return

        reader = asyncio.create_task(drain())
        try:
            while True:
                getter = asyncio.create_task(updates.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    getter.cancel()
                    break
                update = getter.result()
                if update is None:
                    break
                update["active_sessions"] = bridge.active_utterances
                await ws.send_json(update, dumps=dumps)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    except (ConnectionError, RuntimeError) as err:
        _LOGGER.debug("A live page went away: %r", err)
    finally:
        monitor.unsubscribe(updates)
        await ws.close()
    return ws


# -- actions (the guard has checked their origin) ---------------------------------------------


async def _check(request: web.Request) -> web.Response:
    bridge, monitor = request.app[BRIDGE_KEY], request.app[MONITOR_KEY]
    name = request.match_info["engine"]
    engine = next((engine for engine in bridge.engines if engine.name == name), None)
    if engine is None:
        return web.json_response({"error": f"no engine {name!r} is configured"}, status=404)
    checks: dict[str, asyncio.Task[Any]] = request.app[CHECKS_KEY]
    running = checks.get(name)
    if running is None or running.done():
        # One check per engine at a time (a page clicking away joins it), and a few a minute.
        refusal = bridge.refusal()
        if refusal is not None:
            return web.json_response({"error": refusal[0], "code": refusal[1]}, status=503)
        rate = request.app[CHECK_RATES_KEY].setdefault(name, CheckRate())
        wait = math.ceil(rate.take())
        if wait:
            return web.json_response(
                {
                    "error": f"{engine.title} has been checked {rate.burst} times in a short "
                    f"while ({rate.burst} at once, then one every {rate.every:g} s): try "
                    f"again in {wait} s"
                },
                status=429,
                headers={"Retry-After": str(wait)},
            )
        running = checks[name] = asyncio.create_task(_counted_check(bridge, engine))
    result = await asyncio.shield(running)
    shown = {"type": "check", "checked_at": time.time(), **dataclasses.asdict(result)}
    monitor.publish(shown)
    return web.json_response(shown, dumps=request.app[DUMPS_KEY])


async def _counted_check(bridge: Bridge, engine: Any) -> Any:
    # A check holds an engine session, so it counts against max_sessions like a request.
    bridge.active_utterances += 1
    try:
        return await check_engine(engine, bridge.secrets)
    finally:
        bridge.active_utterances -= 1


async def _microphone(request: web.Request) -> web.StreamResponse:
    return await microphone_socket(request, request.app[BRIDGE_KEY])


# -- for machines -----------------------------------------------------------------------------


async def _healthz(request: web.Request) -> web.Response:
    """What balancers were told to check before /readyz, kept as it was: 200 while new
    requests are welcome, 503 from the first moment of a stop, so their configurations get
    the drain as they are. (The metrics listener's /healthz is liveness instead.)"""
    if not request.app[BRIDGE_KEY].ready:
        return web.json_response({"status": "stopping"}, status=503)
    return web.json_response({"status": "ok", "version": __version__})
