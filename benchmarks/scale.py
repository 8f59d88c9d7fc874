"""Streams per core and memory per stream at scale: ``python -m benchmarks.scale``.

How many real-time streams one bridge process serves per core, and what each costs in
memory: at several numbers of streams at once (``--levels``, e.g. 100 300 500), on asyncio's
event loop and on uvloop, with clients sending Home Assistant's 10 ms chunks and 20 ms ones.

Per level, every variant (event loop × client chunk) gets a fresh bridge process: one
utterance warms it, then its resident memory is read (idle). Then rounds, the variants taking
turns round by round so that the machine's drift hits each alike. In a round every stream
makes one utterance after another (the benchmarks' usual 2 s one), each on a connection of its
own as Home Assistant does, the streams' starts spread over the first second, for ``--seconds``
after the last has started; then each finishes the utterance under way. Measured from before
the first connection until the last answer:

- the bridge's CPU (user + system, /proc) over the seconds of audio it answered: the share of
  a core one real-time stream takes, and its inverse, streams per core. Work the bridge falls
  behind on still counts, since the round waits for every answer;
- the bridge's peak resident memory (sampled every 0.1 s) less its idle memory, per stream;
- the latency from the end of each utterance's audio to its transcript (p50, p99), errors;
- the load generator's lateness: how long after its due time each chunk went out. The
  generator, the simulator and the bridge share the machine's cores: when the generator is
  late, or the bridge's latency grows, the machine is full, and that level shows what the
  machine could not do rather than what the bridge needs;
- how busy the whole machine was (/proc/stat), since other work on it skews everything.

The load generator sends every stream's chunks from one scheduler (a heap of due times, at
most one wake-up a millisecond) instead of a timer per chunk, and runs on uvloop when
installed, so that it takes as little of the shared cores as it can.

Prints Markdown tables and writes ``scale-<UTC time>.json`` (every figure) to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import heapq
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .machine import describe_machine, machine_line
from .monitor import Monitor
from .servers import Server, running, spawn_bridge, spawn_simulator, wait_for_info, wait_for_port
from .stats import summarize
from .streams import (
    UTTERANCE_TIMEOUT,
    BenchClient,
    Samples,
    Workload,
    make_workload,
    read_transcript,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
STAGGER_SECONDS = 1.0
ROUND_PAUSE_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 0.1
"""After a failed utterance, before the stream's next: no hot loop against a full server."""
TICK_SECONDS = 0.001
LATE_MS = 20.0
"""A chunk this late (or a p99 latency this high) means the machine was the limit."""


@dataclasses.dataclass(frozen=True, slots=True)
class Variant:
    event_loop: str
    chunk_ms: int

    @property
    def name(self) -> str:
        return f"{self.event_loop}, {self.chunk_ms} ms chunks"


# -- the load generator ----------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Sending:
    """One utterance's audio, handed out chunk by chunk when due."""

    client: BenchClient
    workload: Workload
    start: float
    done: asyncio.Future[float]
    index: int = 0

    @property
    def due(self) -> float:
        return self.start + (self.index + 1) * self.workload.chunk_seconds


class Scheduler:
    """Sends the audio of every stream on time, from one task."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Sending]] = []
        self._order = itertools.count()
        self.late_ms: list[float] = []
        self.max_queued = 0
        """The most bytes a connection had waiting to be sent: the bridge not reading."""

    def send(self, client: BenchClient, workload: Workload) -> asyncio.Future[float]:
        """Schedule ``workload``'s chunks from now; resolves (perf_counter) after audio-stop."""
        loop = asyncio.get_running_loop()
        sending = _Sending(client, workload, loop.time(), loop.create_future())
        heapq.heappush(self._heap, (sending.due, next(self._order), sending))
        return sending.done

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                due, _, sending = heapq.heappop(self._heap)
                self.late_ms.append((now - due) * 1000)
                self._next(sending, due)
            wait = self._heap[0][0] - loop.time() if self._heap else TICK_SECONDS
            await asyncio.sleep(min(max(wait, 0.0), TICK_SECONDS))

    def _next(self, sending: _Sending, due: float) -> None:
        if sending.done.done():  # the utterance gave up (timeout, error)
            return
        workload = sending.workload
        try:
            queued = sending.client.write_nowait(workload.chunks[sending.index])
            sending.index += 1
            if sending.index == len(workload.chunks):
                queued = sending.client.write_nowait(workload.stop)
                sending.done.set_result(time.perf_counter())
                return
        except (ConnectionError, RuntimeError) as err:
            sending.done.set_exception(ConnectionError(str(err)))
            return
        self.max_queued = max(self.max_queued, queued)
        heapq.heappush(self._heap, (sending.due, next(self._order), sending))


