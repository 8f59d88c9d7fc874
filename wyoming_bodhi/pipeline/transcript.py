"""An engine's phrases → the Wyoming transcript, sans-I/O.

Partials are cumulative and may still be revised, so they never become ``transcript-chunk``
events: Wyoming clients join chunks into the final text, and a chunk cannot be taken back.
Each *completed* phrase becomes one chunk, a delta that carries its own leading space, so
``"".join(chunks)`` is always exactly the transcript text.
"""

from __future__ import annotations

import logging

from ..engines.base import Phrase, PhraseKind
from ..logs import Throttled
from ..text import quoted

_LOGGER = logging.getLogger(__name__)


def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


MAX_TRANSCRIPT_CHARS = 100_000
"""A transcript longer than this is cut: 300 s of speech is a few thousand characters, so only
an engine gone wrong (or a hostile one) sends more, and memory stays bounded whatever it
sends."""

PARTIALS_KEPT = 8
"""Open segments whose last partial is remembered (to log only changes): engines have one or
two open at a time; ever-new segment ids must not make the map grow."""


class TranscriptAssembler:
    """Feed it results in arrival order; it says which delta to stream and holds the text."""

    def __init__(self, min_confidence: float | None = None) -> None:
        self._min_confidence = min_confidence
        self._segments: list[str] = []
        self._chars = 0
        self._completed_ids: set[int | str] = set()
        self._last_partials: dict[int | str | None, str] = {}
        self.cut = False
        """Phrases were left out because the transcript reached its limit."""
        self.language_code: str | None = None
        self.ended = False
        self.warnings = Throttled(interval=None)
        """What the engine got wrong, said once; :meth:`Throttled.flush` once the request is
        over says how often."""

    @property
    def text(self) -> str:
        return " ".join(self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def feed(self, phrase: Phrase) -> str | None:
        """Take one phrase; return the ``transcript-chunk`` text to send now, if any."""
        if phrase.language:
            self.language_code = phrase.language
        if phrase.kind is PhraseKind.END:
            self.ended = True
            return None
        text = normalise_whitespace(phrase.text)
        segment = phrase.segment

        if phrase.kind is PhraseKind.PARTIAL:
            if text and self._last_partials.get(segment) != text:
                _LOGGER.debug("Partial (segment %s): %s", quoted(segment), quoted(text, 200))
                self._last_partials.pop(segment, None)
                self._last_partials[segment] = text
                while len(self._last_partials) > PARTIALS_KEPT:
                    del self._last_partials[next(iter(self._last_partials))]
            return None

        self._last_partials.pop(segment, None)
        if segment is not None and segment in self._completed_ids:
            if text:
                self.warnings.warning(
                    _LOGGER, "Ignoring a second complete for segment %s", quoted(segment)
                )
            return None
        if not text:
            # Empty completes are normal (noise, Bodhi's separate end-of-stream form).
            return None
        if self._chars + len(text) > MAX_TRANSCRIPT_CHARS:
            if not self.cut:
                _LOGGER.warning(
                    "The transcript reached %d characters; leaving out what follows",
                    MAX_TRANSCRIPT_CHARS,
                )
            self.cut = True
            return None
        if segment is not None:
            # Only ids of phrases kept: at most as many as the bounded transcript has.
            self._completed_ids.add(segment)
        confidence = phrase.confidence
        if (
            self._min_confidence is not None
            and confidence is not None
            and confidence < self._min_confidence
        ):
            self.warnings.log(
                _LOGGER,
                logging.INFO,
                "Left out a phrase with confidence %.2f (below %.2f): %s",
                confidence,
                self._min_confidence,
                quoted(text, 200),
            )
            return None
        return self._append(text)

    def _append(self, text: str) -> str:
        delta = f" {text}" if self._segments else text
        self._segments.append(text)
        self._chars += len(delta)
        return delta
