"""What the status page weighs and what watching costs the server, per request.

    python -m benchmarks.status_page [--requests 200]

1. The page's weight: its four files as served, and gzipped (what a proxy that compresses,
   such as Home Assistant's ingress, sends).
2. The observers alone: CPU per finished request in ``Metrics`` and ``Monitor``'s
   ``request_done`` (Prometheus metrics; counters, histogram, the recent list, and a
   JSON-ready update queued for each live page), with 0, 1 and 10 pages watching.
3. End to end: process CPU per request for the bridge and the simulator in this process,
   without the status page, with it, and with it and a live page reading every update
   (requests sent as fast as they are answered, one at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiohttp
from wyoming.client import AsyncTcpClient

from tests import signals
from tests.harness import running_bridge, running_simulator, running_status_page, transcribe
from wyoming_bodhi.pipeline.activity import RequestRecord
from wyoming_bodhi.web.app import STATIC_FILES
from wyoming_bodhi.web.metrics import Metrics
from wyoming_bodhi.web.monitor import Monitor

RECORD = RequestRecord(
    started_at=time.time(), client="192.0.2.7:51234", engine="bodhi",
    model="hi-general-v2-8khz", language="hi", audio_seconds=2.4, billed_seconds=2.5,
    latency=0.31, result="transcript", text="batti jalao pankha chalao",
)  # fmt: skip


def page_weight() -> dict[str, Any]:
    folder = resources.files("wyoming_bodhi.web").joinpath("static")
    files = {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}
    return {
        "files": {name: len(body) for name, body in files.items()},
        "total_bytes": sum(len(body) for body in files.values()),
        "total_gzip_bytes": sum(len(gzip.compress(body, 6)) for body in files.values()),
    }


async def observer_cost(pages: int, count: int = 20_000) -> float:
    """Microseconds of CPU per request_done with ``pages`` live pages (drained as they go):
    the observers the server has with the page on, the metrics and the page's monitor."""
    async with running_bridge("ws://127.0.0.1:9", http_uri="tcp://127.0.0.1:0") as running:
        activity = running.bridge.activity
        Metrics.observing(running.bridge, lambda: 0)
        monitor = Monitor(["bodhi"])
        activity.add(monitor)
        queues = [monitor.subscribe() for _ in range(pages)]
        started = time.process_time()
        for _ in range(count):
            activity.request_done(RECORD)
            for queue in queues:
                json.dumps(queue.get_nowait())  # what the live socket then sends
        return (time.process_time() - started) / count * 1e6


@contextlib.asynccontextmanager
async def live_page(url: str) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:

        async def read() -> None:
            async for _message in ws:
                pass

        reader = asyncio.create_task(read())
        try:
            yield
        finally:
            reader.cancel()


async def end_to_end(mode: str, requests: int) -> float:
    """Process CPU milliseconds per request."""
    speech = signals.encode(signals.utterances(16000, count=1, burst=0.5, edge=0.1))
    http_uri = {} if mode == "off" else {"http_uri": "tcp://127.0.0.1:0"}
    async with (
        running_simulator(texts=["batti jalao"]) as simulator,
        running_bridge(simulator.url, max_sessions=1000, lead=30.0, **http_uri) as running,
        contextlib.AsyncExitStack() as stack,
    ):
        if mode != "off":
            status = await stack.enter_async_context(running_status_page(running))
            if mode == "watched":
                await stack.enter_async_context(live_page(f"ws://127.0.0.1:{status.port}/api/live"))
        async with AsyncTcpClient("127.0.0.1", running.port) as client:
            await transcribe(client, speech)  # warm-up
        started = time.process_time()
        for _ in range(requests):
            async with AsyncTcpClient("127.0.0.1", running.port) as client:
                await transcribe(client, speech)
        return (time.process_time() - started) / requests * 1000


async def main(requests: int) -> dict[str, Any]:
    results: dict[str, Any] = {"page": page_weight()}
    results["observer_us_per_request"] = {
        f"{pages} live page(s)": round(await observer_cost(pages), 1) for pages in (0, 1, 10)
    }
    results["process_cpu_ms_per_request"] = {}
    for mode in ("off", "on", "watched", "off", "on", "watched"):
        cost = await end_to_end(mode, requests)
        results["process_cpu_ms_per_request"].setdefault(mode, []).append(round(cost, 2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.requests)), indent=2))
