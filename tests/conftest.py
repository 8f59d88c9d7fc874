"""Fixtures more than one test file uses, what a run prints beyond pytest's own report, and the
order in which pytest-xdist hands out the test files."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from .harness import Rig, SelfSigned, self_signed_certificate


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, as a browser, Home Assistant or a load balancer has."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with contextlib.AsyncExitStack() as stack:
        yield Rig(stack)


@pytest.fixture
def self_signed(tmp_path: Path) -> SelfSigned:
    return SelfSigned(*self_signed_certificate(tmp_path))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Why tests were skipped, one line per reason with its count: a run without the system
    packages that .ci/run installs skips whole groups, and says which and what installs them
    (README.md lists them too). pytest's own ``-rs`` would give a line per test."""
    reasons = Counter(skip_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if not reasons:
        return
    terminalreporter.section(f"why {reasons.total()} tests were skipped")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:4d} × {reason}")


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


# The files that take minutes (building the images, arm64 under emulation), longest first:
# they start at once, beside the rest of the suite, rather than late and after it.
SLOW_FIRST = ("tests/test_image_arm64.py", "tests/test_image_arm64_addon.py", "tests/test_image.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files, then the others by how many tests they hold, most first: what
    pytest-xdist does by itself (--loadscope-reorder), which pyproject.toml turns off so that
    this order stands."""
    sizes = Counter(item.nodeid.partition("::")[0] for item in items)

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.partition("::")[0]
        slow = SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)
        return slow, -sizes[path]

    items.sort(key=rank)  # stable: a file's tests stay together, in their order
