"""Section e: how long ``python -m wyoming_bodhi`` takes to answer Describe, and its idle memory."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from .servers import spawn_bridge, wait_for_info

IDLE_SETTLE_SECONDS = 1.0
"""After the first Info, before reading the idle resident memory."""


async def _one_start(log_dir: Path, bodhi_url: str, index: int) -> tuple[float, float, float]:
    """(ms from spawn to Info, idle VmRSS MB, VmHWM MB) for one fresh bridge process."""
    started = time.perf_counter()
    server = spawn_bridge(log_dir, bodhi_url, name=f"startup-{index}")
    try:
        await wait_for_info(server)
        elapsed_ms = (time.perf_counter() - started) * 1000
        await asyncio.sleep(IDLE_SETTLE_SECONDS)
        sample = server.sample()
        return elapsed_ms, sample.rss_mb, sample.hwm_mb
    finally:
        server.stop()


async def run(log_dir: Path, bodhi_url: str, runs: int) -> dict[str, Any]:
    """Spawn the bridge ``runs`` times, one after another (nothing else running)."""
    times, rss, hwm = [], [], []
    for index in range(runs):
        elapsed_ms, rss_mb, hwm_mb = await _one_start(log_dir, bodhi_url, index)
        times.append(elapsed_ms)
        rss.append(rss_mb)
        hwm.append(hwm_mb)
    return {
        "runs": runs,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "samples_ms": [round(t, 1) for t in times],
        "idle_rss_mb": statistics.median(rss),
        "idle_rss_samples_mb": rss,
        "vm_hwm_mb": statistics.median(hwm),
    }
