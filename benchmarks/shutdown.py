"""How a stop goes, as Docker runs it: SIGTERM, then SIGKILL 10 s later if still alive.

    python -m benchmarks.shutdown [--runs 3]

For each run, a fresh server process (the defaults, plus ``--metrics-uri`` to watch it)
against the simulator, stopped:

1. *idle*: nothing in flight;
2. *20 streams*: 20 clients streaming speech in real time, as satellites do: 10 end their
   speech 4 s after they start (during the drain), 10 talk on for 30 s;
3. *20 streams, over budget*: the same with ``--drain-delay 0 --shutdown-timeout 10``: the
   grace ends when the kill lands, as the old default did.

Times are from SIGTERM: until ``/readyz`` answers 503 (polled every few ms), until a new
connection is refused, until the process has exited; and how many streams got an answer (a
transcript, or a ``shutdown`` error) rather than a bare end of connection.
"""

from __future__ import annotations

import argparse
import asyncio
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
from tests.test_shutdown import DOCKER_STOP_TIMEOUT, refused_after, status_after, stream

STREAMS = 20
LONG_STREAMS = 10
ENV = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
SCENARIOS: dict[str, tuple[int, list[str]]] = {
    "idle": (0, []),
    "20 streams": (STREAMS, []),
    "20 streams, over budget": (STREAMS, ["--drain-delay", "0", "--shutdown-timeout", "10"]),
}


async def one_stop(bodhi_url: str, streams: int, extra: list[str]) -> dict[str, Any]:
    port, probes = free_port(), free_port()
    args = bridge_command(
        port, bodhi_url, "--metrics-uri", f"tcp://127.0.0.1:{probes}", *extra, drain_delay=None
    )
    loop = asyncio.get_running_loop()
    with process(args, ENV) as server:
        await wait_for_port(port, server)
        await wait_for_port(probes, server)
        started = [asyncio.Event() for _ in range(streams)]
        clients = [
            asyncio.create_task(stream(port, 30.0 if index < LONG_STREAMS else 4.0, event))
            for index, event in enumerate(started)
        ]
        await asyncio.gather(*(event.wait() for event in started))
        sigterm_at = loop.time()
        server.send_signal(signal.SIGTERM)
        kill = loop.call_later(DOCKER_STOP_TIMEOUT, server.kill)
        try:
            async with aiohttp.ClientSession() as http:
                not_ready = await status_after(
                    http, f"http://127.0.0.1:{probes}/readyz", 503, sigterm_at
                )
            closed = await refused_after(port, sigterm_at, within=15)
            results = await asyncio.gather(*clients)
            code = await asyncio.to_thread(server.wait, 15)
        finally:
            kill.cancel()
        exited = loop.time() - sigterm_at
    answered = sum(result in ("transcript", "shutdown") for result in results)
    return {
        "not_ready_ms": round(not_ready * 1000, 1),
        "closed_s": round(closed, 2),
        "exited_s": round(exited, 2),
        "exit_code": code,
        "killed": code == -signal.SIGKILL,
        "answered": f"{answered}/{streams}",
        "results": {name: results.count(name) for name in sorted(set(results))},
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key in ("not_ready_ms", "closed_s", "exited_s"):
        values = [run[key] for run in runs]
        figures[key] = {"median": statistics.median(values), "max": max(values)}
    figures["answered"] = [run["answered"] for run in runs]
    figures["killed"] = sum(run["killed"] for run in runs)
    figures["runs"] = runs
    return figures


async def main(runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with running_simulator(texts=["batti jalao"]) as simulator:
        for name, (streams, extra) in SCENARIOS.items():
            measured = [await one_stop(simulator.url, streams, extra) for _ in range(runs)]
            results[name] = summary(measured)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.runs)), indent=2))
