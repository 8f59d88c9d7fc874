"""Replicas of the bridge behind Debian's real HAProxy, and clients that speak to them as Home
Assistant does: the parts of tests/test_deploy_haproxy.py.

Everything runs on 127.0.0.1: the Bodhi simulator in the test's process, each replica and
HAProxy as processes of their own. HAProxy runs ``deploy/haproxy/haproxy.cfg`` with only its
addresses changed (:func:`render_config`).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_read_event, write_event

from .harness import API_KEY, CUSTOMER_ID, bridge_command, clean_env, free_port, stop_process
from .signals import encode, utterances

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HOST = "127.0.0.1"
BACKEND = "replicas"
"""The backend in haproxy.cfg whose servers are the replicas."""

RATE = 16000
CHUNK_SECONDS = 0.01
"""Home Assistant's chunks: 10 ms."""
TEXT = "batti jalao"
# One short command: 0.1 s of silence, 0.4 s of "speech", 0.1 s of silence.
AUDIO = encode(utterances(RATE, count=1, burst=0.4, edge=0.1))
AUDIO_SECONDS = len(AUDIO) / (2 * RATE)
ANSWER_TIMEOUT = 10.0
"""Past the end of its audio, a request without an answer counts as lost."""


def _wire(event: Event) -> bytes:
    buffer = io.BytesIO()
    write_event(event, buffer)
    return buffer.getvalue()


_START = _wire(Transcribe(language="hi").event()) + _wire(AudioStart(RATE, 2, 1).event())
_STEP = round(RATE * CHUNK_SECONDS) * 2
_CHUNKS = [
    _wire(AudioChunk(RATE, 2, 1, AUDIO[offset : offset + _STEP]).event())
    for offset in range(0, len(AUDIO), _STEP)
]
_STOP = _wire(AudioStop().event())


# -- HAProxy ---------------------------------------------------------------------------------


def haproxy() -> str | None:
    """The haproxy binary, if installed (Debian: apt-get install haproxy)."""
    return shutil.which("haproxy")


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"haproxy.cfg no longer has exactly one {old.strip()!r}"
    return text.replace(old, new)


SERVER_TEMPLATE = "    server-template bodhi- 3 bodhi:10300 resolvers docker init-addr none\n"