async def utterance(port: int, workload: Workload, scheduler: Scheduler) -> float:
    """One utterance through the bridge; ms from audio-stop to the transcript."""
    async with asyncio.timeout(workload.duration + UTTERANCE_TIMEOUT):
        client = BenchClient(HOST, port)
        await client.connect()
        reader = asyncio.create_task(read_transcript(client))
        sent: asyncio.Future[float] | None = None
        try:
            client.write_nowait(workload.request)
            sent = scheduler.send(client, workload)
            audio_ended_at = await sent
            transcript_at = await reader
        finally:
            if sent is not None and not sent.done():
                sent.cancel()
            reader.cancel()
            await client.disconnect()
    return (transcript_at - audio_ended_at) * 1000


async def stream(
    index: int, streams: int, port: int, workload: Workload, scheduler: Scheduler,
    stopping: asyncio.Event, samples: Samples,
) -> None:  # fmt: skip
    """Utterances one after another until ``stopping``; the one under way finishes."""
    await asyncio.sleep(STAGGER_SECONDS * index / streams)
    while not stopping.is_set():
        try:
            samples.add(await utterance(port, workload, scheduler))
        except (Exception, TimeoutError) as err:
            samples.add(err)
            await asyncio.sleep(ERROR_PAUSE_SECONDS)


# -- measuring -------------------------------------------------------------------------------


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # up to steal; guest time is already in user
    return total - idle, total


def listen_overflows() -> int:
    """Connections the kernel dropped because a listening socket's queue was full, machine
    wide (TcpExt ListenOverflows): a server too busy to accept as fast as clients connect."""
    header, values = (
        line.split() for line in Path("/proc/net/netstat").read_text().splitlines()[:2]
    )
    return int(dict(zip(header, values, strict=True))["ListenOverflows"])


@dataclasses.dataclass
class Round:
    cpu_percent_per_stream: float
    peak_rss_mb: float
    simulator_cores: float
    loadgen_cores: float
    machine_busy_percent: float
    samples: Samples
    late_ms: list[float]
    max_queued_bytes: int
    listen_overflows: int


async def one_round(
    bridge: Server, simulator: Server, workload: Workload, streams: int, seconds: float
) -> Round:
    """``streams`` streams for ``seconds`` after the last has started; measured from before
    the first connects until the last has its answer, so that work the bridge falls behind
    on still counts, against the audio it answered."""
    scheduler = Scheduler()
    sender = asyncio.create_task(scheduler.run())
    stopping = asyncio.Event()
    samples = Samples()
    monitor = Monitor([bridge, simulator])
    busy_before, total_before = machine_busy_seconds()
    overflows_before = listen_overflows()
    try:
        async with monitor:
            tasks = [
                asyncio.create_task(
                    stream(i, streams, bridge.port, workload, scheduler, stopping, samples)
                )
                for i in range(streams)
            ]
            try:
                await asyncio.sleep(STAGGER_SECONDS + seconds)
                stopping.set()
                await asyncio.gather(*tasks)
            finally:
                stopping.set()
                for task in tasks:
                    task.cancel()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    busy_after, total_after = machine_busy_seconds()
    usage = monitor.to_dict()
    bridge_usage, wall = usage[bridge.name], usage["loadgen"]["wall_seconds"]
    answered_audio = len(samples.latencies_ms) * workload.duration
    return Round(
        cpu_percent_per_stream=100 * bridge_usage["cpu_seconds"] / max(answered_audio, 1e-9),
        peak_rss_mb=bridge_usage["peak_rss_mb"],
        simulator_cores=usage[simulator.name]["cpu_seconds"] / wall,
        loadgen_cores=usage["loadgen"]["cpu_seconds"] / wall,
        machine_busy_percent=100 * (busy_after - busy_before) / max(1, total_after - total_before),
        samples=samples,
        late_ms=scheduler.late_ms,
        max_queued_bytes=scheduler.max_queued,
        listen_overflows=listen_overflows() - overflows_before,
    )


