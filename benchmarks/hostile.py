"""``python -m benchmarks.hostile``: what a hostile client, engine or server costs, measured
from outside the process that suffers it.

1. **Log volume**: bytes a bridge process writes to its log in a minute while one hostile
   Wyoming client (this process) does its worst without credentials: floods of bad
   ``transcribe`` events, of requests for models that do not exist, of malformed events, of
   connections that send garbage, of events with a 60 kB type that never finish, and of
   requests without audio (each opens a session with the simulator). Each attack alone for
   ``--seconds`` / 4, then all at once for ``--seconds`` (default 60).
2. **Metrics series**: the series ``/metrics`` holds after requests to an engine that
   answers each one with a new status code (400 by default): half refused at the handshake
   with a status from 400 to 599, half ended by an in-socket error with a new code each time.
3. **Client memory**: the peak resident memory of ``wyoming-bodhi-transcribe`` against a
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
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from wyoming.asr import Transcribe
from wyoming.audio import AudioStart, AudioStop
from wyoming.event import Event

from .machine import describe_machine, machine_line, sample_process
from .report import save
from .servers import HOST, Server, free_port, spawn_bridge, spawn_simulator, wait_for_info
from .wire import encode_event

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "batti-jalao.wav"


@contextlib.asynccontextmanager
async def bridge_process(log_dir: Path, bodhi_url: str, *extra: str) -> AsyncIterator[Server]:
    server = spawn_bridge(log_dir, bodhi_url, name=f"bridge-{time.monotonic_ns()}", extra=extra)
    try:
        await wait_for_info(server)
        yield server
    finally:
        server.stop()


# -- 1. log volume -------------------------------------------------------------------------------

Attack = Callable[[int, float], Awaitable[None]]


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


ATTACKS: dict[str, Attack] = {
    "bad transcribe events": lambda port, until: flood(port, until, bad_transcribe),
    "requests for unknown models": lambda port, until: flood(port, until, unknown_model),
    "malformed audio-chunk events": lambda port, until: flood(port, until, malformed),
    "requests without audio (each a Bodhi session)": lambda port, until: flood(
        port, until, empty_request
    ),
    "connections sending garbage": garbage_connections,
    "60 kB event types that stall": stalled_huge_types,
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
            async with bridge_process(log_dir, f"ws://{HOST}:{simulator.port}") as bridge:
                before = bridge.log_path.stat().st_size
                until = time.monotonic() + duration
                await asyncio.gather(*(attack(bridge.port, until) for attack in attacks))
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


# -- 2. metrics series --------------------------------------------------------------------------


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


# -- 3. client memory -----------------------------------------------------------------------------

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


SECTIONS = ("log_volume", "metrics_series", "client_memory")


async def run(out: Path, seconds: float, codes: int, only: list[str]) -> dict[str, Any]:
    log_dir = out / "hostile-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": describe_machine()}
    sections: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "log_volume": lambda: log_volume(log_dir, seconds),
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
