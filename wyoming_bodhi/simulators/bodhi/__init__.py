"""A faithful, local Bodhi-compatible streaming ASR server (for tests, benchmarks and demos).

It never recognises speech: segments are found by energy, and their texts are scripted
(``texts``) or a phrase that plainly says it comes from the simulator.
"""

from typing import Any

from ...engines.bodhi.settings import BodhiSettings
from ..messages import Reply
from ..options import SimulatorOptions
from ..record import ConnectionRecord, FrameRecord
from ..segmenter import EnergySegmenter, SegmentComplete, SegmentOpened, SegmentProgress
from .options import BodhiOptions
from .server import BodhiSimulator
from .session import BodhiSession, default_text


def simulate(settings: BodhiSettings, *, history: int = 1000, **options: Any) -> BodhiSimulator:
    """Bodhi for ``--demo`` and tests: the settings' extra models are accepted too, the
    records of at most ``history`` connections are kept (the demo may run for months), and
    ``options`` are :class:`BodhiOptions`' knobs."""
    return BodhiSimulator(
        BodhiOptions(extra_models=settings.extra_models, history=history, **options)
    )


__all__ = [
    "BodhiOptions",
    "BodhiSession",
    "BodhiSimulator",
    "ConnectionRecord",
    "EnergySegmenter",
    "FrameRecord",
    "Reply",
    "SegmentComplete",
    "SegmentOpened",
    "SegmentProgress",
    "SimulatorOptions",
    "default_text",
    "simulate",
]
