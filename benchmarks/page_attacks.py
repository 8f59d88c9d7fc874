"""``python -m benchmarks.page_attacks``: what attacks on the status page get, and cost.

The bridge runs as its own process with its status page on (as a user runs it), except in
section 1; each figure is measured from outside it:

1. **Another site's page** in real Chromium (a page from ``evil.example``, and a DNS-rebinding
   page: ``evil.example`` resolving to the server, bound to every interface), trying the live
   feed, the microphone, the engine check and the status: characters of the server's data it
   reads, and engine sessions it opens (goal: none).
2. **Engine-check spam**: 4 processes posting ``api/check/bodhi`` as fast as answers come, for
   ``--seconds``: the engine handshakes that caused, per minute (goal: the rate limit, 3 at
   once then one every 20 s).
3. **A microphone page that stops reading** while the engine floods it with partials (4,000
   of 60 kB each): the bridge's resident memory growth, peak over the run (goal ≤ 50 MB).
4. **Page connections under a low open-file limit** (``ulimit -n 256`` the process cannot
   raise), on each event loop: live sockets and idle connections the page takes, and how many
   of 100 Wyoming ``describe`` requests on connections opened meanwhile get their ``info``
   (goal: all).

To compare with another version, run it from that version's checkout with this file and
``tests/browser.py`` copied in (the processes it starts import the package from the current
directory). Writes ``page-attacks-<UTC time>.json`` into ``--out``
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from wyoming.event import async_read_event
from wyoming.info import Describe

from tests import browser
from wyoming_bodhi.simulators.bodhi import BodhiSimulator, SimulatorOptions

from .machine import machine_line, sample_process
from .report import save
from .sections import run_sections
from .servers import (
    HOST,
    Server,
    bridge_command,
    bridge_env,
    free_port,
    spawn_bridge,
    wait_for_info,
    wait_for_port,
)
from .wire import encode_event

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SPAMMERS = 4
FLOOD_PARTIALS = 4000
PARTIAL_TEXT = "batti " * 10_000
FILE_LIMIT = 256
WYOMING_REQUESTS = 100
EVENT_LOOPS = ("asyncio", "uvloop")


@contextlib.asynccontextmanager
async def bridge_process(
    log_dir: Path, bodhi_url: str, *extra: str, bind: str = HOST
) -> AsyncIterator[tuple[Server, int]]:
    """The bridge with its status page on ``bind``: (the process, the page's port)."""
    http_port = free_port()
    server = spawn_bridge(
        log_dir, bodhi_url, extra=["--http-uri", f"tcp://{bind}:{http_port}", *extra]
    )
    try:
        await wait_for_info(server)
        await wait_for_port(Server("page", server.proc, http_port, server.log_path))
        yield server, http_port
    finally:
        server.stop()


# -- 1. another site's page -------------------------------------------------------------------


async def another_sites_page(log_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with (
        BodhiSimulator(SimulatorOptions(texts=["batti jalao"])) as simulator,
        browser.another_site() as evil_port,
    ):
        # Another site, and a rebound one (the page bound beyond loopback, its requests
        # same-origin); reachable from this machine only.
        for case, bind in (("a page of another site", HOST), ("a DNS-rebinding page", "0.0.0.0")):
            async with bridge_process(log_dir, simulator.url, "--http-allow", HOST, bind=bind) as (
                _bridge,
                http_port,
            ):
                if bind == HOST:
                    start, target = (
                        f"http://evil.example:{evil_port}/",
                        f"http://{HOST}:{http_port}/",
                    )
                else:
                    start = target = f"http://evil.example:{http_port}/"
                before = simulator.connection_count

                def attack(start: str = start, target: str = target) -> dict[str, Any]:
                    with browser.chromium(names=["evil.example"]) as driver:
                        driver.get(start)
                        return browser.attack(driver, target)

                seen = await asyncio.to_thread(attack)
                out[case] = {
                    "characters_read": browser.characters_read(seen),
                    "sessions_opened": simulator.connection_count - before,
                    "read": browser.read_nothing(seen)[:3],
                }
    return out


# -- 2. engine-check spam ---------------------------------------------------------------------


SPAM = """
import asyncio, json, sys, time
import aiohttp

async def main(url, origin, seconds):
    codes = {}
    async with aiohttp.ClientSession(headers={"Origin": origin}) as http:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            async with http.post(url) as response:
                await response.read()
                codes[response.status] = codes.get(response.status, 0) + 1
    print(json.dumps(codes))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


def allowed_checks(seconds: float) -> int | None:
    """Checks of one engine the rate limit allows in ``seconds`` (None: a version without)."""
    try:
        from wyoming_bodhi.web.check import CHECK_EVERY, CHECKS_AT_ONCE
    except ImportError:
        return None
    return CHECKS_AT_ONCE + int(seconds // CHECK_EVERY)


async def check_spam(log_dir: Path, seconds: float) -> dict[str, Any]:
    async with (
        BodhiSimulator(SimulatorOptions(texts=["batti jalao"])) as simulator,
        bridge_process(log_dir, simulator.url) as (_bridge, http_port),
    ):
        # As the page itself would post (a local process can say anything).
        origin = f"http://{HOST}:{http_port}"
        spammers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                SPAM,
                f"{origin}/api/check/bodhi",
                origin,
                str(seconds),
                stdout=subprocess.PIPE,
            )
            for _ in range(SPAMMERS)
        ]
        outputs = [await spammer.communicate() for spammer in spammers]
        handshakes = simulator.connection_count
    answers: dict[str, int] = {}
    for stdout, _stderr in outputs:
        for code, count in json.loads(stdout).items():
            answers[code] = answers.get(code, 0) + count
    return {
        "seconds": seconds,
        "processes": SPAMMERS,
        "allowed_by_the_limit": allowed_checks(seconds),
        "answers": answers,
        "handshakes": handshakes,
        "handshakes_per_minute": handshakes * 60 / seconds,
    }


# -- 3. a microphone page that stops reading --------------------------------------------------


async def microphone_not_reading(log_dir: Path) -> dict[str, Any]:
    partial = json.dumps(
        {"call_id": "c", "segment_id": 0, "eos": False, "type": "partial", "text": PARTIAL_TEXT}
    )
    options = SimulatorOptions(
        texts=["batti jalao"], raw_before_results=[partial], raw_repeat=FLOOD_PARTIALS
    )
    speech = bytes(range(256)) * 25  # 0.2 s of loud noise at 16 kHz
    async with (
        BodhiSimulator(options) as simulator,
        bridge_process(log_dir, simulator.url) as (bridge, http_port),
        aiohttp.ClientSession() as http,
    ):
        before = sample_process(bridge.pid)
        peak = before.rss_mb
        origin = f"http://{HOST}:{http_port}"
        started = time.monotonic()
        # As the page itself connects, and then never reads.
        async with http.ws_connect(f"{origin}/api/microphone", headers={"Origin": origin}) as ws:
            await ws.send_json({"language": "hi", "model": None, "rate": 16000})
            (record,) = await simulator.wait_for_connections(1)
            while not record.closed.is_set() and time.monotonic() - started < 60:
                with contextlib.suppress(ConnectionError):
                    await ws.send_bytes(speech)
                await asyncio.sleep(0.2)
                peak = max(peak, sample_process(bridge.pid).rss_mb)
            ended = time.monotonic() - started
        after = sample_process(bridge.pid)
    return {
        "partials": FLOOD_PARTIALS,
        "partial_bytes": len(partial),
        "rss_before_mb": before.rss_mb,
        "peak_growth_mb": max(peak, after.hwm_mb) - before.rss_mb,
        "growth_after_mb": after.rss_mb - before.rss_mb,
        "session_ended_after_s": ended if record.closed.is_set() else None,
    }


# -- 4. page connections under a low open-file limit ------------------------------------------


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def spawn_limited(log_dir: Path, loop: str) -> tuple[Server, int]:
    """The bridge and its page under the low open-file limit: (the process, the page's port)."""
    port, http_port = free_port(), free_port()
    command = bridge_command(port, "ws://127.0.0.1:9", "--http-uri", f"tcp://{HOST}:{http_port}")
    # The default --max-sessions, as a user runs it (bridge_command asks for 110).
    command += ["--max-sessions", "20"]
    log_path = log_dir / f"low-limit-{loop}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *command],
            env={**bridge_env(), "WYOMING_EVENT_LOOP": loop},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_low_limit,
        )
    return Server(f"bridge ({loop})", proc, port, log_path), http_port


async def low_file_limit(log_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for loop in EVENT_LOOPS:
        server, http_port = spawn_limited(log_dir, loop)
        try:
            await wait_for_info(server)
            await wait_for_port(Server("page", server.proc, http_port, server.log_path))
            out[loop] = await _flood_then_ask(server.port, http_port)
            out[loop]["log_warnings"] = [
                line.split(": ", 1)[1]
                for line in server.log_path.read_text().splitlines()
                if " WARNING " in line
            ]
        finally:
            server.stop()
    return out


async def _flood_then_ask(port: int, http_port: int) -> dict[str, Any]:
    held: list[Any] = []
    result: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            live = refused = 0
            for _ in range(100):
                try:
                    held.append(await http.ws_connect(f"http://{HOST}:{http_port}/api/live"))
                    live += 1
                except aiohttp.WSServerHandshakeError:
                    refused += 1
            opening = [
                asyncio.create_task(asyncio.open_connection(HOST, http_port)) for _ in range(300)
            ]
            opened, waiting = await asyncio.wait(opening, timeout=2.0)
            for task in waiting:
                task.cancel()
            idle = [task.result()[1] for task in opened if not task.exception()]
            held += idle
            answered = await _describe_all(port)
            result = {
                "live_served": live,
                "live_refused_503": refused,
                "idle_connected": len(idle),
                "idle_still_connecting": len(waiting),
                "wyoming_answered": answered,
                "wyoming_asked": WYOMING_REQUESTS,
            }
        finally:
            for item in held:
                if isinstance(item, aiohttp.ClientWebSocketResponse):
                    await item.close()
                else:
                    item.close()
    return result


async def _describe_all(port: int) -> int:
    connections = []
    for _ in range(WYOMING_REQUESTS):
        with contextlib.suppress(OSError):
            connections.append(await asyncio.open_connection(HOST, port))
    for _reader, writer in connections:
        writer.write(encode_event(Describe().event()))
    answered = 0
    for reader, writer in connections:
        with contextlib.suppress(OSError, TimeoutError):
            event = await asyncio.wait_for(async_read_event(reader), 5)
            answered += event is not None and event.type == "info"
        writer.close()
    return answered


# -- report -----------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "Measured with `python -m benchmarks.page_attacks` on: "
        f"{machine_line(results['machine'])}.",
        "",
        "**Another site's page in Chromium** (goal: nothing read, no session)",
        "",
        "| page | characters of the server's data read | engine sessions opened |",
        "|---|--:|--:|",
    ]
    for case, row in results["another_site"].items():
        lines.append(f"| {case} | {row['characters_read']} | {row['sessions_opened']} |")
    spam = results["check_spam"]
    lines += [
        "",
        f"**Engine-check spam**: {spam['processes']} processes for {spam['seconds']:g} s "
        "(goal: 3 at once, then one every 20 s)",
        "",
        "| answers | engine handshakes | per minute | the limit allows |",
        "|---|--:|--:|--:|",
        f"| {', '.join(f'{n} × {code}' for code, n in sorted(spam['answers'].items()))} | "
        f"{spam['handshakes']} | {spam['handshakes_per_minute']:.1f} | "
        f"{spam['allowed_by_the_limit'] or 'no limit'} |",
    ]
    mic = results["microphone_not_reading"]
    ended = mic["session_ended_after_s"]
    lines += [
        "",
        f"**A microphone page that stops reading**, {mic['partials']} partials of "
        f"{mic['partial_bytes'] // 1000} kB from the engine (goal ≤ 50 MB)",
        "",
        "| RSS before MB | peak growth MB | growth after MB | session ended after s |",
        "|--:|--:|--:|--:|",
        f"| {mic['rss_before_mb']:.0f} | {mic['peak_growth_mb']:.1f} | "
        f"{mic['growth_after_mb']:.1f} | {'never' if ended is None else f'{ended:.1f}'} |",
        "",
        f"**Page connections with `ulimit -n {FILE_LIMIT}`** (goal: every Wyoming request "
        "answered)",
        "",
        "| event loop | live pages served / refused 503 | idle connections connected / still "
        "connecting | Wyoming describe answered |",
        "|---|--:|--:|--:|",
    ]
    for loop, row in results["low_file_limit"].items():
        lines.append(
            f"| {loop} | {row['live_served']} / {row['live_refused_503']} | "
            f"{row['idle_connected']} / {row['idle_still_connecting']} | "
            f"{row['wyoming_answered']} of {row['wyoming_asked']} |"
        )
    return "\n".join(lines)


async def run(out: Path, seconds: float) -> dict[str, Any]:
    log_dir = out / "page-attacks-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return await run_sections(
        "page attacks",
        [
            ("another_site", lambda: another_sites_page(log_dir)),
            ("check_spam", lambda: check_spam(log_dir, seconds)),
            ("microphone_not_reading", lambda: microphone_not_reading(log_dir)),
            ("low_file_limit", lambda: low_file_limit(log_dir)),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.page_attacks", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=60.0, help="of engine-check spam")
    args = parser.parse_args()
    results = asyncio.run(run(args.out, args.seconds))
    save(args.out, "page-attacks", results, markdown(results))


if __name__ == "__main__":
    main()
