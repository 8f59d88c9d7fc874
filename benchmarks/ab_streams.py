"""Bridge CPU at 100 real-time streams, for two (or more) source trees taking turns.

Figures from different runs of ``python -m benchmarks`` differ with the machine they ran
on (a VM's neighbours included); this compares code on one machine in one run, e.g. a
commit checked out with ``git worktree add --detach ../old <commit>``::

    python -m benchmarks.ab_streams --rounds 4 ../old .

Each tree's bridge runs from that tree (``PYTHONPATH``) against one simulator; per round,
100 streams of the usual 2 s utterance, starts spread over 1 s. Prints the bridge's CPU
(% of one core per stream) per round and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import servers, streams

STREAMS = 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_bridge_from(tree: Path, bodhi_url: str, log_dir: Path) -> servers.Server:
    port = servers.free_port()
    env = servers.bridge_env() | {"PYTHONPATH": str(tree)}
    log_path = log_dir / f"bridge-{tree.name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *servers.bridge_command(port, bodhi_url)],
            env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return servers.Server(tree.name, proc, port, log_path)


async def compare(trees: list[Path], rounds: int) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="ab-streams-"))
    simulator = servers.spawn_simulator(log_dir)
    bridges = []
    try:
        await servers.wait_for_port(simulator)
        for tree in trees:
            bridge = spawn_bridge_from(tree, f"ws://{servers.HOST}:{simulator.port}", log_dir)
            bridges.append(bridge)
            await servers.wait_for_info(bridge)
        workload = streams.make_workload()
        results: dict[Path, list[float]] = {tree: [] for tree in trees}
        for round_ in range(rounds):
            for tree, bridge in zip(trees, bridges, strict=True):
                before = cpu_seconds(bridge.proc.pid)
                utterance = functools.partial(streams.bridge_utterance, bridge.port, workload, True)
                samples = await streams.concurrently(utterance, STREAMS)
                share = (cpu_seconds(bridge.proc.pid) - before) / (STREAMS * workload.duration)
                results[tree].append(100 * share)
                print(f"{tree}: round {round_ + 1}: {100 * share:.3f} % of a core per stream, "
                      f"{len(samples.errors)} errors", flush=True)  # fmt: skip
        for tree, shares in results.items():
            print(f"{tree}: median {statistics.median(shares):.3f} % of a core per stream")
    finally:
        for server in [*bridges, simulator]:
            server.proc.terminate()
            server.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("trees", nargs="+", type=Path, help="source trees (checkouts)")
    args = parser.parse_args()
    asyncio.run(compare([tree.resolve() for tree in args.trees], args.rounds))


if __name__ == "__main__":
    main()
