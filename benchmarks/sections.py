"""A benchmark run of its own: its sections one after another (the results are then kept and
shown by :func:`.report.save`)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
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
