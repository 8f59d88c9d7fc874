"""How a stop goes, as Docker runs it: SIGTERM, then SIGKILL 10 s later if still alive.

    python -m benchmarks.shutdown [--runs 3] [--only "page"]

For each run, a fresh server process (the defaults, plus ``--metrics-uri`` to watch it)
against the simulator, stopped:

1. *idle*: nothing in flight;
2. *20 streams*: 20 clients streaming speech in real time, as satellites do: 10 end their
   speech 4 s after they start (during the drain), 10 talk on for 30 s;
3. *20 streams, over budget*: the same with ``--drain-delay 0 --shutdown-timeout 10``: the
   grace ends when the kill lands, as the old default did;
4. *20 streams, page and metrics open*: the 20 streams with the status page on too
   (``--http-uri``), a live page that reads, one that never answers the WebSocket's close
   frame, and scrapes of ``/metrics`` whose bodies trickle in a byte every 0.5 s (one from
   before SIGTERM, one from 5 s after): what used to hold a stop past the kill.

Times are from SIGTERM: until ``/readyz`` answers 503 (polled every few ms), until a new
connection is refused, until the process has exited; and how many streams got an answer (a
transcript, or a ``shutdown`` error) rather than a bare end of connection; with the page,
how the reading live page's socket ended (``CLOSE 1000``: closed cleanly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
from typing import Any

import aiohttp

from tests.harness import (
    API_KEY,
    CUSTOMER_ID,
    bridge_command,
    clean_env,
    free_port,
    process,
    running_simulator,
    wait_for_port,
)
from tests.test_shutdown import (
    DOCKER_STOP_TIMEOUT,
    live_page,
    refused_after,
    status_after,
    stream,
    trickle,
)

STREAMS = 20
LONG_STREAMS = 10
ENV = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
SCENARIOS: dict[str, tuple[int, list[str], bool]] = {
    # name: (streams, extra arguments, the page and its hostile clients too)
    "idle": (0, [], False),
    "20 streams": (STREAMS, [], False),
    "20 streams, over budget": (STREAMS, ["--drain-delay", "0", "--shutdown-timeout", "10"], False),
    "20 streams, page and metrics open": (STREAMS, [], True),
}
TRICKLE_AGAIN = 5.0
"""Seconds after SIGTERM at which a second scrape starts trickling: inside the grace, so that
one is still in progress when the listeners stop (aiohttp reads a body on for 10 s)."""


async def one_stop(bodhi_url: str, streams: int, extra: list[str], page: bool) -> dict[str, Any]:
    port, probes, page_port = free_port(), free_port(), free_port()
    if page:
        extra = [*extra, "--http-uri", f"tcp://127.0.0.1:{page_port}"]
    args = bridge_command(
        port, bodhi_url, "--metrics-uri", f"tcp://127.0.0.1:{probes}", *extra, drain_delay=None
    )
    loop = asyncio.get_running_loop()
    others: list[asyncio.Task[str]] = []
    with process(args, ENV) as server:
        await wait_for_port(port, server)
        await wait_for_port(probes, server)
        async with aiohttp.ClientSession() as http:
            if page:
                await wait_for_port(page_port, server)
                base = f"http://127.0.0.1:{page_port}"
                # The page that reads first: others[0] is how its socket ended.
                others += [asyncio.create_task(live_page(base, http, True))]
                others += [asyncio.create_task(live_page(base, http, False))]
            started = [asyncio.Event() for _ in range(streams)]
            clients = [
                asyncio.create_task(stream(port, 30.0 if index < LONG_STREAMS else 4.0, event))
                for index, event in enumerate(started)
            ]
            await asyncio.gather(*(event.wait() for event in started))
            if page:
                others.append(asyncio.create_task(trickle(probes, "/metrics")))
            sigterm_at = loop.time()
            server.send_signal(signal.SIGTERM)
            kill = loop.call_later(DOCKER_STOP_TIMEOUT, server.kill)
            again = (
                loop.call_later(
                    TRICKLE_AGAIN,
                    lambda: others.append(asyncio.create_task(trickle(probes, "/metrics"))),
                )
                if page
                else None
            )
            try:
                not_ready = await status_after(
                    http, f"http://127.0.0.1:{probes}/readyz", 503, sigterm_at
                )
                closed = await refused_after(port, sigterm_at, within=15)
                results = await asyncio.gather(*clients)
                code = await asyncio.to_thread(server.wait, 15)
            finally:
                kill.cancel()
                if again is not None:
                    again.cancel()
            exited = loop.time() - sigterm_at
            page_closed = None
            if page:
                try:
                    page_closed = await asyncio.wait_for(others[0], 5)
                except (TimeoutError, aiohttp.ClientError) as err:
                    page_closed = repr(err)
            for task in others:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
    answered = sum(result in ("transcript", "shutdown") for result in results)
    figures = {
        "not_ready_ms": round(not_ready * 1000, 1),
        "closed_s": round(closed, 2),
        "exited_s": round(exited, 2),
        "exit_code": code,
        "killed": code == -signal.SIGKILL,
        "answered": f"{answered}/{streams}",
        "results": {name: results.count(name) for name in sorted(set(results))},
    }
    if page:
        figures["live_page"] = page_closed
    return figures


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key in ("not_ready_ms", "closed_s", "exited_s"):
        values = [run[key] for run in runs]
        figures[key] = {"median": statistics.median(values), "max": max(values)}
    figures["answered"] = [run["answered"] for run in runs]
    figures["killed"] = sum(run["killed"] for run in runs)
    figures["runs"] = runs
    return figures


async def main(runs: int, only: str = "") -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with running_simulator(texts=["batti jalao"]) as simulator:
        for name, (streams, extra, page) in SCENARIOS.items():
            if only not in name:
                continue
            measured = [await one_stop(simulator.url, streams, extra, page) for _ in range(runs)]
            results[name] = summary(measured)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only", default="", metavar="TEXT", help="only the scenarios whose name has TEXT"
    )
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.runs, arguments.only)), indent=2))
