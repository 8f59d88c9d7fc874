"""Test harness: the Bodhi simulator and the bridge as real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import aiohttp.abc
import aiohttp.web
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from wyoming_bodhi.engines import registry
from wyoming_bodhi.homeassistant import supervisor
from wyoming_bodhi.pipeline.activity import RequestRecord
from wyoming_bodhi.pipeline.bridge import Bridge
from wyoming_bodhi.server.listener import BridgeServer
from wyoming_bodhi.settings import Settings, declarations, validate
from wyoming_bodhi.settings.sources import CONFIG_ENV
from wyoming_bodhi.simulators.bodhi import BodhiOptions, BodhiSimulator
from wyoming_bodhi.simulators.bodhi.__main__ import API_KEY_ENV as BODHI_SIMULATOR_KEY
from wyoming_bodhi.simulators.iapp.__main__ import API_KEY_ENV as IAPP_SIMULATOR_KEY
from wyoming_bodhi.web.metrics import Metrics
from wyoming_bodhi.web.server import MetricsServer, StatusServer

API_KEY = "test-key-3f9a1c7e5b2d4a6f"
CUSTOMER_ID = str(uuid.UUID("0b7e4a52-9c1d-4f3e-8a6b-2d5c7e9f1a3b"))
EVENT_TIMEOUT = 10.0
HINDI = Transcribe(language="hi")


@dataclass
class RunningBridge:
    port: int
    bridge: Bridge
    server: BridgeServer

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)


@dataclass
class Recorder:
    """An activity observer (``bridge.activity.add(recorder)``) that keeps what the server
    recorded: one record a request, whatever became of it."""

    records: list[RequestRecord] = field(default_factory=list)
    handshake_failures: list[tuple[str, str]] = field(default_factory=list)

    def request_done(self, record: RequestRecord) -> None:
        self.records.append(record)

    def handshake_failed(self, engine: str, code: str) -> None:
        self.handshake_failures.append((engine, code))

    @property
    def results(self) -> Counter[str]:
        return Counter(record.result for record in self.records)


@contextlib.asynccontextmanager
async def running_simulator(**options: Any) -> AsyncIterator[BodhiSimulator]:
    async with BodhiSimulator(BodhiOptions(**options)) as simulator:
        yield simulator


@contextlib.asynccontextmanager
async def running_bridge(
    bodhi_url: str,
    resolver: aiohttp.abc.AbstractResolver | None = None,
    engines: list[Any] | None = None,
    **settings: Any,
) -> AsyncIterator[RunningBridge]:
    """The bridge's own server on 127.0.0.1:0, configured like the command line would."""
    raw = {
        "api_key": API_KEY,
        "customer_id": CUSTOMER_ID,
        "bodhi_url": bodhi_url,
        "uri": "tcp://127.0.0.1:0",
        **settings,
    }
    connector = aiohttp.TCPConnector(limit=0, resolver=resolver)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        serving_bridge(validate(raw), http, engines) as running,
    ):
        yield running


@contextlib.asynccontextmanager
async def serving_bridge(
    settings: Settings,
    http: aiohttp.ClientSession | None = None,
    engines: list[Any] | None = None,
) -> AsyncIterator[RunningBridge]:
    """The bridge's own server with these settings, as loaded (their ``uri``: 127.0.0.1:0
    in a test); the engines they configure, unless ``engines`` are given."""
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(aiohttp.ClientSession())
        bridge = Bridge(settings, http, engines=engines or [])
        server = BridgeServer(bridge)
        await server.start()
        try:
            yield RunningBridge(server.port, bridge, server)
        finally:
            await server.shutdown(0)


@dataclass
class Rig:
    """The servers of one test, started as it asks for them and stopped, the last first, when
    it ends (the ``rig`` fixture): for tests whose set-up differs only by options."""

    stack: contextlib.AsyncExitStack

    async def simulator(self, **options: Any) -> BodhiSimulator:
        return await self.stack.enter_async_context(running_simulator(**options))

    async def bridge(self, bodhi_url: str, **settings: Any) -> RunningBridge:
        return await self.stack.enter_async_context(running_bridge(bodhi_url, **settings))

    async def status_page(self, running: RunningBridge) -> StatusServer:
        return await self.stack.enter_async_context(running_status_page(running))

    async def metrics_listener(self, running: RunningBridge) -> MetricsServer:
        return await self.stack.enter_async_context(running_metrics_listener(running))


async def settled(condition: Callable[[], object], within: float = 3.0) -> bool:
    """Whether ``condition()`` holds within ``within`` seconds, polled: for state that
    changes as the servers get round to it (a connection closed, a request forgotten)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@contextlib.asynccontextmanager
async def serving(app: aiohttp.web.Application) -> AsyncIterator[int]:
    """``app`` on 127.0.0.1 at a free port (yielded) until the block ends: a stand-in
    server of a test's own (a hostile engine, a misbehaving REST endpoint)."""
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_status_page(running: RunningBridge) -> AsyncIterator[StatusServer]:
    """The bridge's status page on 127.0.0.1 (the bridge needs ``http_uri`` set, port 0)."""
    status = StatusServer(running.bridge, lambda: running.server.connections)
    await status.start()
    try:
        yield status
    finally:
        await status.stop()


@contextlib.asynccontextmanager
async def running_metrics_listener(running: RunningBridge) -> AsyncIterator[MetricsServer]:
    """The bridge's health and metrics listener alone (``metrics_uri`` set, port 0)."""
    listener = MetricsServer(
        running.bridge, Metrics.observing(running.bridge, lambda: running.server.connections)
    )
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


