"""Connecting to an engine, retrying what a retry can fix, within a bounded budget: a pure
policy (:class:`RetryPolicy`, like the pacer) and the loop that follows it.

Nothing is lost meanwhile: the audio waits in the utterance's queue (see :mod:`.intake`),
and is all sent once connected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..engines.base import Engine, EngineError, Request, Session, redact
from ..logs import Throttled
from .activity import Observers

_LOGGER = logging.getLogger(__name__)

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


async def connect_with_retries(
    engine: Engine,
    request: Request,
    policy: RetryPolicy,
    *,
    connect_timeout: float,
    secrets: Sequence[str],
    activity: Observers,
    warnings: Throttled,
) -> Session:
    """The engine's session for ``request``; raises the last :class:`EngineError` (its
    secrets blanked out) once the policy gives up. Each failed handshake is told to
    ``activity``, and each retry logged through the server's throttle."""
    first_try = time.monotonic()
    attempt = 0
    while True:
        try:
            return await engine.connect(request, timeout=connect_timeout)
        except EngineError as err:
            redact(err, secrets)
            activity.handshake_failed(engine.name, err.code)
            attempt += 1
            delay = policy.delay(err, attempt, time.monotonic() - first_try)
            if delay is None:
                raise
            warnings.warning(
                _LOGGER,
                "Connecting to %s failed (%s); retry %d of %d in %.2f s",
                engine.title,
                err,
                attempt,
                policy.retries,
                delay,
                key=err.code,
            )
            await asyncio.sleep(delay)


__all__ = ["BACKOFF", "RetryPolicy", "connect_with_retries"]
