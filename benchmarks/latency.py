"""Sections b, c and d: the bridge's added latency, under concurrency, and the hidden handshake.

All against simulator processes, through bridge processes, from this (load generator) process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .monitor import Monitor
from .servers import Server
from .stats import difference, ratio, summarize
from .streams import (
    DirectTarget,
    Samples,
    Utterance,
    Workload,
    bridge_utterance,
    concurrently,
    direct_utterance,
    once,
)

PAUSE_SECONDS = 0.05
"""Between sequential utterances, so one's teardown does not overlap the next one's end."""
ROUND_PAUSE_SECONDS = 1.0
"""Between concurrent rounds, so every connection of a round has closed."""
STAGGER_SECONDS = 1.0

TARGET_ADDED_P99_SINGLE_MS = 5.0
TARGET_ADDED_P99_100_MS = 20.0
TARGET_RSS_100_MB = 100.0
TARGET_CORES_100 = 1.0


@dataclass(frozen=True, slots=True)
class Setup:
    """Where the streams go: one simulator and its bridge, plus a slow-handshake pair."""

    workload: Workload
    direct: DirectTarget
    simulator: Server
    bridge: Server
    delayed_bridge: Server | None = None
    delayed_simulator: Server | None = None

    def to_direct(self, realtime: bool) -> Utterance:
        return partial(direct_utterance, self.direct, self.workload, realtime)

    def to_bridge(self, realtime: bool, bridge: Server | None = None) -> Utterance:
        port = (bridge or self.bridge).port
        return partial(bridge_utterance, port, self.workload, realtime)


def _compare(direct: Samples, bridge: Samples) -> dict[str, Any]:
    """Direct and bridge summaries, the bridge's added latency (ms) and the ratio."""
    d = summarize(direct.latencies_ms, len(direct.errors))
    b = summarize(bridge.latencies_ms, len(bridge.errors))
    return {
        "direct": d,
        "bridge": b,
        "added_ms": difference(b, d),
        "ratio": ratio(b, d),
        "errors": (direct.errors + bridge.errors)[:10],
    }


async def _interleaved(
    modes: dict[str, Utterance], repetitions: int, warmup: int, monitor: Monitor
) -> dict[str, Samples]:
    """Each mode once per repetition, in turn, so drift hits every mode alike."""
    for _ in range(warmup):
        for utterance in modes.values():
            await once(utterance)
            await asyncio.sleep(PAUSE_SECONDS)
    samples = {name: Samples() for name in modes}
    async with monitor:
        for _ in range(repetitions):
            for name, utterance in modes.items():
                samples[name].add(await once(utterance))
                await asyncio.sleep(PAUSE_SECONDS)
    return samples


