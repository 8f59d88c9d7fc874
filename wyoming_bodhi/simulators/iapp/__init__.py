"""A faithful, local iApp ASRx-compatible streaming ASR server (for tests, benchmarks and
demos). It never recognises speech: sentences are found by energy, and their texts are
scripted (``texts``) or plainly say they come from the simulator."""

from typing import Any

from ...engines.iapp.settings import IappSettings
from ..options import SimulatorOptions
from .options import IappOptions
from .server import IappSimulator
from .session import IappSession, default_text


def simulate(settings: IappSettings, *, history: int = 1000, **options: Any) -> IappSimulator:
    """iApp ASRx for ``--demo`` and tests, keeping the records of at most ``history``
    connections; ``options`` are :class:`IappOptions`' knobs."""
    return IappSimulator(IappOptions(history=history, **options))


__all__ = [
    "IappOptions",
    "IappSession",
    "IappSimulator",
    "SimulatorOptions",
    "default_text",
    "simulate",
]
