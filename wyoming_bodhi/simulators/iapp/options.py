"""The iApp ASRx simulator's own knobs, on top of those every simulator shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..options import SimulatorOptions

EndForm = Literal["end_of_process", "confirm", "close"]
END_FORMS: tuple[EndForm, ...] = ("end_of_process", "confirm", "close")


@dataclass(frozen=True, slots=True)
class IappOptions(SimulatorOptions):
    """How the iApp ASRx simulator behaves: the shared knobs, and iApp's."""

    end_form: EndForm = "end_of_process"
    """How the end of the results is said: ``end_of_process`` (the documentation's prose),
    ``confirm`` (a ``Confirm Close Connection`` text, which the sample clients wait for), or
    ``close`` (the server just closes)."""
    new_sentence: str = "NewSentence"
    """The state that starts a new sentence (the documentation also spells it "New
    sentence")."""

    def __post_init__(self) -> None:
        super(IappOptions, self).__post_init__()
        if self.end_form not in END_FORMS:
            raise ValueError(f"end_form must be one of {END_FORMS}, got {self.end_form!r}")


__all__ = ["END_FORMS", "EndForm", "IappOptions"]
