"""An engine's phrases → the Wyoming transcript, sans-I/O.

Partials are cumulative and may still be revised, so they never become ``transcript-chunk``
events: Wyoming clients join chunks into the final text, and a chunk cannot be taken back.
Each *completed* phrase becomes one chunk, a delta that carries its own leading space, so
``"".join(chunks)`` is always exactly the transcript text.
"""

from __future__ import annotations

import logging

from ..engines.base import Phrase, PhraseKind

_LOGGER = logging.getLogger(__name__)


def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


class TranscriptAssembler:
    """Feed it results in arrival order; it says which delta to stream and holds the text."""

    def __init__(self, min_confidence: float | None = None) -> None:
        self._min_confidence = min_confidence
        self._segments: list[str] = []
        self._completed_ids: set[int | str] = set()
        self._last_partials: dict[int | str | None, str] = {}
        self.language_code: str | None = None
        self.ended = False

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
                _LOGGER.debug("Partial (segment %s): %r", segment, text)
                self._last_partials[segment] = text
            return None

        self._last_partials.pop(segment, None)
        if segment is not None:
            if segment in self._completed_ids:
                if text:
                    _LOGGER.warning("Ignoring a second complete for segment %r", segment)
                return None
            self._completed_ids.add(segment)
        if not text:
            # Empty completes are normal (noise, Bodhi's separate end-of-stream form).
            return None
        confidence = phrase.confidence
        if (
            self._min_confidence is not None
            and confidence is not None
            and confidence < self._min_confidence
        ):
            _LOGGER.info(
                "Left out a phrase with confidence %.2f (below %.2f): %r",
                confidence,
                self._min_confidence,
                text,
            )
            return None
        return self._append(text)

    def _append(self, text: str) -> str:
        delta = f" {text}" if self._segments else text
        self._segments.append(text)
        return delta
