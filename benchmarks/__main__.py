"""``python -m benchmarks [--quick] [--out DIR] [--profile]``: run every section, write results.

Writes ``bench-<time>.json`` (every number and raw sample), ``.png`` (a chart) and ``.md``
(the Markdown tables, also printed) into ``--out``; child-process logs go beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from . import conversion, endpointing, hotspots, latency, startup
from .chart import write_chart
from .machine import describe_machine
from .report import markdown
from .servers import running, spawn_bridge, spawn_simulator, wait_for_info, wait_for_port
from .streams import DirectTarget, describe_workload, make_workload

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
HANDSHAKE_DELAY = 0.3
PROFILE_STREAMS = 100
EVENT_LOOP_STREAMS = 100
EVENT_LOOP_VARIANTS = {
    "asyncio, 100 ms frames": ["--event-loop", "asyncio", "--chunk-ms", "100"],
    "uvloop, 100 ms frames": ["--event-loop", "uvloop", "--chunk-ms", "100"],
    # The frame rate --endpointing runs at: 50 ms frames, twice the sends.
    "asyncio, 50 ms frames": ["--event-loop", "asyncio", "--chunk-ms", "50"],
    "uvloop, 50 ms frames": ["--event-loop", "uvloop", "--chunk-ms", "50"],
}


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """How much of everything to do."""

    conversion_seconds: float
    conversion_repeats: int
    repetitions: int
    warmup: int
    levels: tuple[int, ...]
    rounds: dict[int, int]
    startup_runs: int
    endpointing_commands: int
    event_loop_rounds: int


FULL = Plan(
    conversion_seconds=20.0,
    conversion_repeats=5,
    repetitions=30,
    warmup=2,
    levels=(1, 10, 50, 100),
    rounds={10: 3, 50: 2, 100: 2},
    startup_runs=5,
    endpointing_commands=40,
    event_loop_rounds=3,
)
QUICK = Plan(
    conversion_seconds=4.0,
    conversion_repeats=3,
    repetitions=5,
    warmup=1,
    levels=(1, 10, 100),
    rounds={10: 1, 100: 1},
    startup_runs=3,
    endpointing_commands=10,
    event_loop_rounds=1,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Benchmark wyoming-bodhi on this machine."
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (about 1 min)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results directory (default: %(default)s)"
    )
    parser.add_argument(
        "--repetitions", type=int, help="single-stream utterances per mode (default: 30; 5 quick)"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="JSON",
        help="run nothing: rewrite the Markdown and the chart of an earlier run's JSON",
    )
    parser.add_argument(
        "--sections",
        default=ALL_SECTIONS,
        type=_sections,
        metavar="LETTERS",
        help="run only these sections, e.g. afg (default: all, %(default)s; c needs b, which "
        "brings d)",
    )
    parser.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the benchmarked bridge's event loop for sections b-e (default: %(default)s, "
        "i.e. uvloop when installed, as the server itself chooses)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"afterwards, profile the bridge under {PROFILE_STREAMS} streams with py-spy",
    )
    return parser.parse_args(argv)


ALL_SECTIONS = "abcdefg"


def _sections(text: str) -> str:
    letters = "".join(sorted(set(text.replace(",", "").lower())))
    unknown = set(letters) - set(ALL_SECTIONS)
    if unknown or not letters:
        raise argparse.ArgumentTypeError(f"sections are letters from {ALL_SECTIONS!r}")
    # c compares with b's single streams, and d runs in b's rotation.
    if "c" in letters or "d" in letters:
        letters = "".join(sorted(set(letters) | {"b", "d"}))
    if "b" in letters:
        letters = "".join(sorted(set(letters) | {"d"}))
    return letters


def _progress(started: float, message: str) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


def uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


async def served_sections(
    plan: Plan,
    results: dict[str, Any],
    out: Path,
    stem: str,
    args: argparse.Namespace,
    started: float,
) -> None:
    """Sections e, b, d, c (and the profile): everything that needs the servers."""
    logs = out / f"{stem}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    simulator = spawn_simulator(logs)
    delayed_simulator = spawn_simulator(
        logs, name=f"simulator-handshake-{HANDSHAKE_DELAY:g}s", handshake_delay=HANDSHAKE_DELAY
    )
    with running(simulator, delayed_simulator):
        await wait_for_port(simulator)
        await wait_for_port(delayed_simulator)
        url = f"ws://127.0.0.1:{simulator.port}"
        if "e" in args.sections:
            _progress(started, f"e. start-up ({plan.startup_runs} runs)")
            results["startup"] = await startup.run(logs, url, plan.startup_runs)
        loop = ["--event-loop", args.event_loop]
        bridge = spawn_bridge(logs, url, extra=loop)
        delayed_bridge = spawn_bridge(
            logs,
            f"ws://127.0.0.1:{delayed_simulator.port}",
            name="bridge-handshake-delayed",
            extra=loop,
        )
        with running(bridge, delayed_bridge):
            await wait_for_info(bridge)
            await wait_for_info(delayed_bridge)
            await asyncio.sleep(startup.IDLE_SETTLE_SECONDS)
            results["idle_bridge"] = dataclasses.asdict(bridge.sample())
            # No connection limit: the load generator opens up to 100 sockets at once.
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                workload = make_workload()
                results["workload"] = describe_workload(workload)
                setup = latency.Setup(
                    workload=workload,
                    direct=DirectTarget(http, url),
                    simulator=simulator,
                    bridge=bridge,
                    delayed_bridge=delayed_bridge,
                    delayed_simulator=delayed_simulator,
                )
                if "b" in args.sections:
                    _progress(started, f"b/d. single streams ({plan.repetitions} per mode)")
                    single, handshake = await latency.single_stream(
                        setup, plan.repetitions, plan.warmup, HANDSHAKE_DELAY
                    )
                    results["bridge_overhead"] = single
                    results["handshake"] = handshake
                if "c" in args.sections:
                    _progress(started, f"c. concurrency {plan.levels}")
                    results["concurrency"] = await latency.concurrency(
                        setup, plan.levels, plan.rounds, single
                    )
                if "g" in args.sections and uvloop_installed():
                    await event_loop_section(plan, results, setup, logs, url, started)
                elif "g" in args.sections:
                    results["event_loops"] = {"skipped": "uvloop is not installed"}
                if args.profile:
                    _progress(started, f"profiling the bridge under {PROFILE_STREAMS} streams")
                    results["profile"] = await hotspots.profile_bridge(
                        bridge.pid,
                        setup.to_bridge(True),
                        PROFILE_STREAMS,
                        out / f"{stem}-bridge-stacks.txt",
                    )


async def event_loop_section(
    plan: Plan,
    results: dict[str, Any],
    setup: latency.Setup,
    logs: Path,
    url: str,
    started: float,
) -> None:
    """Section g: asyncio's loop vs uvloop, at 100 and at 50 ms frames, 100 streams."""
    _progress(
        started,
        f"g. event loops ({EVENT_LOOP_STREAMS} streams, {len(EVENT_LOOP_VARIANTS)} bridges)",
    )
    bridges = {
        name: spawn_bridge(logs, url, name=f"bridge-{index}-{args[1]}-{args[3]}ms", extra=args)
        for index, (name, args) in enumerate(EVENT_LOOP_VARIANTS.items())
    }
    with running(*bridges.values()):
        for server in bridges.values():
            await wait_for_info(server)
        await asyncio.sleep(startup.IDLE_SETTLE_SECONDS)
        section = await latency.event_loops(
            setup.workload, bridges, EVENT_LOOP_STREAMS, plan.event_loop_rounds
        )
    for name, args in EVENT_LOOP_VARIANTS.items():
        section["variants"][name]["args"] = args
    results["event_loops"] = section


