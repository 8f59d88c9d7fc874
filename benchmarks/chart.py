"""One PNG with every section, for a glance (matplotlib: ``pip install matplotlib``)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SHORT_LABELS = {
    "ours": "wyoming-bodhi, 100 ms frames",
    "ours_50": "wyoming-bodhi, 50 ms frames",
    "audioop_c": "wyoming + C audioop",
    "pyaudioop": "wyoming + pyaudioop",
}
COLORS = {
    "ours": "#1b9e77",
    "ours_50": "#66a61e",
    "audioop_c": "#7570b3",
    "pyaudioop": "#d95f02",
    "direct": "#7570b3",
    "bridge": "#1b9e77",
    "delayed": "#e7298a",
}


def _grouped_bars(ax: Any, conversion: dict[str, Any], value: str, fmt: str) -> None:
    """One group of bars per input format, one bar per converter."""
    cases = conversion["cases"]
    keys = list(dict.fromkeys(key for case in cases for key in case["converters"]))
    width = 0.8 / len(keys)
    x = np.arange(len(cases))
    for i, key in enumerate(keys):
        # A converter a case did not run (50 ms frames only at 10 ms chunks) shows no bar.
        values = [
            max(0.0, case["converters"][key][value]) if key in case["converters"] else 0.0
            for case in cases
        ]
        label, color = SHORT_LABELS.get(key, key), COLORS.get(key)
        bars = ax.bar(x + i * width, values, width, label=label, color=color)
        ax.bar_label(bars, fmt=fmt, fontsize=7)
    # Wrapped: three cases side by side would otherwise overlap.
    labels = [textwrap.fill(case["label"], 16) for case in cases]
    ax.set_xticks(x + width * (len(keys) - 1) / 2, labels, fontsize=7)


def _conversion_cpu(ax: Any, conversion: dict[str, Any]) -> None:
    _grouped_bars(ax, conversion, "cpu_ms_per_s", "%.2g")
    ax.set_yscale("log")
    ax.set_ylabel("CPU ms per second of audio (log)")
    ax.set_title("a. Conversion CPU (lower is better)")
    ax.legend(fontsize=7)


def _conversion_alias(ax: Any, conversion: dict[str, Any]) -> None:
    _grouped_bars(ax, conversion, "attenuation_db", "%.0f")
    target = conversion["targets"]["attenuation_db_min"]
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g} dB")
    ax.set_ylabel("alias attenuation dB (higher is better)")
    ax.set_title("a. Out-of-band tone vs 1 kHz")
    ax.legend(fontsize=7, loc="center right")


def _ecdf(ax: Any, samples: list[float], label: str, color: str | None) -> None:
    if not samples:
        return
    values = np.sort(np.asarray(samples))
    ax.step(
        values, np.arange(1, len(values) + 1) / len(values), where="post", label=label, color=color
    )


def _latency(ax: Any, results: dict[str, Any], mode: str) -> None:
    single = results["bridge_overhead"][mode]
    _ecdf(ax, single["direct"]["samples_ms"], "straight to Bodhi", COLORS["direct"])
    _ecdf(ax, single["bridge"]["samples_ms"], "through the bridge", COLORS["bridge"])
    handshake = results.get("handshake") or {"skipped": True}
    if mode == "realtime" and not handshake.get("skipped"):
        label = f"bridge, {handshake['handshake_delay_s']:g} s handshake"
        _ecdf(ax, handshake["delayed"]["samples_ms"], label, COLORS["delayed"])
    ax.set_xlabel("ms from end of audio to final transcript")
    ax.set_ylabel("fraction of utterances")
    title = "b/d. Real-time sending" if mode == "realtime" else "b. Burst sending"
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _concurrency_latency(ax: Any, concurrency: dict[str, Any]) -> None:
    levels = concurrency["levels"]
    streams = [level["streams"] for level in levels]
    for path, style in (("bridge", "-"), ("direct", "--")):
        for p, marker in ((50, "o"), (99, "^")):
            values = [level[path][f"p{p}_ms"] for level in levels]
            ax.plot(streams, values, style, marker=marker, color=COLORS[path], label=f"{path} p{p}")
    ax.set_xscale("log")
    ax.set_xticks(streams, [str(s) for s in streams])
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("ms from end of audio to final transcript")
    ax.set_title("c. Latency under concurrency")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _concurrency_resources(ax: Any, concurrency: dict[str, Any]) -> None:
    levels = concurrency["levels"]
    labels = [str(level["streams"]) for level in levels]
    cores = [100 * level["bridge_cores_for_these_streams"] for level in levels]
    bars = ax.bar(labels, cores, color=COLORS["bridge"], alpha=0.7, label="bridge CPU % of a core")
    ax.bar_label(bars, fmt="%.0f%%", fontsize=7)
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("bridge CPU, % of one core")
    ax.set_title("c. Bridge CPU and peak RSS")
    memory = ax.twinx()
    rss = [level["bridge_peak_rss_mb"] for level in levels]
    memory.plot(labels, rss, "o-", color="black", label="peak RSS MB")
    target = concurrency["targets"]["rss_100_mb_max"]
    memory.axhline(target, color="grey", linestyle="--", linewidth=1)
    memory.text(
        0.01,
        target,
        f"RSS target {target:g} MB",
        transform=memory.get_yaxis_transform(),
        ha="left",
        va="bottom",
        fontsize=7,
        color="grey",
    )
    memory.set_ylim(0, max([target, *rss]) * 1.15)
    memory.set_ylabel("bridge peak RSS MB")
    lines = [bars, *memory.get_lines()[:1]]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="center left")


PART_COLORS = {
    "framing": "#1b9e77",
    "resampler": "#d95f02",
    "pacing": "#7570b3",
    "to_bodhi": "#e7298a",
    "back": "#66a61e",
}


def _endpointing_total(ax: Any, endpointing: dict[str, Any]) -> None:
    _ecdf(ax, endpointing["total"]["samples_ms"], "E → transcript", COLORS["bridge"])
    targets = endpointing["targets"]
    for key, label in (("p50_ms_max", "p50 target"), ("p95_ms_max", "p95 target")):
        ax.axvline(targets[key], color="grey", linestyle="--", linewidth=1)
        ax.text(targets[key], 0.02, f" {label}", fontsize=7, color="grey", rotation=90)
    ax.set_xlabel("ms from the endpoint silence (E) to the transcript")
    ax.set_ylabel("fraction of commands")
    ax.set_title(
        f"f. Endpointing latency ({endpointing['client_chunk_ms']} ms chunks in, "
        f"{endpointing['frame_ms']} ms frames out)"
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _endpointing_parts(ax: Any, endpointing: dict[str, Any]) -> None:
    """Each command's parts stacked, commands sorted by their total."""
    parts = endpointing["parts"]
    order = np.argsort(endpointing["total"]["samples_ms"])
    bottom = np.zeros(len(order))
    for part, color in PART_COLORS.items():
        values = np.asarray(parts[part]["samples_ms"])[order]
        ax.bar(np.arange(len(order)), values, bottom=bottom, color=color, label=part, width=1.0)
        bottom += values
    ax.set_xlabel("commands, by total latency")
    ax.set_ylabel("ms")
    ax.set_title("f. Where the endpointing latency goes")
    ax.legend(fontsize=7)