@dataclass
class Exchange:
    """What a Wyoming client saw for one request."""

    events: list[Event] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def of_type(self, event_type: str) -> list[Event]:
        return [event for event in self.events if event.type == event_type]

    @property
    def transcript(self) -> str:
        (event,) = self.of_type("transcript")
        return str(event.data["text"])

    @property
    def chunks(self) -> list[str]:
        return [str(event.data["text"]) for event in self.of_type("transcript-chunk")]

    @property
    def error(self) -> Event:
        (event,) = self.of_type("error")
        return event


async def read_until_final(client: AsyncTcpClient, exchange: Exchange) -> None:
    """Read events until the request's end: transcript-stop, or an error."""
    while True:
        event = await client.read_event()
        if event is None:
            raise ConnectionError("the bridge closed the connection")
        exchange.events.append(event)
        if event.type in ("transcript-stop", "error"):
            return


async def transcribe(
    client: AsyncTcpClient,
    audio: bytes,
    *,
    rate: int = 16000,
    width: int = 2,
    channels: int = 1,
    chunk_seconds: float = 0.02,
    realtime: bool = False,
    request: Transcribe | None = HINDI,
    send_audio_start: bool = True,
) -> Exchange:
    """Send one request the way Home Assistant does and collect the answer."""
    exchange = Exchange()
    reader = asyncio.create_task(read_until_final(client, exchange))
    try:
        if request is not None:
            await client.write_event(request.event())
        if send_audio_start:
            await client.write_event(AudioStart(rate, width, channels).event())
        # Bad formats are sent too (misuse tests): keep the step positive whatever they say.
        step = max(1, int(rate * chunk_seconds)) * max(1, width * channels)
        for offset in range(0, len(audio), step):
            if reader.done():
                break
            piece = audio[offset : offset + step]
            await client.write_event(AudioChunk(rate, width, channels, piece).event())
            if realtime:
                await asyncio.sleep(len(piece) / (rate * width * channels))
        if not reader.done():
            await client.write_event(AudioStop().event())
        await asyncio.wait_for(asyncio.shield(reader), EVENT_TIMEOUT)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await reader
    return exchange


# -- separate processes, as a user runs them ------------------------------------------


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip a test whose tools are missing here, but fail under CI: ``.ci/run`` installs
    them, so there a broken install must never pass as a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} must run under CI: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


def _port_range() -> range:
    """The ports this test process hands out.

    Outside the kernel's ephemeral range: the kernel gives those to every ``connect()`` and
    ``bind(0)`` on the machine, and so could take a port between :func:`free_port` and the
    bind of the server it was meant for (seen with four pytest-xdist workers). And a slice
    of its own per worker, so that two workers never pick the same one. Empty when the
    machine leaves no room, and :func:`free_port` falls back to the kernel's choice.
    """
    low, high = 32768, 60999
    with contextlib.suppress(OSError, ValueError):
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    below, above = range(10000, low), range(high + 1, 65536)
    room = max(below, above, key=len)
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % workers if worker.isdigit() else 0
    size = len(room) // workers
    if size < 64:
        return range(0)
    first = room.start + index * size
    return range(first, first + size)


_PORTS = _port_range()
_next_port = random.randrange(len(_PORTS)) if _PORTS else 0


def free_port() -> int:
    """A loopback port nothing is bound to, not handed out before by this process lately."""
    global _next_port
    for _ in range(len(_PORTS)):
        port = _PORTS[_next_port % len(_PORTS)]
        _next_port += 1
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return port
    with socket.socket() as sock:  # no usable range here: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def configuration() -> frozenset[str]:
    """Every environment variable the server, its clients and the simulators read: each
    setting's, the core's and every installed engine's (old names included, and a secret's
    ``*_FILE``), the config file's, the engine filter, the Supervisor's, the simulators' keys."""
    names = {CONFIG_ENV, registry.ONLY, supervisor.TOKEN_ENV, supervisor.URL_ENV}
    names |= {BODHI_SIMULATOR_KEY, IAPP_SIMULATOR_KEY}
    for spec in declarations():
        for env in (spec.env, *(alias.env for alias in spec.aliases)):
            names |= {env, f"{env}_FILE"} if spec.secret else {env}
    return frozenset(names)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment less a developer's own configuration (:func:`configuration`),
    which must never reach a test's server or client, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in configuration()}
    env.update(extra)
    return env


@contextlib.contextmanager
def process(
    args: list[str],
    env: dict[str, str],
    preexec_fn: Callable[[], None] | None = None,
    *,
    program: str = sys.executable,
) -> Iterator[subprocess.Popen[str]]:
    """``program`` (this Python by default) with ``args``, its output in one pipe; stopped
    when the block ends."""
    proc = subprocess.Popen(
        [program, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_fn,
    )
    try:
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended after ``grace`` seconds; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def bridge_command(
    port: int, bodhi_url: str, *extra: str, drain_delay: float | None = 0
) -> list[str]:
    """Arguments for ``python`` that run the bridge on 127.0.0.1:port against ``bodhi_url``.

    No drain delay unless asked (None: the server's default): it is time for a load balancer
    to notice a stop, and no test but tests/test_shutdown.py has one."""
    drain = [] if drain_delay is None else ["--drain-delay", f"{drain_delay:g}"]
    return ["-m", "wyoming_bodhi", "--uri", f"tcp://127.0.0.1:{port}", "--bodhi-url", bodhi_url,
            *drain, *extra]  # fmt: skip


@dataclass(frozen=True)
class SelfSigned:
    """A throwaway certificate for 127.0.0.1 and localhost, and its key (the ``self_signed``
    fixture)."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """TLS for a server of the test's own that presents the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost (certificate, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
