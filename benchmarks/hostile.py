"""``python -m benchmarks.hostile``: what a hostile client, engine or server costs, measured
from outside the process that suffers it.

1. **Log volume**: bytes a bridge process writes to its log in a minute while one hostile
   client (this process) does its worst without credentials. On the Wyoming port: floods of
   bad ``transcribe`` events, of requests for models that do not exist, of malformed events,
   of connections that send garbage, of events with a 60 kB type that never finish, and of
   requests without audio (each opens a session with the simulator). On the status page and
   the metrics listener: requests aiohttp cannot read (also from an address ``--http-allow``
   refuses), microphone start messages nested 60,000 deep, and connections held idle or with
   half a header. Each attack alone for ``--seconds`` / 4, then all at once for
   ``--seconds`` (default 60).
2. **Health checks under a connection flood**: ``/healthz`` asked once every 0.5 s on each
   HTTP listener (1 s to answer, as a kubelet allows) while one peer holds it with three
   times as many idle and half-header connections as it serves: from another address (the
   kubelet, a balancer), and, for comparison, from the flooding peer's own address.
3. **Metrics series**: the series ``/metrics`` holds after requests to an engine that
   answers each one with a new status code (400 by default): half refused at the handshake
   with a status from 400 to 599, half ended by an in-socket error with a new code each time.
4. **Client memory**: the peak resident memory of ``wyoming-bodhi-transcribe`` against a
   Wyoming server that announces a 2 GB payload and sends 300 MB of it.

Writes ``hostile-<UTC time>.json`` into ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from wyoming.asr import Transcribe
from wyoming.audio import AudioStart, AudioStop
from wyoming.event import Event

from .machine import describe_machine, machine_line, sample_process
from .report import save
from .servers import (
    HOST,
    Server,
    free_port,
    spawn_bridge,
    spawn_simulator,
    wait_for_info,
    wait_for_port,
)
from .wire import encode_event

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "batti-jalao.wav"


OTHER_PEER = "127.0.0.2"
"""An address of this machine that the bridges here allow, as they allow 127.0.0.1: a
kubelet's or a balancer's, beside the hostile client's."""
REFUSED_PEER = "127.0.0.3"
"""An address of this machine that the bridges' ``--http-allow`` refuses."""


@contextlib.asynccontextmanager
async def bridge_process(log_dir: Path, bodhi_url: str, *extra: str) -> AsyncIterator[Server]:
    server = spawn_bridge(log_dir, bodhi_url, name=f"bridge-{time.monotonic_ns()}", extra=extra)
    try:
        await wait_for_info(server)
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Ports:
    """Where one bridge process serves: Wyoming, its status page, its metrics listener."""

    wyoming: int
    page: int
    metrics: int


@contextlib.asynccontextmanager
async def bridge_with_listeners(
    log_dir: Path, bodhi_url: str
) -> AsyncIterator[tuple[Server, Ports]]:
    """A bridge with its status page (allowing :data:`HOST` and :data:`OTHER_PEER` only) and
    its metrics listener on: the process, and where it serves."""
    page, metrics = free_port(), free_port()
    async with bridge_process(
        log_dir, bodhi_url, "--http-uri", f"tcp://{HOST}:{page}", "--http-allow", HOST,
        "--http-allow", OTHER_PEER, "--metrics-uri", f"tcp://{HOST}:{metrics}",
    ) as bridge:  # fmt: skip
        for port in (page, metrics):
            await wait_for_port(Server("http", bridge.proc, port, bridge.log_path))
        yield bridge, Ports(bridge.port, page, metrics)


# -- 1. log volume -------------------------------------------------------------------------------

Attack = Callable[[Ports, float], Awaitable[None]]


async def flood(port: int, until: float, events: Callable[[int], list[Event]]) -> None:
    """One connection at a time sending ``events(n)`` back to back, reading every answer
    (a client that stops reading is closed by the bridge, and costs it nothing more)."""
    counter = itertools.count()
    while time.monotonic() < until:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(HOST, port)
            drain = asyncio.create_task(reader.read(-1))
            try:
                while time.monotonic() < until and not drain.done():
                    batch = b"".join(
                        encode_event(event) for _ in range(50) for event in events(next(counter))
                    )
                    writer.write(batch)
                    await writer.drain()
            finally:
                drain.cancel()
                writer.close()


def bad_transcribe(_n: int) -> list[Event]:
    return [Event("transcribe", {"language": 5}), AudioStop().event()]


def unknown_model(n: int) -> list[Event]:
    return [Transcribe(name=f"no-such-model-{n}").event(), AudioStop().event()]