async def warm(bridge: Server, workload: Workload) -> float:
    """One utterance, then the bridge's resident memory (MB)."""
    scheduler = Scheduler()
    sender = asyncio.create_task(scheduler.run())
    try:
        await utterance(bridge.port, workload, scheduler)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    await asyncio.sleep(ROUND_PAUSE_SECONDS)
    return bridge.sample().rss_mb


def percentile(values: Sequence[float], p: float) -> float | None:
    return float(np.percentile(values, p)) if values else None


async def level(
    streams: int, variants: Sequence[Variant], rounds: int, seconds: float,
    simulator: Server, logs: Path,
) -> dict[str, Any]:  # fmt: skip
    """Every variant at ``streams`` streams, each on a fresh bridge, taking turns."""
    url = f"ws://{HOST}:{simulator.port}"
    bridges = {variant: _spawn_bridge(variant, streams, url, logs) for variant in variants}
    workloads = {
        variant: make_workload(chunk_seconds=variant.chunk_ms / 1000) for variant in variants
    }
    results: dict[Variant, list[Round]] = {variant: [] for variant in variants}
    idle: dict[Variant, float] = {}
    with running(*bridges.values()):
        for variant, bridge in bridges.items():
            await wait_for_info(bridge)
            idle[variant] = await warm(bridge, workloads[variant])
        for number in range(rounds):
            for variant, bridge in bridges.items():
                _progress(f"{streams} streams, {variant.name}, round {number + 1}/{rounds}")
                outcome = await one_round(bridge, simulator, workloads[variant], streams, seconds)
                results[variant].append(outcome)
                _progress(
                    f"  {outcome.cpu_percent_per_stream:.3f} % of a core per stream, peak RSS "
                    f"{outcome.peak_rss_mb:.0f} MB, {len(outcome.samples.errors)} errors, "
                    f"machine {outcome.machine_busy_percent:.0f} % busy, "
                    f"{outcome.listen_overflows} connections dropped by full listen queues"
                )
                await asyncio.sleep(ROUND_PAUSE_SECONDS)
    return {
        variant.name: summarize_variant(streams, idle[variant], results[variant])
        for variant in variants
    }


def _spawn_bridge(variant: Variant, streams: int, url: str, logs: Path) -> Server:
    # Room for connections the bridge has not yet seen close when their client makes the next.
    limit = str(2 * streams + 10)
    return spawn_bridge(
        logs, url, name=f"bridge-{streams}-{variant.event_loop}-{variant.chunk_ms}ms",
        extra=["--event-loop", variant.event_loop, "--max-sessions", limit,
               "--max-connections", limit],
    )  # fmt: skip


