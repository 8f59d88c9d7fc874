"""The iApp ASRx protocol state machine for one connection, sans I/O.

Speech is found by energy in the received 16 kHz audio; each stretch of speech is a
sentence. While it is heard, the sentence's text so far is sent with state ``Sentence``; the
first message of every sentence after the first has state ``NewSentence`` (or the spelling
the options give). The end of the audio (``{"data": {"status": "CloseConnection"}}``, or the
prose's "end of stream") is answered in the form the options give, and the client closes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..messages import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_POLICY, Message, Reply
from ..segmenter import EnergySegmenter, SegmentComplete, SegmentOpened, SegmentProgress
from .options import IappOptions

SAMPLE_RATE = 16000
SENTENCE_PAUSE = 0.5
"""Seconds of received silence that end a sentence (iApp documents none)."""
END_STATUSES = frozenset({"CloseConnection", "end of stream"})
END_TEXTS = {"end_of_process": "end_of_process", "confirm": "Confirm Close Connection"}


def default_text(index: int) -> str:
    """The sentence for segment ``index`` when no scripted text is left: plainly simulated."""
    return f"simulated Thai sentence {index + 1} from the iApp simulator"


def result(state: str, text: str) -> Message:
    return {"type": "realtime", "state": state, "text": text}


@dataclass(slots=True)
class _Sentence:
    index: int
    words: list[str]
    shown: int = 0


class IappSession:
    """One connection's protocol state."""

    call_id = None
    config: dict[str, Any] | None = None

    def __init__(self, options: IappOptions) -> None:
        self._options = options
        self._segmenter = EnergySegmenter(SAMPLE_RATE, SENTENCE_PAUSE, options.threshold_dbfs)
        self._sentence: _Sentence | None = None
        self.eof_received = False
        self.eof_message: str | None = None
        self.ended = False

    def on_text(self, text: str) -> Reply:
        if self.ended:
            return Reply()
        try:
            message = json.loads(text)
        except ValueError:
            return self.error("invalid JSON message")
        data = message.get("data") if isinstance(message, dict) else None
        status = data.get("status") if isinstance(data, dict) else None
        if status not in END_STATUSES:
            return self.error("unsupported message: expected the CloseConnection status")
        self.eof_received = True
        self.eof_message = text
        return self._finish()

    def on_binary(self, data: bytes) -> Reply:
        if self.ended:
            return Reply()
        reply = Reply()
        for event in self._segmenter.feed(data):
            if isinstance(event, SegmentOpened):
                self._open(event.index)
            elif isinstance(event, SegmentProgress):
                reply.messages += self._progress(event.speech_seconds)
            elif isinstance(event, SegmentComplete):
                reply.messages += self._reveal_all()
        return reply

    def error(self, text: str, code: int = 400) -> Reply:
        """End the session with an in-socket error (iApp documents no schema; this is ours)."""
        self.ended = True
        return Reply(
            messages=[{"error": text, "code": code}],
            close=True,
            close_code=CLOSE_POLICY if code < 500 else CLOSE_INTERNAL,
            close_reason=text.encode()[:120].decode(errors="ignore"),
            outcome="error",
        )

    def _open(self, index: int) -> None:
        texts = self._options.texts
        text = texts[index] if index < len(texts) else default_text(index)
        self._sentence = _Sentence(index, text.split())

    def _state(self, sentence: _Sentence) -> str:
        # The first message of every sentence after the first starts a new one.
        if sentence.shown == 0 and sentence.index > 0:
            return self._options.new_sentence
        return "Sentence"

    def _progress(self, speech_seconds: float) -> list[Message]:
        sentence = self._sentence
        if sentence is None or not self._options.partials:
            return []
        words = len(sentence.words)
        shown = min(words, max(1, math.ceil(speech_seconds / self._options.seconds_per_word)))
        if shown <= sentence.shown:
            return []
        state = self._state(sentence)
        sentence.shown = shown
        return [result(state, " ".join(sentence.words[:shown]))]

    def _reveal_all(self) -> list[Message]:
        """The sentence's last hypothesis is its whole text."""
        sentence = self._sentence
        if sentence is None or sentence.shown == len(sentence.words):
            return []
        state = self._state(sentence)
        sentence.shown = len(sentence.words)
        return [result(state, " ".join(sentence.words))]

    def _finish(self) -> Reply:
        self.ended = True
        messages: list[Message] = []
        for event in self._segmenter.finish():
            if isinstance(event, SegmentComplete):
                messages += self._reveal_all()
        form = self._options.end_form
        if form == "close":
            return Reply(messages, close=True, close_code=CLOSE_NORMAL, close_reason="end",
                         outcome="eos", answers_eof=True)  # fmt: skip
        messages.append({"type": "realtime", "text": END_TEXTS[form]})
        # The client closes, as iApp's sample clients do.
        return Reply(messages, outcome="eos", answers_eof=True)