def empty_request(_n: int) -> list[Event]:
    return [Transcribe(language="hi").event(), AudioStart(16000, 2, 1).event(),
            AudioStop().event()]  # fmt: skip


def malformed(_n: int) -> list[Event]:
    return [Event("audio-chunk", {"width": 2}, payload=b"\0\0"), AudioStop().event()]


async def garbage_connections(port: int, until: float) -> None:
    while time.monotonic() < until:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"this is not a Wyoming event\n")
            await reader.read(-1)
            writer.close()


async def stalled_huge_types(port: int, until: float, at_once: int = 50) -> None:
    """Events whose 60 kB type is named when their body does not arrive in time."""
    line = json.dumps({"type": "x" * 60_000, "payload_length": 10}).encode() + b"\n"

    async def one() -> None:
        while time.monotonic() < until:
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(line)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(-1), max(0.0, until - time.monotonic()))
                writer.close()

    await asyncio.gather(*(one() for _ in range(at_once)))


UNREADABLE = [
    # A byte not allowed in a path, a request line over 8190 bytes, a bad chunk size, and
    # garbage after a request on the same connection: aiohttp cannot read them.
    b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\x01GARBAGE /\r\n\r\n",
]


async def unreadable_requests(
    port: int, until: float, source: str = HOST, at_once: int = 8
) -> None:
    """``at_once`` connections at a time, each one request aiohttp cannot read, its answer
    read to the end."""

    async def one() -> None:
        for n in itertools.count():
            if time.monotonic() >= until:
                return
            with contextlib.suppress(OSError, TimeoutError):
                reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
                try:
                    writer.write(UNREADABLE[n % len(UNREADABLE)])
                    await asyncio.wait_for(reader.read(), 2)
                finally:
                    writer.close()

    await asyncio.gather(*(one() for _ in range(at_once)))


async def nested_microphone_starts(port: int, until: float, at_once: int = 4) -> None:
    """Microphone sockets whose start message is 60,000 ``[``: within the message cap, and
    nested far deeper than a JSON parser recurses."""

    async def one(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < until:
            with contextlib.suppress(OSError, aiohttp.ClientError, TimeoutError):
                async with http.ws_connect(f"http://{HOST}:{port}/api/microphone") as ws:
                    await ws.send_str("[" * 60_000)
                    await ws.receive(timeout=5)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(one(http) for _ in range(at_once)))


async def held_connections(port: int, until: float, count: int, source: str = HOST) -> None:
    """``count`` connections kept open, each opened again as soon as it is closed: half send
    nothing, half a request line and then a header every 0.2 s, never finishing."""

    async def one(half_header: bool) -> None:
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                if half_header:
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while not reader.at_eof() and time.monotonic() < until:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader.read(1000), 0.2)
                    if half_header and not reader.at_eof():
                        writer.write(b"X-Slow: 1\r\n")
            except ConnectionError:
                pass
            finally:
                writer.close()

    await asyncio.gather(*(one(n % 2 == 1) for n in range(count)))


HELD = 3 * 32
"""Connections one peer holds on a listener: three times what the page serves by default."""


async def held_on_both(to: Ports, until: float) -> None:
    await asyncio.gather(
        held_connections(to.page, until, HELD), held_connections(to.metrics, until, HELD)
    )


ATTACKS: dict[str, Attack] = {
    "bad transcribe events": lambda to, until: flood(to.wyoming, until, bad_transcribe),
    "requests for unknown models": lambda to, until: flood(to.wyoming, until, unknown_model),
    "malformed audio-chunk events": lambda to, until: flood(to.wyoming, until, malformed),
    "requests without audio (each a Bodhi session)": lambda to, until: flood(
        to.wyoming, until, empty_request
    ),
    "connections sending garbage": lambda to, until: garbage_connections(to.wyoming, until),
    "60 kB event types that stall": lambda to, until: stalled_huge_types(to.wyoming, until),
    "HTTP requests the status page cannot read": lambda to, until: unreadable_requests(
        to.page, until
    ),
    "the same from an address --http-allow refuses": lambda to, until: unreadable_requests(
        to.page, until, source=REFUSED_PEER
    ),
    "HTTP requests the metrics listener cannot read": lambda to, until: unreadable_requests(
        to.metrics, until
    ),
    "microphone start messages nested 60,000 deep": lambda to, until: nested_microphone_starts(
        to.page, until
    ),
    "idle and half-header connections to both listeners": held_on_both,
}


