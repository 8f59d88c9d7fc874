"""Where the bridge spends its CPU under load: py-spy attached to the bridge process.

A separate, unmeasured round (sampling perturbs the bridge a little): ``streams`` real-time
streams, py-spy recording the bridge's Python stacks. The collapsed stacks are kept (open them
in https://www.speedscope.app or flamegraph.pl) and summarised: the share of busy samples
spent in each function itself (self) and through which of our functions (or wyoming's or
aiohttp's) it was reached, under each non-event-loop function (inclusive), and per package.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .streams import Samples, Utterance, concurrently

SAMPLE_RATE_HZ = 200
TOP = 15
ROUNDS = 2
OUR_PACKAGE = "wyoming_bodhi"
LIBRARIES = frozenset({"wyoming", "aiohttp"})
LOOP_INTERNALS = frozenset({"asyncio", "selectors", "runpy", "<frozen runpy>", "threading"})
MAX_SECONDS = 120
"""py-spy's own bound, should the run never stop it."""
ATTACH_SECONDS = 1.0


def find_py_spy() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("py-spy")


async def profile_bridge(
    pid: int, utterance: Utterance, streams: int, stacks_path: Path
) -> dict[str, Any]:
    """Record the bridge (``pid``) while ``streams`` streams of ``utterance`` run."""
    py_spy = find_py_spy()
    if py_spy is None:
        return {"skipped": "py-spy is not installed: pip install py-spy"}
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--nolineno",
        "--rate",
        str(SAMPLE_RATE_HZ),
        "--duration",
        str(MAX_SECONDS),
        "--output",
        str(stacks_path),
    ]
    recorder = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await asyncio.sleep(ATTACH_SECONDS)
        started = time.perf_counter()
        samples = Samples()
        for _ in range(ROUNDS):
            samples.extend(await concurrently(utterance, streams))
        seconds = time.perf_counter() - started
    finally:
        # py-spy writes its output when interrupted, as on Ctrl-C.
        recorder.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(recorder.communicate(), 30)
    stacks = await asyncio.to_thread(_read, stacks_path)
    if stacks is None:
        return {"skipped": f"py-spy failed: {output.decode(errors='replace')[-500:]}"}
    return {
        "tool": "py-spy",
        "streams": streams,
        "errors": len(samples.errors),
        "stacks_file": str(stacks_path),
        **summarize_stacks(stacks, seconds + ATTACH_SECONDS),
    }


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _parse(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _package(frame: str) -> str:
    """``Function (pkg/mod.py)`` → ``pkg``; a top-level module stays itself."""
    _, _, location = frame.partition(" (")
    path = location.rstrip(")")
    first = path.split("/", 1)[0]
    return first.removesuffix(".py") if first else "?"


def _top(counter: Counter[str], total: int, top: int = TOP) -> list[dict[str, Any]]:
    return [
        {"function": name, "percent": 100 * count / total}
        for name, count in counter.most_common(top)
    ]


def _is_plumbing(frame: str) -> bool:
    """The event loop, and the entry point that runs it: under every sample."""
    return _package(frame) in LOOP_INTERNALS or frame.endswith("__main__.py)")


def _caller(frames: list[str]) -> str:
    """Who a leaf's time is for: the nearest frame of ours, else of wyoming or aiohttp."""
    callers = [frame for frame in frames[-2::-1] if not _is_plumbing(frame)]
    for packages in ({OUR_PACKAGE}, LIBRARIES):
        for frame in callers:
            if _package(frame) in packages:
                return frame
    return "the event loop"


def summarize_stacks(text: str, seconds: float) -> dict[str, Any]:
    """Self, inclusive and per-package shares of the busy (non-idle) samples."""
    stacks = _parse(text)
    total = sum(count for _, count in stacks)
    if not total:
        return {"busy_samples": 0}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    callers: dict[str, Counter[str]] = {}
    for frames, count in stacks:
        leaf = frames[-1]
        own[leaf] += count
        packages[_package(leaf)] += count
        callers.setdefault(leaf, Counter())[_caller(frames)] += count
        # The event loop's own frames are under nearly every sample and say nothing.
        for frame in {f for f in frames if not _is_plumbing(f)}:
            inclusive[frame] += count
    hottest = _top(own, total)
    for entry in hottest:
        entry["via"] = _top(callers[entry["function"]], total, top=3)
    return {
        "busy_samples": total,
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "seconds": seconds,
        "busy_percent_of_core": 100 * total / (SAMPLE_RATE_HZ * seconds),
        "self": hottest,
        "inclusive": _top(inclusive, total),
        "packages": _top(packages, total),
    }
