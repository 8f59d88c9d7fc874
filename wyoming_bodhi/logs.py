"""Log lines that a client or an engine cannot turn into a flood.

What outside parties send is bounded where it enters a line (``text.printable`` and
``quoted``); how *often* they can make the server say something is bounded here. A warning
that may repeat goes through a :class:`Throttled`: the first of its kind is logged at once,
the rest are counted and said with the next one logged, at most once per interval, or by
:meth:`Throttled.flush` when the request or connection they belong to is over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

WARN_INTERVAL = 10.0
"""At most one line per this many seconds for a warning that repeats (per kind)."""


@dataclass
class _Kind:
    logger: logging.Logger
    level: int
    logged_at: float
    """When its interval began: the first line logged in it."""
    logged: int = 1
    """Lines logged in this interval."""
    left_out: int = 0
    last_args: tuple[Any, ...] = ()


class Throttled:
    """Warnings of several kinds, each kept to one line per ``interval`` seconds.

    A kind is a logger, a message format and an optional ``key`` (an error code, say, so that
    one code's failures do not hide another's). With ``interval`` None a kind is logged once
    only, until :meth:`flush`: for what belongs to one request or one connection, summarised
    when it ends. Kinds are as many as there are call sites and keys, so a key must come from
    a closed set.
    """

    def __init__(self, interval: float | None = WARN_INTERVAL) -> None:
        self._interval = interval
        self._kinds: dict[tuple[str, str, str], _Kind] = {}

    def warning(self, logger: logging.Logger, message: str, *args: Any, **kwargs: Any) -> bool:
        kwargs.setdefault("stacklevel", 3)
        return self.log(logger, logging.WARNING, message, *args, **kwargs)

    def log(
        self,
        logger: logging.Logger,
        level: int,
        message: str,
        *args: Any,
        key: str = "",
        burst: int = 1,
        **kwargs: Any,
    ) -> bool:
        """Log ``message % args`` unless its kind was logged ``burst`` times within the
        interval already; then it is only counted. Whether it was logged. A ``burst`` above
        one is for what a server says in the normal run of things (a line per request):
        every line while requests come at a human pace, a bounded number under a flood.
        ``kwargs`` go to :meth:`logging.Logger.log`; the line is attributed to the caller
        (``stacklevel``)."""
        kwargs.setdefault("stacklevel", 2)
        now = time.monotonic()
        kind = self._kinds.get((logger.name, message, key))
        in_interval = kind is not None and (
            self._interval is None or now - kind.logged_at < self._interval
        )
        if kind is not None and in_interval:
            if kind.logged >= burst:
                kind.left_out += 1
                kind.last_args = args
                return False
            kind.logged += 1
            logger.log(level, message, *args, **kwargs)
            return True
        line = message
        if kind is not None and kind.left_out:
            line += f" (and {kind.left_out} more like it in the last {now - kind.logged_at:.0f} s)"
        logger.log(level, line, *args, **kwargs)
        self._kinds[(logger.name, message, key)] = _Kind(logger, level, now)
        return True

    @property
    def left_out(self) -> int:
        """Lines counted and not logged (yet)."""
        return sum(kind.left_out for kind in self._kinds.values())

    def flush(self) -> None:
        """Say, for each kind, how many were left out since its last line (the last of them
        as the example); then start afresh."""
        kinds, self._kinds = self._kinds, {}
        for (_name, message, _key), kind in kinds.items():
            if kind.left_out:
                kind.logger.log(
                    kind.level,
                    message + " (the last of %d like it left out of the log)",
                    *kind.last_args,
                    kind.left_out,
                    stacklevel=2,
                )


__all__ = ["WARN_INTERVAL", "Throttled"]