async def log_volume(log_dir: Path, seconds: float) -> dict[str, Any]:
    simulator = spawn_simulator(log_dir, f"simulator-{time.monotonic_ns()}")
    out: dict[str, Any] = {}
    try:
        cases: list[tuple[str, list[Attack], float]] = [
            (name, [attack], seconds / 4) for name, attack in ATTACKS.items()
        ]
        cases.append(("all at once", list(ATTACKS.values()), seconds))
        for name, attacks, duration in cases:
            async with bridge_with_listeners(log_dir, f"ws://{HOST}:{simulator.port}") as (
                bridge,
                ports,
            ):
                before = bridge.log_path.stat().st_size
                until = time.monotonic() + duration
                await asyncio.gather(*(attack(ports, until) for attack in attacks))
                await asyncio.sleep(0.5)
                text = bridge.log_path.read_bytes()[before:]
            lines = text.splitlines()
            out[name] = {
                "seconds": duration,
                "bytes_per_minute": len(text) * 60 / duration,
                "lines_per_minute": len(lines) * 60 / duration,
                "longest_line": max((len(line) for line in lines), default=0),
            }
            print(f"  {name}: {out[name]}", file=sys.stderr, flush=True)
    finally:
        simulator.stop()
    return out


# -- 2. health checks under a connection flood -----------------------------------------------


async def health_check(port: int, source: str) -> bool:
    """``GET /healthz`` from ``source`` as a kubelet sends it: 200 within 1 s?"""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    try:
        async with asyncio.timeout(1):
            reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
            try:
                writer.write(request)
                status = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return status.startswith(b"HTTP/1.1 200 ")


