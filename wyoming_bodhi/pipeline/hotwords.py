"""One hotword list per request, from every source, in priority order (pure).

Sources, highest priority first:
1. ``transcript_names`` from the request: the names Home Assistant wants recognised now;
2. the user's static ``--hotword`` phrases;
3. Home Assistant's exposed entity, area and floor names (fetched in the background);
4. ``transcript_terms`` from the request: domain words, lowest priority.

Phrases are de-duplicated case-insensitively, keeping the first spelling and the highest
score, then capped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..engines.base import Hotword

_LOGGER = logging.getLogger(__name__)

NAME_SCORE = 2.5
"""For ``transcript_names``: above Bodhi's default 1.5, inside its useful 1.0-3.0."""

HASS_NAME_SCORE = 2.0
"""For names fetched from Home Assistant: likely, but not what this request asked for."""

MAX_HOTWORDS = 100
"""Bodhi documents no limit, but each phrase is sent in the config message of every request
and biases every decoding step; past a hundred or so phrases the bias is spread too thin to
help and the config message grows with every entity a large home has. Higher-priority
sources are kept first."""

MAX_PHRASE_CHARS = 64
"""Hotwords are device, room and domain names, not sentences."""


def merge_hotwords(
    *,
    names: Iterable[str] = (),
    static: Sequence[Hotword] = (),
    hass_names: Iterable[str] = (),
    terms: Iterable[str] = (),
    cap: int = MAX_HOTWORDS,
) -> tuple[Hotword, ...]:
    merged: dict[str, Hotword] = {}
    order: list[str] = []

    def add(hotword: Hotword) -> None:
        phrase = " ".join(hotword.phrase.split())
        if not phrase or len(phrase) > MAX_PHRASE_CHARS:
            return
        key = phrase.casefold()
        known = merged.get(key)
        if known is None:
            merged[key] = Hotword(phrase, hotword.score)
            order.append(key)
        elif _score(hotword) > _score(known):
            merged[key] = Hotword(known.phrase, hotword.score)

    for name in names:
        add(Hotword(name, NAME_SCORE))
    for hotword in static:
        add(hotword)
    for name in hass_names:
        add(Hotword(name, HASS_NAME_SCORE))
    for term in terms:
        add(Hotword(term))
    if len(order) > cap:
        _LOGGER.debug("Keeping the first %d of %d hotwords", cap, len(order))
    return tuple(merged[key] for key in order[:cap])


def _score(hotword: Hotword) -> float:
    # No score means Bodhi's default.
    return 1.5 if hotword.score is None else hotword.score
