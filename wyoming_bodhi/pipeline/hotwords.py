"""One hotword list per request, from every source, in priority order (pure).

Sources, highest priority first:
1. ``transcript_names`` from the request: the names Home Assistant wants recognised now;
2. the user's static ``--hotword`` phrases;
3. Home Assistant's exposed entity, area and floor names (fetched in the background);
4. ``transcript_terms`` from the request: domain words, lowest priority.

Phrases are de-duplicated case-insensitively, keeping the first spelling and the highest
score, then capped. The scores and the caps are the engine's
(:class:`~wyoming_bodhi.engines.base.HotwordPolicy`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..engines.base import Hotword, HotwordPolicy

_LOGGER = logging.getLogger(__name__)


def merge_hotwords(
    policy: HotwordPolicy,
    *,
    names: Iterable[str] = (),
    static: Sequence[Hotword] = (),
    hass_names: Iterable[str] = (),
    terms: Iterable[str] = (),
) -> tuple[Hotword, ...]:
    merged: dict[str, Hotword] = {}
    order: list[str] = []

    def score(hotword: Hotword) -> float:
        return policy.default_score if hotword.score is None else hotword.score

    def add(hotword: Hotword) -> None:
        phrase = " ".join(hotword.phrase.split())
        if not phrase or len(phrase) > policy.max_chars:
            return
        key = phrase.casefold()
        known = merged.get(key)
        if known is None:
            merged[key] = Hotword(phrase, hotword.score)
            order.append(key)
        elif score(hotword) > score(known):
            merged[key] = Hotword(known.phrase, hotword.score)

    for name in names:
        add(Hotword(name, policy.request_names))
    for hotword in static:
        add(hotword)
    for name in hass_names:
        add(Hotword(name, policy.home_names))
    for term in terms:
        add(Hotword(term))
    if len(order) > policy.max_count:
        _LOGGER.debug("Keeping the first %d of %d hotwords", policy.max_count, len(order))
    return tuple(merged[key] for key in order[: policy.max_count])