def write_results(results: dict[str, Any], out: Path, stem: str) -> tuple[Path, Path | None, Path]:
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    png_path = write_chart(results, out / f"{stem}.png")
    md_path = out / f"{stem}.md"
    md_path.write_text(markdown(results))
    return json_path, png_path, md_path


def rewrite(json_path: Path) -> int:
    """Regenerate ``.md`` and ``.png`` beside an earlier run's JSON."""
    results = json.loads(json_path.read_text())
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(results))
    png_path = write_chart(results, json_path.with_suffix(".png"))
    print(md_path.read_text())
    print(f"wrote {md_path}" + (f", {png_path}" if png_path else ""), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return rewrite(args.from_json)
    plan = QUICK if args.quick else FULL
    if args.repetitions:
        plan = dataclasses.replace(plan, repetitions=args.repetitions)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    stem = "bench-" + now.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_utc": now.isoformat(timespec="seconds"),
        "quick": args.quick,
        "plan": {**dataclasses.asdict(plan), "rounds": {str(k): v for k, v in plan.rounds.items()}},
        "machine": describe_machine(),
    }
    results["sections"] = args.sections
    if "a" in args.sections:
        _progress(started, "a. audio conversion")
        results["conversion"] = conversion.run(plan.conversion_seconds, plan.conversion_repeats)
    results["bridge_event_loop"] = (
        args.event_loop
        if args.event_loop != "auto"
        else ("uvloop" if uvloop_installed() else "asyncio")
    )
    if set(args.sections) & set("bcdeg"):
        asyncio.run(served_sections(plan, results, out, stem, args, started))
    if "f" in args.sections:
        _progress(started, f"f. endpointing latency ({plan.endpointing_commands} commands)")
        results["endpointing"] = asyncio.run(endpointing.latency(plan.endpointing_commands))
    results["duration_s"] = time.perf_counter() - started
    json_path, png_path, md_path = write_results(results, out, stem)
    print(md_path.read_text())
    _progress(started, f"wrote {json_path}, {md_path}")
    if png_path is None:
        _progress(started, "no chart: matplotlib is not installed (pip install matplotlib)")
    else:
        _progress(started, f"wrote {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
