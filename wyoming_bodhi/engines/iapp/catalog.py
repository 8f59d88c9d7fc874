"""iApp ASRx's one model, and the language tags that pick it."""

from __future__ import annotations

from typing import Final

from ..base import Model

MODEL_NAME: Final = "iapp-asrx"
MODEL: Final = Model(
    name=MODEL_NAME,
    engine="iapp",
    languages=("th", "th-TH"),
    description="Thai, real-time (iApp ASRx)",
    version="asrx",
)


def speaks(tag: str) -> bool:
    """``th``, ``th-TH``, ``th_TH``, ``TH`` → True."""
    return tag.strip().replace("_", "-").lower().split("-", 1)[0] == "th"
