"""A stop signal that comes while the server is still starting.

Loading the server takes a second or more (several under emulation), and a stop may come
meanwhile: dockerd and the kubelet send SIGTERM whenever they are asked to stop, starting or
not. The image execs the server, so there it is PID 1 of its PID namespace, and the kernel
drops a signal sent to PID 1 that has no handler: a stop asked for while the server starts
would be lost, and the container killed only when its stop timeout ran out. So the command
(:mod:`.command`) takes SIGTERM and SIGINT before it imports anything slow. Until the server
serves (and :class:`~.__main__.StopSignals` takes them over for a graceful stop), SIGTERM
ends the process at once with status 0, like any clean stop: nothing has been served; and
SIGINT (a person's Ctrl-C) ends it as Ctrl-C ends any program, by SIGINT, so that the shell
running it stops too.

A module of the bottom layer, so that the engines' registry can let :class:`Stopped` through
a plugin's import untouched: it is the user's stop, not the plugin's failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(SystemExit):
    """A stop signal that came while nothing was there to stop gracefully. A
    ``SystemExit`` (status 0), so that the event loop lets it through wherever it lands
    (asyncio and uvloop log any other exception raised in their callbacks and carry on),
    and so that nothing prints a traceback for it."""

    def __init__(self, signum: int) -> None:
        super().__init__(0)
        self.signal = signal.Signals(signum)


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_signals_taken() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Stopped` within the block."""
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def taken() -> bool:
    """Whether a stop signal raises :class:`Stopped` now (rather than KeyboardInterrupt)."""
    return signal.getsignal(signal.SIGINT) is _stop


def stoppable(command: Callable[[], int]) -> int:
    """``command()``'s exit status; 0 when SIGTERM ends it early. SIGINT ends it by SIGINT."""
    try:
        with stop_signals_taken():
            return command()
    except Stopped as stop:
        print(f"wyoming-bodhi: stopped by {stop.signal.name}", file=sys.stderr, flush=True)
        if stop.signal is signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return 0
