"""Bodhi results → the Wyoming transcript, sans-I/O.

Bodhi's partials are cumulative and may still be revised, so they never become
``transcript-chunk`` events: Wyoming clients join chunks into the final text, and a chunk
cannot be taken back. Each *completed* segment becomes one chunk, a delta that carries its
own leading space, so ``"".join(chunks)`` is always exactly the transcript text.
"""

from __future__ import annotations

import logging

from ..engines.bodhi.protocol import BodhiResult

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

    def feed(self, result: BodhiResult) -> str | None:
        """Take one result; return the ``transcript-chunk`` text to send now, if any."""
        if result.language_code:
            self.language_code = result.language_code
        if result.eos:
            self.ended = True
        text = normalise_whitespace(result.text)

        if not result.is_complete:
            if text and self._last_partials.get(result.segment_id) != text:
                _LOGGER.debug("Partial (segment %s): %s", result.segment_id, text)
                self._last_partials[result.segment_id] = text
            return None

        self._last_partials.pop(result.segment_id, None)
        if result.segment_id is not None:
            if result.segment_id in self._completed_ids:
                if text:
                    _LOGGER.warning("Ignoring a second complete for segment %s", result.segment_id)
                return None
            self._completed_ids.add(result.segment_id)
        if not text:
            # Empty completes are normal (noise, the separate end-of-stream form).
            return None
        confidence = result.segment_meta.confidence
        if (
            self._min_confidence is not None
            and confidence is not None
            and confidence < self._min_confidence
        ):
            _LOGGER.info(
                "Left out a phrase with confidence %.2f (below %.2f): %s",
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
