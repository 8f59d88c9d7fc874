"""Real-time pacing of a frame stream, on an absolute schedule (sans-I/O)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

# Far below any timer's resolution (asyncio's is about 1 ms).
_NEGLIGIBLE_WAIT: Final = 1e-6


class Pacer:
    """Keeps a frame stream at most `lead_seconds` ahead of real time (sans-I/O).

    The schedule starts when the first frame is offered (t0); frame i (0-based) may be sent
    from ``t0 + i * frame_seconds - lead_seconds`` on. Because the schedule is absolute:

    * live audio, offered as it is captured, is never delayed;
    * a burst (wake-word pre-roll, a whole file) goes out `lead_seconds` ahead, then at
      exactly real time, with no drift however long the stream;
    * a source that stalls and resumes is only held to the schedule, never delayed further:
      its backlog may go out at once, as long as it stays within the lead.

    Call `delay()` before sending each frame, wait that long, send, then call `sent()`.
    """

    def __init__(
        self,
        frame_seconds: float,
        lead_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not frame_seconds > 0:
            raise ValueError(f"frame duration must be positive, got {frame_seconds!r} s")
        if not lead_seconds >= 0:
            raise ValueError(f"lead must be zero or positive, got {lead_seconds!r} s")
        self.frame_seconds: Final = frame_seconds
        self.lead_seconds: Final = lead_seconds
        self._clock = clock
        self._t0: float | None = None
        self._frames_sent = 0

    @property
    def frames_sent(self) -> int:
        """Frames sent since the start (or the last `reset`)."""
        return self._frames_sent

    def start(self, at: float | None = None) -> None:
        """Start the schedule when the first frame is queued, if it has not started yet.

        A sender that first has to wait for a connection should start the schedule when
        the audio arrives, not when it can first send: then the backlog of the wait counts
        against the lead instead of delaying the whole stream (with lead 0, forever).
        """
        if self._t0 is None:
            self._t0 = self._clock() if at is None else at

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next frame may be sent; 0.0 when it may go now."""
        if now is None:
            now = self._clock()
        if self._t0 is None:
            self._t0 = now
        # Multiply rather than accumulate, so long streams do not drift.
        wait = self._t0 + self._frames_sent * self.frame_seconds - self.lead_seconds - now
        # Float rounding leaves on-time frames nanoseconds "early"; that is not a wait.
        return wait if wait > _NEGLIGIBLE_WAIT else 0.0

    def sent(self) -> None:
        """Record that the next frame has been sent."""
        if self._t0 is None:
            # Sent without asking first: the schedule starts now.
            self._t0 = self._clock()
        self._frames_sent += 1

    def reset(self) -> None:
        """Start a new schedule (new utterance) at the next offered frame."""
        self._t0 = None
        self._frames_sent = 0


__all__ = ["Pacer"]
