"""The order in which pytest-xdist hands out the test files."""

from __future__ import annotations

from collections import Counter

import pytest

# The files that take minutes (building the images, arm64 under emulation), longest first:
# they start at once, beside the rest of the suite, rather than late and after it.
SLOW_FIRST = ("tests/test_image_arm64.py", "tests/test_image.py")


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
