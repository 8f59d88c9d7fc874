"""When to retry a failed connection to an engine: a pure policy, like the pacer.

The utterance does the waiting; nothing is lost meanwhile, since the audio waits in its
queue and is all sent once connected.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engines.base import EngineError

BACKOFF = 0.25
"""Seconds before the first retry; doubled for each one after."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int
    """Retries after the first attempt, at most."""
    budget: float
    """Seconds from the first attempt after which no retry starts."""
    backoff: float = BACKOFF

    def delay(self, error: EngineError, attempt: int, spent: float) -> float | None:
        """Seconds to wait before retrying after failed ``attempt`` (1 for the first), with
        ``spent`` seconds gone since the first began; None to give up."""
        if not error.retryable or attempt > self.retries:
            return None
        delay = self.backoff * 2 ** (attempt - 1)
        return None if spent + delay > self.budget else delay
