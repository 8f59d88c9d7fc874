"""The results as Markdown (for the README's Performance section) and as verdicts on targets."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .machine import machine_line

HANDSHAKE_TOLERANCE_MS = 5.0
"""Section d passes when p50 and p95 grow by less than this (timer and scheduling noise)."""


def save(out: Path, name: str, results: dict[str, Any], markdown_text: str) -> Path:
    """Write ``<name>-<UTC time>.json`` into ``out``, print the Markdown, say where it went."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{name}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(markdown_text)
    print(f"\nwrote {path}", file=sys.stderr)
    return path


def _ms(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table; ``align`` has one ``l`` or ``r`` per column."""
    marks = {"l": "---", "r": "--:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


# -- sections -----------------------------------------------------------------------------


def conversion_lines(conversion: dict[str, Any]) -> list[str]:
    rows = []
    for case in conversion["cases"]:
        first = True
        for key, converter in case["converters"].items():
            floor = "≥ " if converter["attenuation_at_floor"] else ""
            rows.append(
                [
                    case["label"] if first else "",
                    converter["label"],
                    f"{converter['cpu_ms_per_s']:.3g}",
                    f"{case['ratios_to_ours'][key]:.1f}×",
                    f"{floor}{abs(converter['attenuation_db']):.0f} "
                    f"({case['alias_hz'] / 1000:g} kHz)",
                ]
            )
            first = False
    return [
        f"**Audio conversion** — s16 PCM to 8 kHz s16 mono, in {conversion['chunk_ms']} ms chunks "
        "unless the input says otherwise; "
        f"CPU per second of audio (process time, best of {conversion['repeats']} runs over "
        f"{conversion['audio_seconds_per_run']:g} s); alias attenuation = level of an "
        "out-of-band tone in the output below a 1 kHz tone of equal input level.",
        "",
        *_table(
            ["input", "converter", "CPU ms per s of audio", "CPU vs ours", "alias attenuation dB"],
            "llrrr",
            rows,
        ),
    ]


def latency_lines(single: dict[str, Any]) -> list[str]:
    rows = []
    for mode, label in (("realtime", "real time"), ("burst", "burst")):
        result = single[mode]
        for path, name in (("direct", "straight to Bodhi"), ("bridge", "through the bridge")):
            s = result[path]
            rows.append(
                [label, name, str(s["n"]), _ms(s["p50_ms"]), _ms(s["p95_ms"]), _ms(s["p99_ms"])]
            )
        added, ratio = result["added_ms"], result["ratio"]
        rows.append(
            [
                label,
                "**bridge adds** (ratio)",
                "",
                *(
                    f"{_ms(added[f'p{p}_ms'], sign=True)} ({_ratio(ratio[f'p{p}'])})"
                    for p in (50, 95, 99)
                ),
            ]
        )
    return [
        f"**Final-transcript latency** — ms from the end of the client's audio to the final "
        f"result, one {single['audio_seconds']:g} s utterance at a time (100 ms frames, 1 s "
        "lead; burst audio is paced out by the bridge, hence ~1 s).",
        "",
        *_table(["sending", "path", "n", "p50 ms", "p95 ms", "p99 ms"], "llrrrr", rows),
    ]


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def concurrency_lines(concurrency: dict[str, Any]) -> list[str]:
    rows = []
    for level in concurrency["levels"]:
        bridge, direct = level["bridge"], level["direct"]
        rows.append(
            [
                str(level["streams"]),
                str(bridge["n"] + bridge["errors"]),
                f"{_ms(bridge['p50_ms'])} / {_ms(bridge['p99_ms'])}",
                _ms(direct["p99_ms"]),
                _ms(level["added_p99_vs_direct_single_ms"], sign=True),
                _ms(level["added_p99_vs_direct_same_ms"], sign=True),
                f"{level['bridge_cpu_percent_per_stream']:.2f}",
                f"{level['bridge_cores_for_these_streams']:.2f}",
                f"{level['bridge_peak_rss_mb']:.0f}",
                str(bridge["errors"] + direct["errors"]),
            ]
        )
    return [
        f"**Concurrency** — real-time streams through one bridge process, starts spread over "
        f"{concurrency['stagger_seconds']:g} s; added p99 = bridge p99 minus direct p99 with one "
        "stream, or with the same number of direct streams. CPU: the bridge process's CPU time "
        "over the streams' audio time.",
        "",
        *_table(
            [
                "streams",
                "n",
                "bridge p50 / p99 ms",
                "direct p99 ms",
                "added p99 vs 1 direct",
                "added p99 vs same direct",
                "bridge CPU % of a core per stream",
                "bridge cores in use",
                "bridge peak RSS MB",
                "errors",
            ],
            "rrrrrrrrrr",
            rows,
        ),
    ]


def handshake_lines(handshake: dict[str, Any]) -> list[str]:
    if handshake.get("skipped"):
        return []
    none, delayed, growth = handshake["none"], handshake["delayed"], handshake["growth_ms"]
    rows = [
        ["none", str(none["n"]), _ms(none["p50_ms"]), _ms(none["p95_ms"])],
        [
            f"{handshake['handshake_delay_s']:g} s",
            str(delayed["n"]),
            _ms(delayed["p50_ms"]),
            _ms(delayed["p95_ms"]),
        ],
        ["growth", "", _ms(growth["p50_ms"], sign=True), _ms(growth["p95_ms"], sign=True)],
    ]
    return [
        "**Handshake hidden** — the same real-time utterances, Bodhi (simulator) answering the "
        "WebSocket upgrade late; final-transcript latency after the end of the audio.",
        "",
        *_table(["Bodhi handshake delay", "n", "p50 ms", "p95 ms"], "lrrr", rows),
    ]


PART_LABELS = {
    "framing": "framing: E → end of the frame that completes it",
    "resampler": "resampler: end of that frame → the client chunk that releases it",
    "pacing": "pacing: the bridge's pacer holds it",
    "to_bodhi": "to Bodhi: client write, conversion, send, loopback (measured)",
    "back": "back: Bodhi's result → bridge → transcript at the client (measured)",
}


def endpointing_lines(endpointing: dict[str, Any]) -> list[str]:
    total = endpointing["total"]
    rows = [
        [
            "**total** (measured)",
            _ms(total["p50_ms"]),
            _ms(total["p95_ms"]),
            _ms(total["max_ms"]),
        ]
    ]
    for part, label in PART_LABELS.items():
        s = endpointing["parts"][part]
        rows.append([label, _ms(s["p50_ms"]), _ms(s["p95_ms"]), _ms(s["max_ms"])])
    return [
        f"**Endpointing latency** — `--endpointing`, {total['n']} commands, speech of "
        f"{endpointing['speech_seconds'][0]:g}–{endpointing['speech_seconds'][1]:g} s then "
        f"silence in real time, in Home Assistant's {endpointing['client_chunk_ms']} ms chunks; "
        f"the bridge sends {endpointing['frame_ms']} ms frames. ms from E (the instant an ideal "
        f"8 kHz copy of the audio completes Bodhi's {endpointing['endpoint_seconds']:g} s "
        "endpoint) to the `transcript` at the client. Medians and p95 of each part separately "
        "(they need not add up; per command they do).",
        "",
        *_table(["part", "p50 ms", "p95 ms", "max ms"], "lrrr", rows),
    ]


def event_loop_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    if section.get("skipped"):
        return [f"**Event loops** — skipped: {section['skipped']}."]
    rows = [
        [
            name,
            str(v["n"] + v["errors"]),
            _ms(v["p50_ms"]),
            _ms(v["p99_ms"]),
            f"{v['cpu_percent_per_stream']:.3f}",
            f"{v['cores']:.2f}",
            f"{v['peak_rss_mb']:.0f}",
            str(v["errors"]),
        ]
        for name, v in section["variants"].items()
    ]
    return [
        f"**Event loops** — {section['streams']} real-time streams at once through bridges "
        "that differ only in their event loop and frame length, taking turns over "
        f"{section['rounds']} rounds; final-transcript latency after the end of the audio, "
        "and the bridge's CPU over the streams' audio time.",
        "",
        *_table(
            [
                "bridge",
                "n",
                "p50 ms",
                "p99 ms",
                "CPU % of a core per stream",
                "cores in use",
                "peak RSS MB",
                "errors",
            ],
            "lrrrrrrr",
            rows,
        ),
    ]


def startup_lines(startup: dict[str, Any], idle: dict[str, Any] | None) -> list[str]:
    line = (
        f"**Start-up** — `python -m wyoming_bodhi` answers its first Describe "
        f"{startup['median_ms']:.0f} ms after it is spawned (median of {startup['runs']}; "
        f"{startup['min_ms']:.0f}–{startup['max_ms']:.0f} ms); idle resident memory "
        f"{startup['idle_rss_mb']:.0f} MB"
    )
    if idle:
        line += f" ({idle['rss_mb']:.0f} MB for the benchmarked bridge before its first request)"
    return [line + "."]


# -- targets --------------------------------------------------------------------------------


def _level(results: dict[str, Any], streams: int) -> dict[str, Any] | None:
    for level in results.get("concurrency", {}).get("levels", []):
        if level["streams"] == streams:
            return dict(level)
    return None


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target the run can judge."""
    found: list[tuple[str, str, bool | None]] = []
    conversion = results.get("conversion")
    if conversion:
        wanted = conversion["targets"]
        for case in conversion["cases"]:
            times = case["ratios_to_ours"].get("pyaudioop")
            minimum = wanted["ratio_pyaudioop_to_ours_min"]
            found.append(
                (
                    f"{case['label']}: pure-Python audioop ≥ {minimum:g}× the CPU of ours",
                    f"{times:.0f}×",
                    times >= minimum,
                )
            )
            converters = case["converters"]
            if case.get("audioop_target") and "audioop_c" in converters:
                c_cpu = converters["audioop_c"]["cpu_ms_per_s"]
                for key in ("ours", "ours_50"):
                    if key not in converters:
                        continue
                    ours_cpu = converters[key]["cpu_ms_per_s"]
                    found.append(
                        (
                            f"{case['label']}: {converters[key]['label']} no dearer than C audioop",
                            f"{ours_cpu / c_cpu:.2f}× ({ours_cpu:.3g} vs {c_cpu:.3g} ms/s)",
                            ours_cpu <= c_cpu / wanted["ratio_audioop_c_to_ours_min"],
                        )
                    )
            db = case["converters"]["ours"]["attenuation_db"]
            found.append(
                (
                    f"{case['label']}: alias attenuation ≥ {wanted['attenuation_db_min']:g} dB",
                    f"{db:.0f} dB",
                    db >= wanted["attenuation_db_min"],
                )
            )
    endpointing = results.get("endpointing")
    if endpointing:
        wanted_ms = endpointing["targets"]
        total = endpointing["total"]
        found.append(
            (
                f"endpointing: E → transcript p50 ≤ {wanted_ms['p50_ms_max']:g} ms, "
                f"p95 ≤ {wanted_ms['p95_ms_max']:g} ms",
                f"{_ms(total['p50_ms'])} / {_ms(total['p95_ms'])} ms",
                total["p50_ms"] <= wanted_ms["p50_ms_max"]
                and total["p95_ms"] <= wanted_ms["p95_ms_max"],
            )
        )
    concurrency = results.get("concurrency")
    if concurrency:
        found += _concurrency_targets(results, concurrency["targets"])
    handshake = results.get("handshake")
    if handshake and not handshake.get("skipped"):
        growth = handshake["growth_ms"]
        worst = max(growth["p50_ms"] or 0.0, growth["p95_ms"] or 0.0)
        found.append(
            (
                f"{handshake['handshake_delay_s']:g} s Bodhi handshake hidden: p50/p95 grow "
                f"< {HANDSHAKE_TOLERANCE_MS:g} ms",
                f"{_ms(growth['p50_ms'], sign=True)} / {_ms(growth['p95_ms'], sign=True)} ms",
                worst < HANDSHAKE_TOLERANCE_MS,
            )
        )
    return found


def _concurrency_targets(
    results: dict[str, Any], wanted: dict[str, float]
) -> list[tuple[str, str, bool | None]]:
    found: list[tuple[str, str, bool | None]] = []
    one = _level(results, 1)
    if one:
        added = one["added_p99_vs_direct_same_ms"]
        found.append(
            (
                f"one stream: added p99 ≤ {wanted['added_p99_single_ms_max']:g} ms",
                f"{_ms(added, sign=True)} ms",
                None if added is None else added <= wanted["added_p99_single_ms_max"],
            )
        )
    hundred = _level(results, 100)
    if hundred:
        same, single = (
            hundred["added_p99_vs_direct_same_ms"],
            hundred["added_p99_vs_direct_single_ms"],
        )
        found.append(
            (
                f"100 streams: added p99 ≤ {wanted['added_p99_100_ms_max']:g} ms "
                "(vs 100 direct streams; vs 1)",
                f"{_ms(same, sign=True)} ms; {_ms(single, sign=True)} ms",
                None if same is None else same <= wanted["added_p99_100_ms_max"],
            )
        )
        cores = hundred["bridge_cores_for_these_streams"]
        found.append(
            (
                f"100 streams on ≤ {wanted['cores_100_max']:g} core",
                f"{cores:.2f} cores",
                cores <= wanted["cores_100_max"],
            )
        )
        rss = hundred["bridge_peak_rss_mb"]
        found.append(
            (
                f"100 streams: bridge RSS ≤ {wanted['rss_100_mb_max']:g} MB",
                f"{rss:.0f} MB",
                rss <= wanted["rss_100_mb_max"],
            )
        )
    # A figure from a run where streams failed would flatter the bridge: say so.
    failed = sum(level["bridge"]["errors"] for level in results["concurrency"]["levels"])
    found.append(("every stream of every level answered", f"{failed} failed", failed == 0))
    return found


def target_lines(results: dict[str, Any]) -> list[str]:
    rows = [[target, measured, _verdict(ok)] for target, measured, ok in targets(results)]
    return ["**Targets**", "", *_table(["target", "measured", "met"], "lrl", rows)]


def hotspot_lines(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    if profile.get("skipped"):
        return [f"Bridge profile skipped: {profile['skipped']}"]
    rows = [
        [entry["function"], f"{entry['percent']:.1f}", _via(entry.get("via", []))]
        for entry in profile["self"][:12]
    ]
    packages = ", ".join(
        f"{entry['function']} {entry['percent']:.0f}%" for entry in profile["packages"][:8]
    )
    inclusive = [
        [entry["function"], f"{entry['percent']:.1f}"] for entry in profile["inclusive"][:12]
    ]
    return [
        f"**Where the bridge spends its time** — py-spy, {profile['streams']} real-time "
        f"streams, {profile['busy_samples']} busy samples at {profile['sample_rate_hz']} Hz "
        f"(the bridge was busy {profile['busy_percent_of_core']:.0f}% of one core). "
        f"By package (self time): {packages}.",
        "",
        *_table(["function (self time)", "% of busy samples", "reached via"], "lrl", rows),
        "",
        *_table(["function (inclusive)", "% of busy samples"], "lr", inclusive),
        "",
        f"Collapsed stacks: `{profile['stacks_file']}`",
    ]


def _via(callers: list[dict[str, Any]]) -> str:
    """The callers that reached a hot function, with their share of all busy samples (%)."""
    return "; ".join(f"{c['function']} {c['percent']:.1f}" for c in callers)


def markdown(results: dict[str, Any]) -> str:
    """Everything, README-ready: machine, tables, start-up, targets (and the profile)."""
    blocks: list[list[str]] = [
        [
            "### Performance",
            "",
            f"Measured with `python -m benchmarks` in {results['duration_s'] / 60:.1f} min on: "
            f"{machine_line(results['machine'])}. The simulator, the bridge and the load "
            "generator are separate processes sharing those cores, on 127.0.0.1; the "
            f"bridge's event loop: {results.get('bridge_event_loop', 'asyncio')}.",
        ]
    ]
    if "conversion" in results:
        blocks.append(conversion_lines(results["conversion"]))
    if "bridge_overhead" in results:
        blocks.append(latency_lines(results["bridge_overhead"]))
    if "concurrency" in results:
        blocks.append(concurrency_lines(results["concurrency"]))
    if "handshake" in results:
        blocks.append(handshake_lines(results["handshake"]))
    if "endpointing" in results:
        blocks.append(endpointing_lines(results["endpointing"]))
    blocks.append(event_loop_lines(results.get("event_loops")))
    if "startup" in results:
        blocks.append(startup_lines(results["startup"], results.get("idle_bridge")))
    blocks.append(target_lines(results))
    blocks.append(hotspot_lines(results.get("profile")))
    return "\n\n".join("\n".join(block) for block in blocks if block) + "\n"
