"""A benchmark run of its own: its sections one after another, then the results kept and
shown (``<name>-<UTC time>.json`` in the output folder, and Markdown on stdout)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from .machine import describe_machine

Section = tuple[str, Callable[[], Awaitable[Any]]]


async def run_sections(title: str, sections: Sequence[Section]) -> dict[str, Any]:
    """Each section's result under its name, and the machine; progress on stderr."""
    results: dict[str, Any] = {"machine": describe_machine()}
    for name, section in sections:
        print(f"{title}: {name}…", file=sys.stderr, flush=True)
        results[name] = await section()
    return results


def write_results(
    out: Path, name: str, results: dict[str, Any], markdown: Callable[[dict[str, Any]], str]
) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{name}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    print(f"\nwrote {path}", file=sys.stderr)
