"""CPU and memory of the child processes (and of the load generator) over a stretch of a run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .machine import ProcSample
from .servers import Server

SAMPLE_SECONDS = 0.1


@dataclass
class Usage:
    """What one process used while monitored (possibly over several stretches)."""

    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    hwm_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "cpu_percent_of_core": 100 * self.cpu_seconds / self.wall_seconds
            if self.wall_seconds
            else None,
            "peak_rss_mb": self.peak_rss_mb,
            "vm_hwm_mb": self.hwm_mb,
        }


@dataclass
class Monitor:
    """``async with monitor:`` around each measured stretch; usage accumulates."""

    servers: Sequence[Server]
    usage: dict[str, Usage] = field(init=False)
    loadgen: Usage = field(init=False, default_factory=Usage)
    _start: dict[str, ProcSample] = field(init=False, default_factory=dict)
    _started_at: float = field(init=False, default=0.0)
    _loadgen_cpu: float = field(init=False, default=0.0)
    _sampler: asyncio.Task[None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.usage = {server.name: Usage() for server in self.servers}

    async def __aenter__(self) -> Monitor:
        self._start = {server.name: server.sample() for server in self.servers}
        self._started_at = time.perf_counter()
        self._loadgen_cpu = time.process_time()
        self._sampler = asyncio.create_task(self._sample_memory())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        wall = time.perf_counter() - self._started_at
        self.loadgen.cpu_seconds += time.process_time() - self._loadgen_cpu
        self.loadgen.wall_seconds += wall
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        for server in self.servers:
            end = server.sample()
            usage = self.usage[server.name]
            usage.cpu_seconds += end.cpu_seconds - self._start[server.name].cpu_seconds
            usage.wall_seconds += wall
            usage.peak_rss_mb = max(usage.peak_rss_mb, end.rss_mb)
            usage.hwm_mb = max(usage.hwm_mb, end.hwm_mb)

    async def _sample_memory(self) -> None:
        while True:
            for server in self.servers:
                usage = self.usage[server.name]
                usage.peak_rss_mb = max(usage.peak_rss_mb, server.sample().rss_mb)
            await asyncio.sleep(SAMPLE_SECONDS)

    def to_dict(self) -> dict[str, Any]:
        usage = {name: u.to_dict() for name, u in self.usage.items()}
        return {**usage, "loadgen": self.loadgen.to_dict()}