def summarize_variant(streams: int, idle_mb: float, rounds: list[Round]) -> dict[str, Any]:
    shares = [r.cpu_percent_per_stream for r in rounds]
    samples = Samples()
    late: list[float] = []
    for r in rounds:
        samples.extend(r.samples)
        late += r.late_ms
    latency = summarize(samples.latencies_ms, len(samples.errors))
    peak = max(r.peak_rss_mb for r in rounds)
    late_p99 = percentile(late, 99)
    saturated = bool(
        samples.errors
        or (late_p99 is not None and late_p99 > LATE_MS)
        or (latency["p99_ms"] is not None and latency["p99_ms"] > 5 * LATE_MS)
    )
    median_share = statistics.median(shares)
    return {
        "streams": streams,
        "cpu_percent_per_stream": shares,
        "cpu_percent_per_stream_median": median_share,
        "streams_per_core": 100 / median_share if median_share else None,
        "idle_rss_mb": idle_mb,
        "peak_rss_mb": peak,
        "mb_per_stream": (peak - idle_mb) / streams,
        "latency": {k: v for k, v in latency.items() if k != "samples_ms"},
        "errors_sample": samples.errors[:10],
        "late_ms": {"p50": percentile(late, 50), "p99": late_p99, "max": max(late, default=None)},
        "max_queued_bytes": max(r.max_queued_bytes for r in rounds),
        "listen_overflows": [r.listen_overflows for r in rounds],
        "simulator_cores": [r.simulator_cores for r in rounds],
        "loadgen_cores": [r.loadgen_cores for r in rounds],
        "machine_busy_percent": [r.machine_busy_percent for r in rounds],
        "saturated": saturated,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Measured with `python -m benchmarks.scale {' '.join(results['argv'])}` in "
        f"{results['minutes']:.1f} min on: {machine_line(results['machine'])}. "
        f"Load average before: {results['load_before']}; after: {results['load_after']}.",
        "",
        "| streams | bridge | CPU % of a core per stream (median; rounds) | streams per core "
        "| RSS idle → peak MB | MB per stream | p50 / p99 ms | errors | full listen queue drops "
        "| chunks late p99 / max ms | machine busy % | kept up |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for streams, variants in results["levels"].items():
        for name, v in variants.items():
            rounds = ", ".join(f"{s:.2f}" for s in v["cpu_percent_per_stream"])
            latency = v["latency"]
            p50, p99 = latency["p50_ms"], latency["p99_ms"]
            shown = f"{p50:.1f} / {p99:.1f}" if p50 is not None and p99 is not None else "–"
            late = v["late_ms"]
            late_shown = (
                f"{late['p99']:.1f} / {late['max']:.0f}" if late["p99"] is not None else "–"
            )
            busy = ", ".join(f"{b:.0f}" for b in v["machine_busy_percent"])
            lines.append(
                f"| {streams} | {name} | {v['cpu_percent_per_stream_median']:.2f} ({rounds}) "
                f"| {v['streams_per_core']:.0f} | {v['idle_rss_mb']:.0f} → {v['peak_rss_mb']:.0f} "
                f"| {v['mb_per_stream']:.3f} | {shown} | {latency['errors']} "
                f"| {sum(v['listen_overflows'])} | {late_shown} "
                f"| {busy} | {'no' if v['saturated'] else 'yes'} |"
            )
    return "\n".join(lines)


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    variants = [Variant(loop, chunk) for chunk in args.chunk_ms for loop in args.event_loops]
    logs = Path(tempfile.mkdtemp(prefix="scale-"))
    results: dict[str, Any] = {
        "argv": list(argv),
        "machine": describe_machine(),
        "load_before": load_average(),
        "levels": {},
    }
    simulator = spawn_simulator(logs)
    with running(simulator):
        await wait_for_port(simulator)
        for streams in args.levels:
            results["levels"][streams] = await level(
                streams, variants, args.rounds, args.seconds, simulator, logs
            )
    results["load_after"] = load_average()
    results["logs"] = str(logs)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[100, 300, 500])
    parser.add_argument(
        "--event-loops", nargs="+", choices=("asyncio", "uvloop"), default=["asyncio", "uvloop"]
    )
    parser.add_argument("--chunk-ms", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured, per round")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    started = time.monotonic()
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        results = runner.run(run(args, arguments))
    results["minutes"] = (time.monotonic() - started) / 60
    results["load_generator_loop"] = "uvloop" if loop_factory else "asyncio"
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"scale-{stamp}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print(markdown(results))
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