def render_config(
    config: str,
    frontend: int,
    monitor: int,
    replicas: Sequence[Replica],
    changes: Sequence[tuple[str, str]] = (),
) -> str:
    """``config`` with its listeners on loopback ports and its servers ``replicas``.

    Only these lines change, and ``changes`` (line, replacement): the balance, the checks,
    the timeouts and the retries are otherwise the file's own. Each server keeps the
    ``default-server`` settings and names its own check port.
    """
    for line, replacement in changes:
        config = _replace_once(config, line, replacement)
    config = _replace_once(config, "    bind :10300\n", f"    bind {HOST}:{frontend}\n")
    config = _replace_once(config, "    bind :8404\n", f"    bind {HOST}:{monitor}\n")
    servers = "".join(
        f"    server {replica.name} {HOST}:{replica.port} port {replica.metrics_port}\n"
        for replica in replicas
    )
    return _replace_once(config, SERVER_TEMPLATE, servers)


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``haproxy -c``: parse and check the configuration, start nothing."""
    binary = haproxy()
    assert binary is not None
    return subprocess.run(
        [binary, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )


@dataclass(frozen=True)
class Session:
    """How HAProxy saw one client connection end."""

    server: str
    state: str
    """HAProxy's termination state: ``SD`` the server's side was reset while data flowed,
    ``SC`` the server refused the connection, ``CD`` the client went away, ``--`` no error
    (a killed process's sockets with nothing left unread close with a plain FIN)."""


# option tcplog: client:port [date] frontend backend/server Tw/Tc/Tt bytes state ...
_TCPLOG = re.compile(r"^\S+:(\d+) \[[^\]]*\] wyoming \S+/(\S+) \S+ \S+ (\S\S) ")


@dataclass
class HAProxy:
    """A running HAProxy: its Wyoming frontend's port, and its view of the replicas."""

    port: int
    monitor: int
    proc: subprocess.Popen[bytes]
    http: aiohttp.ClientSession
    log: Path

    def sessions_by_client(self) -> dict[int, Session]:
        """Every Wyoming session HAProxy has logged (``option tcplog``), by client port."""
        sessions = {}
        for line in self.log.read_text(errors="replace").splitlines():
            match = _TCPLOG.match(line)
            if match:
                port, server, state = match.groups()
                sessions[int(port)] = Session(server, state)
        return sessions

    async def statuses(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it: UP, DOWN, "UP 1/2" (going down), ..."""
        return {row["svname"]: row["status"] for row in await self._stats()}

    async def sessions(self, server: str) -> int:
        """Connections HAProxy has open to ``server`` now."""
        for row in await self._stats():
            if row["svname"] == server:
                return int(row["scur"])
        raise KeyError(server)

    async def _stats(self) -> list[dict[str, str]]:
        assert self.proc.poll() is None, "haproxy has exited"
        url = f"http://{HOST}:{self.monitor}/stats;csv"
        async with self.http.get(url) as response:
            response.raise_for_status()
            text = (await response.text()).removeprefix("# ")
        return [
            row
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == BACKEND and row["svname"] not in ("BACKEND", "FRONTEND")
        ]

    async def wait_for(self, server: str, status: str, timeout: float) -> float:
        """Until HAProxy reports ``server`` in ``status``; returns when (loop time)."""
        return await poll_until(
            lambda: self._status_is(server, status), timeout, f"{server} {status} in HAProxy"
        )

    async def _status_is(self, server: str, status: str) -> bool:
        return (await self.statuses()).get(server) == status


@contextlib.asynccontextmanager
async def running_haproxy(
    replicas: Sequence[Replica], directory: Path, changes: Sequence[tuple[str, str]] = ()
) -> AsyncIterator[HAProxy]:
    binary = haproxy()
    assert binary is not None
    frontend, monitor = free_port(), free_port()
    config = directory / "haproxy.cfg"
    shipped = HAPROXY_CONFIG.read_text(encoding="utf-8")
    config.write_text(render_config(shipped, frontend, monitor, replicas, changes))
    log = directory / "haproxy.log"
    proc = _start_haproxy(binary, config, log)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            balancer = HAProxy(frontend, monitor, proc, http, log)
            await poll_until(lambda: _answers(balancer), 10, "HAProxy's stats")
            yield balancer
    finally:
        stop_process(proc)


def _start_haproxy(binary: str, config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        # -db: in the foreground, as in a container.
        return subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )


async def _answers(balancer: HAProxy) -> bool:
    try:
        await balancer.statuses()
    except aiohttp.ClientError:
        return False
    return True


async def poll_until(condition: Any, timeout: float, what: str, every: float = 0.02) -> float:
    """Ask ``condition()`` (async) until it holds; returns the loop time it first did.

    Polling with a deadline, not synchronisation by sleep: HAProxy and the replicas are other
    processes, and their state is only seen by asking.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            if await condition():
                return loop.time()
        if loop.time() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        await asyncio.sleep(every)


# -- replicas --------------------------------------------------------------------------------


@dataclass
class Replica:
    """One bridge process on fixed ports, restartable on the same ones (as a pod or a
    container is behind a balancer's fixed configuration)."""

    name: str
    bodhi_url: str
    log: IO[bytes]
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The server's own drain delay: the time a balancer gets to notice a stop.
        args = bridge_command(
            self.port, self.bodhi_url,
            "--metrics-uri", f"tcp://{HOST}:{self.metrics_port}", *self.extra, drain_delay=None,
        )  # fmt: skip
        env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return await asyncio.to_thread(self.proc.wait, timeout)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def interrupt(self) -> None:
        """SIGINT, Ctrl-C's signal: stop without the drain delay (no balancer to wait for)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    async def ready(self, http: aiohttp.ClientSession) -> bool:
        """Whether /readyz says 200 (False when it says otherwise or nothing answers)."""
        url = f"http://{HOST}:{self.metrics_port}/readyz"
        async with http.get(url) as response:
            return response.status == 200


@contextlib.contextmanager
def replicas_running(bodhi_url: str, directory: Path, count: int = 3) -> Iterator[list[Replica]]:
    with contextlib.ExitStack() as stack:
        replicas: list[Replica] = []
        for index in range(1, count + 1):
            log = stack.enter_context((directory / f"bodhi-{index}.log").open("ab"))
            replica = Replica(f"bodhi-{index}", bodhi_url, log)
            stack.callback(replica.stop)
            replica.start()
            replicas.append(replica)
        try:
            yield replicas
        finally:
            # All at once; each then stops as soon as its requests are answered.
            for replica in replicas:
                replica.interrupt()


# -- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as its client saw it."""

    route: str
    """"haproxy", or the replica it went to directly."""
    started: float
    ended: float
    outcome: str
    """"transcript", "error <code>", "closed" (no answer), "refused" or "timeout"."""
    latency_ms: float | None = None
    """From the end of the audio (audio-stop written) to the transcript."""
    local_port: int | None = None
    """The client's end of the connection (None: it did not connect)."""

    @property
    def answered(self) -> bool:
        return self.outcome == "transcript"


async def one_request(route: str, port: int) -> Request:
    """One request the way Home Assistant makes it: a connection of its own, 10 ms chunks in
    real time, hang up as soon as the transcript is in."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    local_port: int | None = None

    def done(outcome: str, latency: float | None = None) -> Request:
        return Request(route, started, loop.time(), outcome, latency, local_port)

    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return done("refused")
    local_port = writer.get_extra_info("sockname")[1]
    answer = asyncio.create_task(_read_answer(reader))
    try:
        async with asyncio.timeout(AUDIO_SECONDS + ANSWER_TIMEOUT):
            writer.write(_START)
            for index, chunk in enumerate(_CHUNKS, start=1):
                if answer.done():
                    break
                await asyncio.sleep(started + index * CHUNK_SECONDS - loop.time())
                writer.write(chunk)
                await writer.drain()
            writer.write(_STOP)
            await writer.drain()
            audio_ended = loop.time()
            outcome, answered = await answer
            if outcome == "transcript":
                return done(outcome, (answered - audio_ended) * 1000)
            return done(outcome)
    except TimeoutError:
        return done("timeout")
    except ConnectionError:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                outcome, _answered = await asyncio.shield(answer)
                return done(outcome)
        return done("closed")
    finally:
        answer.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[str, float]:
    """The request's outcome and when it arrived."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            event = await async_read_event(reader)
            if event is None:
                return "closed", loop.time()
            if event.type == "transcript":
                text = str(event.data.get("text"))
                return ("transcript" if text == TEXT else f"wrong text {text!r}"), loop.time()
            if event.type == "error":
                return f"error {event.data.get('code')}", loop.time()
    except ConnectionError:
        return "closed", loop.time()


@dataclass
class Load:
    """``clients`` clients, each making one request after another until stopped.

    ``direct`` maps a route name to a replica's port: while it is set, every other request of
    each client goes straight to one of them instead of through HAProxy (the two then share
    the same load, for comparing latency).
    """

    haproxy_port: int
    clients: int
    requests: list[Request] = field(default_factory=list)
    direct: dict[str, int] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(index)) for index in range(self.clients)]

    async def stop(self) -> None:
        """Let each client finish the request it is making, then stop."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, index: int) -> None:
        # Starts spread over one request's length, so that requests do not move in step.
        await asyncio.sleep(AUDIO_SECONDS * index / self.clients)
        turn = index
        while not self._stopping.is_set():
            turn += 1
            if self.direct and turn % 2:
                routes = sorted(self.direct)
                route = routes[(turn // 2) % len(routes)]
                self.requests.append(await one_request(route, self.direct[route]))
            else:
                self.requests.append(await one_request("haproxy", self.haproxy_port))
            # A moment between requests, as between two people's commands.
            await asyncio.sleep(random.uniform(0, 0.05))

    def since(self, start: float, route: str | None = None) -> list[Request]:
        return [
            request
            for request in self.requests
            if request.started >= start and (route is None or request.route == route)
        ]


def lost(requests: Sequence[Request]) -> list[Request]:
    return [request for request in requests if not request.answered]
