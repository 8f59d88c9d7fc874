"""Is an engine reachable with the configured credentials? Open a session and close it.

Nothing is sent but the end of (no) audio, so an engine bills nothing or next to nothing; the
answer is in words a person setting up acts on, never with a credential in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..engines.base import REFUSED, Engine, EngineError, Request, redact

CHECK_TIMEOUT = 10.0
"""Bounds the whole check, whatever the engine does."""
CHECKS_AT_ONCE = 3
CHECK_EVERY = 20.0
"""Checks of one engine: up to ``CHECKS_AT_ONCE`` in a row, then one every ``CHECK_EVERY``
seconds. Each is an authenticated engine session; a person needs a few, a loop no more."""


class CheckRate:
    """A token bucket: ``burst`` checks at once, one more every ``every`` seconds."""

    def __init__(
        self,
        burst: int = CHECKS_AT_ONCE,
        every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.every = every
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """0 when a check may start now (and counts it), else the seconds until one may."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) / self.every)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) * self.every


@dataclass(frozen=True, slots=True)
class CheckResult:
    engine: str
    ok: bool
    summary: str
    """One sentence for the page."""
    code: str | None = None
    milliseconds: int | None = None


async def check_engine(
    engine: Engine, secrets: tuple[str, ...] = (), *, timeout: float = CHECK_TIMEOUT
) -> CheckResult:
    model = engine.models[0]
    request = Request(model=model, language=model.languages[0])
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            session = await engine.connect(request, timeout=timeout)
            took = round((time.monotonic() - started) * 1000)
            async with session:
                # Politely: the end of the audio, then the engine's own end, if it comes soon.
                with contextlib.suppress(EngineError, TimeoutError):
                    await session.send_end()
                    async with asyncio.timeout(2.0):
                        async for _phrase in session.phrases():
                            pass
    except EngineError as err:
        redact(err, secrets)
        refused = "refused the connection" if err.kind == REFUSED else "failed"
        return CheckResult(
            engine.name, False, f"{engine.title} {refused}: {err.message}", code=err.code
        )
    except TimeoutError:
        return CheckResult(
            engine.name,
            False,
            f"{engine.title} did not answer within {timeout:g} s",
            code=f"{engine.name}-timeout",
        )
    return CheckResult(
        engine.name,
        True,
        f"{engine.title} accepted the credentials and opened a session in {took} ms",
        milliseconds=took,
    )
