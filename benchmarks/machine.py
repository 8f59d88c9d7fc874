"""What the numbers were measured on, and per-process CPU and memory from /proc."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("wyoming-bodhi", "wyoming", "aiohttp", "numpy", "soxr", "matplotlib")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    """The CPU model as /proc/cpuinfo names it (first "model name" line)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model"):
            return value.strip()
    return platform.processor() or "unknown"


def memory_total_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_mb": memory_total_mb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One Markdown line: CPU, cores, Python, package versions."""
    packages = ", ".join(
        f"{name} {version}"
        for name, version in machine["packages"].items()
        if version != "not installed"
    )
    memory = f", {machine['memory_mb'] / 1024:.0f} GB RAM" if machine["memory_mb"] else ""
    return (
        f"{machine['cpu_model']}, {machine['usable_cores']} cores{memory}, Linux "
        f"{machine['kernel']}; {machine['python_implementation']} {machine['python']}; "
        f"{packages}"
    )


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process: CPU seconds used so far, resident and peak resident memory."""

    cpu_seconds: float
    rss_mb: float
    hwm_mb: float


def sample_process(pid: int) -> ProcSample:
    """Read /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS, VmHWM)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    memory = {"VmRSS": 0.0, "VmHWM": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in memory:
            memory[key] = int(value.split()[0]) / 1024
    return ProcSample((utime + stime) / _CLOCK_TICKS, memory["VmRSS"], memory["VmHWM"])