def _event_loops(ax: Any, section: dict[str, Any]) -> None:
    variants = section["variants"]
    names = list(variants)
    x = np.arange(len(names))
    cpu = [variants[name]["cpu_percent_per_stream"] for name in names]
    bars = ax.bar(x, cpu, color=COLORS["bridge"], alpha=0.7, label="CPU % of a core per stream")
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [textwrap.fill(name, 12) for name in names], fontsize=8)
    ax.set_ylabel("bridge CPU, % of a core per stream")
    ax.set_title(f"g. Event loops, {section['streams']} streams")
    p99 = ax.twinx()
    p99.plot(x, [variants[name]["p99_ms"] for name in names], "^", color="black", label="p99 ms")
    p99.set_ylim(0, None)
    p99.set_ylabel("final-transcript p99 ms")
    lines = [bars, *p99.get_lines()[:1]]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper left")


def write_chart(results: dict[str, Any], path: Path) -> Path | None:
    """Write the PNG; None (and nothing written) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(3, 3, figsize=(16, 14))
    panels: list[tuple[str, Callable[[Any], None]]] = [
        ("conversion", lambda ax: _conversion_cpu(ax, results["conversion"])),
        ("conversion", lambda ax: _conversion_alias(ax, results["conversion"])),
        ("bridge_overhead", lambda ax: _latency(ax, results, "realtime")),
        ("bridge_overhead", lambda ax: _latency(ax, results, "burst")),
        ("concurrency", lambda ax: _concurrency_latency(ax, results["concurrency"])),
        ("concurrency", lambda ax: _concurrency_resources(ax, results["concurrency"])),
        ("endpointing", lambda ax: _endpointing_total(ax, results["endpointing"])),
        ("endpointing", lambda ax: _endpointing_parts(ax, results["endpointing"])),
        ("event_loops", lambda ax: _event_loops(ax, results["event_loops"])),
    ]
    for ax, (section, draw) in zip(axes.flat, panels, strict=True):
        if section in results and not results[section].get("skipped"):
            draw(ax)
        else:
            ax.set_axis_off()
    startup = results.get("startup")
    subtitle = (
        f"e. start-up to first Info {startup['median_ms']:.0f} ms (median), "
        f"idle RSS {startup['idle_rss_mb']:.0f} MB"
        if startup
        else ""
    )
    machine = results["machine"]
    fig.suptitle(
        f"wyoming-bodhi benchmarks — {machine['cpu_model']}, {machine['usable_cores']} cores, "
        f"Python {machine['python']}\n{subtitle}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