async def probes_under_flood(log_dir: Path, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with bridge_with_listeners(log_dir, f"ws://{HOST}:9") as (_bridge, ports):
        for listener, port in (("status page", ports.page), ("metrics listener", ports.metrics)):
            until = time.monotonic() + seconds
            flood = asyncio.create_task(held_connections(port, until, HELD))
            await asyncio.sleep(1.0)  # the flood takes every place it can first
            answered = {OTHER_PEER: 0, HOST: 0}
            asked = 0
            while time.monotonic() < until - 1:
                results = await asyncio.gather(*(health_check(port, peer) for peer in answered))
                for peer, ok in zip(answered, results, strict=True):
                    answered[peer] += ok
                asked += 1
                await asyncio.sleep(0.5)
            await flood
            out[listener] = {
                "asked": asked,
                "answered_from_another_address": answered[OTHER_PEER],
                "answered_from_the_flooding_address": answered[HOST],
            }
            print(f"  {listener}: {out[listener]}", file=sys.stderr, flush=True)
    return out


# -- 3. metrics series --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def engine_with_new_codes() -> AsyncIterator[str]:
    """Refuses every other handshake with a status from 400 to 599; ends the others with an
    in-socket error whose code is new each time (from 1000 on)."""
    counter = itertools.count()

    async def handle(request: web.Request) -> web.StreamResponse:
        n = next(counter)
        if n % 2 == 0:
            return web.Response(status=400 + (n // 2) % 200, text="no")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.send_str(json.dumps({"error": "trouble", "code": 1000 + n}))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield f"ws://{HOST}:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def requests_answered(port: int, count: int) -> None:
    events = [Transcribe(language="hi").event(), AudioStart(16000, 2, 1).event(),
              AudioStop().event()] * count  # fmt: skip
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"".join(encode_event(event) for event in events))
    answered = 0
    while answered < count:
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line:
            raise ConnectionError(f"closed after {answered} of {count} answers")
        header = json.loads(line)
        for key in ("data_length", "payload_length"):
            if header.get(key):
                await reader.readexactly(header[key])
        answered += header["type"] in ("transcript", "error")
    writer.close()


def count_series(metrics: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in metrics.splitlines():
        if match := re.match(r"^(wyoming_bodhi_\w+)\{", line):
            counts[match[1]] = counts.get(match[1], 0) + 1
    return counts


async def metrics_series(log_dir: Path, codes: int) -> dict[str, Any]:
    http_port = free_port()
    out: dict[str, Any] = {}
    async with (
        engine_with_new_codes() as url,
        bridge_process(
            log_dir,
            url,
            "--http-uri",
            f"tcp://{HOST}:{http_port}",
            "--retries",
            "0",
            "--max-sessions",
            str(codes),
        ) as bridge,  # fmt: skip
        aiohttp.ClientSession() as http,
    ):

        async def metrics() -> str:
            async with http.get(f"http://{HOST}:{http_port}/metrics") as response:
                return await response.text()

        out["before"] = {"bytes": len(before := await metrics()), "series": count_series(before)}
        connections = 10
        await asyncio.gather(
            *(requests_answered(bridge.port, codes // connections) for _ in range(connections))
        )
        out["after"] = {"bytes": len(after := await metrics()), "series": count_series(after)}
        out["codes"] = codes
    return out


# -- 4. client memory -----------------------------------------------------------------------------

ANNOUNCED = 2 * 1024**3
SENT = 300 * 1024**2


@contextlib.asynccontextmanager
async def lying_server() -> AsyncIterator[int]:
    """Answers a client's first event with an event announcing a 2 GB payload, and sends
    300 MB of it as fast as the client takes it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readline()
            header = {"type": "transcript-chunk", "data": {"text": "x"}}
            writer.write(json.dumps({**header, "payload_length": ANNOUNCED}).encode() + b"\n")
            piece = bytes(1024 * 1024)
            for _ in range(SENT // len(piece)):
                writer.write(piece)
                await writer.drain()
            await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def client_memory() -> dict[str, Any]:
    async with lying_server() as port:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wyoming_bodhi.transcribe", str(SAMPLE),
            "--uri", f"tcp://{HOST}:{port}", "--timeout", "10",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        peak = 0.0
        while proc.returncode is None:
            with contextlib.suppress(OSError, ValueError):
                peak = max(peak, sample_process(proc.pid).hwm_mb)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.05)
        assert proc.stderr is not None
        said = (await proc.stderr.read()).decode(errors="replace").strip()
    return {
        "peak_rss_mb": peak,
        "seconds": time.monotonic() - started,
        "exit_status": proc.returncode,
        "said": said[-300:],
    }


# -- report ---------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Measured with `python -m benchmarks.hostile` on: {machine_line(results['machine'])}.",
        "",
    ]
    if "log_volume" in results:
        lines += ["**Log written by the bridge under one hostile client** (goal ≤ 100 kB a "
                  "minute)", "", "| attack | kB per minute | lines per minute | longest line |",
                  "|---|--:|--:|--:|"]  # fmt: skip
        for case, row in results["log_volume"].items():
            lines.append(f"| {case} | {row['bytes_per_minute'] / 1000:.1f} | "
                         f"{row['lines_per_minute']:.0f} | {row['longest_line']} |")  # fmt: skip
    if "probes" in results:
        lines += ["", f"**`/healthz` while one peer holds the listener with {HELD} idle and "
                  "half-header connections** (1 s to answer; goal: every one from another "
                  "address)", "", "| listener | asked | answered from another address | "
                  "answered from the flooding address |", "|---|--:|--:|--:|"]  # fmt: skip
        for listener, row in results["probes"].items():
            lines.append(f"| {listener} | {row['asked']} | "
                         f"{row['answered_from_another_address']} | "
                         f"{row['answered_from_the_flooding_address']} |")  # fmt: skip
    if "metrics_series" in results:
        row = results["metrics_series"]
        lines += ["", f"**`/metrics` after {row['codes']} requests, each answered with a new "
                  "upstream code** (goal: a small fixed number of series)", "",
                  "| | bytes | requests series | handshake-failure series |",
                  "|---|--:|--:|--:|"]  # fmt: skip
        for when in ("before", "after"):
            series = row[when]["series"]
            requests = series.get("wyoming_bodhi_requests_total", 0)
            failures = series.get("wyoming_bodhi_engine_handshake_failures_total", 0)
            lines.append(f"| {when} | {row[when]['bytes']} | {requests} | {failures} |")
    if "client_memory" in results:
        row = results["client_memory"]
        lines += ["", "**`wyoming-bodhi-transcribe` against a server announcing a 2 GB payload and "
                  "sending 300 MB**", "", "| peak RSS MB | exit status | seconds |",
                  "|--:|--:|--:|", f"| {row['peak_rss_mb']:.0f} | {row['exit_status']} | "
                  f"{row['seconds']:.1f} |", "", f"It said: `{row['said']}`"]  # fmt: skip
    return "\n".join(lines)


SECTIONS = ("log_volume", "probes", "metrics_series", "client_memory")


async def run(out: Path, seconds: float, codes: int, only: list[str]) -> dict[str, Any]:
    log_dir = out / "hostile-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": describe_machine()}
    sections: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "log_volume": lambda: log_volume(log_dir, seconds),
        "probes": lambda: probes_under_flood(log_dir, max(10.0, seconds / 4)),
        "metrics_series": lambda: metrics_series(log_dir, codes),
        "client_memory": client_memory,
    }
    for name in only or SECTIONS:
        print(f"hostile: {name}…", file=sys.stderr, flush=True)
        results[name] = await sections[name]()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the log attack")
    parser.add_argument("--codes", type=int, default=400, help="distinct upstream codes")
    parser.add_argument("--only", action="append", choices=SECTIONS, default=[])
    args = parser.parse_args()
    results = asyncio.run(run(args.out, args.seconds, args.codes, args.only))
    save(args.out, "hostile", results, markdown(results))


if __name__ == "__main__":
    main()
