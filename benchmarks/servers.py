"""The simulator and the bridge as separate processes on 127.0.0.1, as a user runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from wyoming.event import async_read_event
from wyoming.info import Describe

from .machine import ProcSample, sample_process
from .wire import encode_event

HOST = "127.0.0.1"
API_KEY = "benchmark-key-0123456789"
SIMULATOR_TEXTS = ["namaste duniya", "batti jalao"]
READY_TIMEOUT = 20.0
POLL_SECONDS = 0.005
_DESCRIBE = encode_event(Describe().event())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One child process serving on ``port``; its output goes to ``log_path``."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def sample(self) -> ProcSample:
        self.check_alive()
        return sample_process(self.pid)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _child_env(**extra: str) -> dict[str, str]:
    """This environment without any Bodhi/Wyoming settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BODHI_", "WYOMING_"))}
    env.update(extra)
    return env


def _spawn(name: str, port: int, args: Sequence[str], env: dict[str, str], log_dir: Path) -> Server:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Server(name, proc, port, log_path)


def spawn_simulator(
    log_dir: Path, name: str = "simulator", handshake_delay: float = 0.0, extra: Sequence[str] = ()
) -> Server:
    port = free_port()
    args = [
        "-m",
        "wyoming_bodhi.simulators.bodhi",
        "--port",
        str(port),
        "--texts",
        json.dumps(SIMULATOR_TEXTS),
        *extra,
    ]
    if handshake_delay:
        args += ["--handshake-delay", str(handshake_delay)]
    return _spawn(name, port, args, _child_env(), log_dir)


MAX_STREAMS = 100


def bridge_command(port: int, bodhi_url: str, *extra: str) -> list[str]:
    # The default --max-sessions (20) suits a home; the benchmark asks for 100 at once. No
    # drain delay: no load balancer waits to notice a stop here.
    return [
        "-m", "wyoming_bodhi", "--uri", f"tcp://{HOST}:{port}", "--bodhi-url", bodhi_url,
        "--max-sessions", str(MAX_STREAMS + 10), "--drain-delay", "0", *extra,
    ]  # fmt: skip


def bridge_env() -> dict[str, str]:
    return _child_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=str(uuid.uuid4()))


def spawn_bridge(
    log_dir: Path, bodhi_url: str, name: str = "bridge", extra: Sequence[str] = ()
) -> Server:
    port = free_port()
    return _spawn(name, port, bridge_command(port, bodhi_url, *extra), bridge_env(), log_dir)


async def wait_for_port(server: Server, timeout: float = READY_TIMEOUT) -> None:
    """Poll-connect until ``server`` accepts TCP connections."""
    _reader, writer = await _connect_when_ready(server, time.monotonic() + timeout)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def wait_for_info(server: Server, timeout: float = READY_TIMEOUT) -> None:
    """Poll-connect, send Describe, wait for the Info answer."""
    deadline = time.monotonic() + timeout
    reader, writer = await _connect_when_ready(server, deadline)
    try:
        writer.write(_DESCRIBE)
        await writer.drain()
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            while True:
                event = await async_read_event(reader)
                if event is None:
                    raise ConnectionError(f"{server.name} closed the connection before Info")
                if event.type == "info":
                    return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _connect_when_ready(
    server: Server, deadline: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    while True:
        server.check_alive()
        try:
            return await asyncio.open_connection(HOST, server.port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server.name} did not listen on port {server.port}") from None
            await asyncio.sleep(POLL_SECONDS)


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    """Stop every server on the way out, whatever happened."""
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
