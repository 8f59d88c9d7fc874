"""The ``wyoming-bodhi`` command: takes the stop signals first, then loads the server.

This module imports nothing slow, so that a SIGTERM sent while the server starts is taken
at once, also as PID 1 in the image (see :mod:`.stopping` for why that matters).
"""

from __future__ import annotations

from collections.abc import Sequence

from .stopping import stoppable


def main(argv: Sequence[str] | None = None) -> int:
    """``wyoming-bodhi``."""

    def load_and_run() -> int:
        from .__main__ import run  # the slow part: aiohttp, numpy, the engines

        return run(argv)

    return stoppable(load_and_run)