async def single_stream(
    setup: Setup, repetitions: int, warmup: int, handshake_delay: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sections b and d: one utterance at a time, real time then burst.

    The slow-handshake bridge (section d) takes its turn in the real-time rotation.
    """
    servers = [setup.simulator, setup.bridge]
    realtime_modes = {"direct": setup.to_direct(True), "bridge": setup.to_bridge(True)}
    if setup.delayed_bridge is not None and setup.delayed_simulator is not None:
        realtime_modes["bridge_delayed_handshake"] = setup.to_bridge(True, setup.delayed_bridge)
        servers += [setup.delayed_simulator, setup.delayed_bridge]
    realtime_monitor = Monitor(servers)
    realtime = await _interleaved(realtime_modes, repetitions, warmup, realtime_monitor)
    burst_monitor = Monitor([setup.simulator, setup.bridge])
    burst = await _interleaved(
        {"direct": setup.to_direct(False), "bridge": setup.to_bridge(False)},
        repetitions,
        warmup,
        burst_monitor,
    )
    single: dict[str, Any] = {
        "repetitions": repetitions,
        "audio_seconds": setup.workload.duration,
        "realtime": _compare(realtime["direct"], realtime["bridge"]),
        "burst": _compare(burst["direct"], burst["bridge"]),
        "resources": {"realtime": realtime_monitor.to_dict(), "burst": burst_monitor.to_dict()},
    }
    delayed = realtime.get("bridge_delayed_handshake")
    return single, _handshake(single["realtime"]["bridge"], delayed, handshake_delay)


def _handshake(none: dict[str, Any], samples: Samples | None, delay: float) -> dict[str, Any]:
    """Section d: the same bridge, its Bodhi answering the upgrade ``delay`` s late."""
    if samples is None:
        return {"skipped": True}
    delayed = summarize(samples.latencies_ms, len(samples.errors))
    return {
        "handshake_delay_s": delay,
        "none": none,
        "delayed": delayed,
        "growth_ms": difference(delayed, none),
        "errors": samples.errors[:10],
    }


async def _level(setup: Setup, streams: int, rounds: int) -> dict[str, Any]:
    """``rounds`` rounds of ``streams`` real-time streams, direct then through the bridge."""
    direct, bridge = Samples(), Samples()
    monitor = Monitor([setup.bridge, setup.simulator])
    direct_monitor = Monitor([setup.simulator])
    for _ in range(rounds):
        async with direct_monitor:
            direct.extend(await concurrently(setup.to_direct(True), streams, STAGGER_SECONDS))
        await asyncio.sleep(ROUND_PAUSE_SECONDS)
        async with monitor:
            bridge.extend(await concurrently(setup.to_bridge(True), streams, STAGGER_SECONDS))
        await asyncio.sleep(ROUND_PAUSE_SECONDS)
    return {
        **_compare(direct, bridge),
        "rounds": rounds,
        "utterances": streams * rounds,
        "resources": monitor.to_dict(),
        "direct_resources": direct_monitor.to_dict(),
    }


def _level_figures(
    level: dict[str, Any], streams: int, audio_seconds: float, direct_single_p99: float | None
) -> dict[str, Any]:
    bridge_p99 = level["bridge"]["p99_ms"]
    direct_p99 = level["direct"]["p99_ms"]
    usage = level["resources"]["bridge"]
    stream_seconds = level["utterances"] * audio_seconds
    per_stream = 100 * usage["cpu_seconds"] / stream_seconds
    return {
        "streams": streams,
        "added_p99_vs_direct_single_ms": _minus(bridge_p99, direct_single_p99),
        "added_p99_vs_direct_same_ms": _minus(bridge_p99, direct_p99),
        "bridge_cpu_percent_per_stream": per_stream,
        "bridge_cores_for_these_streams": per_stream * streams / 100,
        "bridge_peak_rss_mb": usage["peak_rss_mb"],
        "bridge_vm_hwm_mb": usage["vm_hwm_mb"],
        **level,
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


async def concurrency(
    setup: Setup, levels: Sequence[int], rounds: dict[int, int], single: dict[str, Any]
) -> dict[str, Any]:
    """Section c. Level 1 is section b's real-time run (one stream at a time)."""
    audio_seconds = setup.workload.duration
    direct_single_p99 = single["realtime"]["direct"]["p99_ms"]
    results = []
    for streams in levels:
        if streams == 1:
            level = {
                "direct": single["realtime"]["direct"],
                "bridge": single["realtime"]["bridge"],
                "added_ms": single["realtime"]["added_ms"],
                "ratio": single["realtime"]["ratio"],
                "errors": single["realtime"]["errors"],
                "rounds": single["repetitions"],
                "utterances": single["repetitions"],
                "resources": single["resources"]["realtime"],
                "source": "section b, real time",
            }
        else:
            level = await _level(setup, streams, rounds.get(streams, 1))
        results.append(_level_figures(level, streams, audio_seconds, direct_single_p99))
    return {
        "stagger_seconds": STAGGER_SECONDS,
        "audio_seconds": audio_seconds,
        "targets": {
            "added_p99_single_ms_max": TARGET_ADDED_P99_SINGLE_MS,
            "added_p99_100_ms_max": TARGET_ADDED_P99_100_MS,
            "rss_100_mb_max": TARGET_RSS_100_MB,
            "cores_100_max": TARGET_CORES_100,
        },
        "levels": results,
    }


async def event_loops(
    workload: Workload,
    bridges: dict[str, Server],
    streams: int,
    rounds: int,
) -> dict[str, Any]:
    """Section g: the same real-time streams through bridges that differ only in their event
    loop (and frame length), taking turns round by round so that drift hits each alike."""
    samples = {name: Samples() for name in bridges}
    monitors = {name: Monitor([bridge]) for name, bridge in bridges.items()}
    for _ in range(rounds):
        for name, bridge in bridges.items():
            utterance = partial(bridge_utterance, bridge.port, workload, True)
            async with monitors[name]:
                samples[name].extend(await concurrently(utterance, streams, STAGGER_SECONDS))
            await asyncio.sleep(ROUND_PAUSE_SECONDS)
    variants = {}
    for name, bridge in bridges.items():
        usage = monitors[name].to_dict()[bridge.name]
        stream_seconds = streams * rounds * workload.duration
        per_stream = 100 * usage["cpu_seconds"] / stream_seconds
        variants[name] = {
            **summarize(samples[name].latencies_ms, len(samples[name].errors)),
            "errors_sample": samples[name].errors[:10],
            "cpu_percent_per_stream": per_stream,
            "cores": per_stream * streams / 100,
            "peak_rss_mb": usage["peak_rss_mb"],
        }
    return {"streams": streams, "rounds": rounds, "variants": variants}
