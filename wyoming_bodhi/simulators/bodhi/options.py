"""The Bodhi simulator's own knobs, on top of those every simulator shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..options import SimulatorOptions

FinalForm = Literal["last-complete", "separate"]
FINAL_FORMS: tuple[FinalForm, ...] = ("last-complete", "separate")


@dataclass(frozen=True, slots=True)
class BodhiOptions(SimulatorOptions):
    """How the Bodhi simulator behaves: the shared knobs, and Bodhi's."""

    require_customer_id: bool = False
    """Legacy platform: a missing ``x-customer-id`` is refused with 401."""
    extra_models: Sequence[str] = ()
    """Model names accepted on top of the catalogue's built-ins."""
    confidences: Sequence[float | None] = ()
    """Per-segment confidence, in order (then the language's usual: 0.9, or null)."""
    revise: bool = False
    """One partial per segment shows a wrong last word that a later result corrects."""
    empty_partials: bool = False
    """The first partial of each segment has empty text, as the real service sometimes does."""
    final: FinalForm = "last-complete"
    """``last-complete``: the last complete carries eos when a segment is open at eof;
    ``separate``: an empty eos message always follows the last complete."""

    def __post_init__(self) -> None:
        super(BodhiOptions, self).__post_init__()
        object.__setattr__(self, "confidences", tuple(self.confidences))
        self._strings("extra_models")
        if self.final not in FINAL_FORMS:
            raise ValueError(f"final must be one of {FINAL_FORMS}, got {self.final!r}")


__all__ = ["FINAL_FORMS", "BodhiOptions", "FinalForm"]
