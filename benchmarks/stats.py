"""Percentile summaries of latency samples (all in milliseconds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PERCENTILES = (50, 95, 99)


def summarize(samples_ms: Sequence[float], errors: int = 0) -> dict[str, Any]:
    """n, p50/p95/p99 (linear interpolation), mean, min, max, and the raw samples."""
    summary: dict[str, Any] = {"n": len(samples_ms), "errors": errors}
    if samples_ms:
        values = np.asarray(samples_ms, dtype=float)
        for p in PERCENTILES:
            summary[f"p{p}_ms"] = float(np.percentile(values, p))
        summary["mean_ms"] = float(values.mean())
        summary["min_ms"] = float(values.min())
        summary["max_ms"] = float(values.max())
    else:
        for key in (*(f"p{p}_ms" for p in PERCENTILES), "mean_ms", "min_ms", "max_ms"):
            summary[key] = None
    summary["samples_ms"] = [round(float(s), 3) for s in samples_ms]
    return summary


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """Percentile by percentile, a − b (ms)."""
    return {f"p{p}_ms": _sub(a.get(f"p{p}_ms"), b.get(f"p{p}_ms")) for p in PERCENTILES}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """Percentile by percentile, a / b."""
    return {f"p{p}": _div(a.get(f"p{p}_ms"), b.get(f"p{p}_ms")) for p in PERCENTILES}


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b
