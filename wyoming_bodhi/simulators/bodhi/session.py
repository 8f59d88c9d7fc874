"""The Bodhi protocol state machine for one connection, sans I/O.

Fed the client's text and binary frames, it answers with the messages to send and whether
to close. Everything that touches sockets, timers or faults lives in ``server.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...engines.bodhi.catalog import Catalog
from ..messages import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_POLICY, Message, Reply
from ..options import SimulatorOptions
from ..segmenter import (
    EnergySegmenter,
    SegmentComplete,
    SegmentOpened,
    SegmentProgress,
    clamp_endpoint,
)
from .options import BodhiOptions

MIN_SAMPLE_RATE = 8000

# The real service gives no confidence for these languages.
NO_CONFIDENCE_LANGUAGES = frozenset({"te", "or", "en"})
CONFIDENCE = 0.9


def default_text(index: int) -> str:
    """The phrase for segment ``index`` when no scripted text is left: plainly simulated."""
    return f"simulated transcript segment {index + 1} from the Bodhi simulator"


def segment_text(options: SimulatorOptions, index: int) -> str:
    """The text of segment ``index``: the scripted one, else the default."""
    texts = options.texts
    return texts[index] if index < len(texts) else default_text(index)


def error_message(text: str, code: int) -> Message:
    timestamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"error": text, "code": code, "message": text, "timestamp": timestamp}


@dataclass(slots=True)
class _Segment:
    index: int
    start_time: float
    words: list[str]
    partials_sent: int = 0
    revised: bool = False


def _mangle(word: str) -> str:
    """A plausibly wrong hypothesis for ``word``, guaranteed to differ from it."""
    if len(word) > 1:
        return word[:-1]
    return word + word


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class BodhiSession:
    """One connection's protocol state."""

    def __init__(
        self,
        options: BodhiOptions,
        catalog: Catalog,
        *,
        call_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._catalog = catalog
        self._clock = clock
        self._started = clock()
        self.call_id = call_id or str(uuid.uuid4())
        self.config: dict[str, Any] | None = None
        self.eof_received = False
        self.eof_message: str | None = None
        self.ended = False
        self._segmenter: EnergySegmenter | None = None
        self._segment: _Segment | None = None
        self._language = ""
        self._partials = options.partials
        self._lid = False
        self._aux = False

    # --- input ---

    def on_text(self, text: str) -> Reply:
        if self.ended:
            return Reply()
        try:
            message = json.loads(text)
        except ValueError:
            return self.error("invalid JSON message")
        if not isinstance(message, dict):
            return self.error("unsupported message: expected a JSON object")
        if "config" in message:
            if self.config is not None:
                return self.error("config already received; open a new connection to change it")
            return self._configure(message["config"])
        if "eof" in message:
            if self.config is None:
                return self.error("config must be the first message")
            value = message["eof"]
            if isinstance(value, bool) or value not in (1, "1"):
                return self.error(f"unsupported eof value {value!r}: expected 1")
            self.eof_received = True
            self.eof_message = text
            return self._finish()
        return self.error("unsupported message: expected config or eof")

    def on_binary(self, data: bytes) -> Reply:
        if self.ended:
            return Reply()
        if self._segmenter is None:
            return self.error("config must be sent before audio")
        reply = Reply()
        for event in self._segmenter.feed(data):
            if isinstance(event, SegmentOpened):
                self._open(event)
            elif isinstance(event, SegmentComplete):
                reply.messages.append(self._complete(event, eos=False))
            elif isinstance(event, SegmentProgress) and self._partials:
                reply.messages.append(self._partial(event))
        return reply

    def error(self, text: str, code: int = 400) -> Reply:
        """End the session with an in-socket error (also used by the server's fault knobs)."""
        self.ended = True
        return Reply(
            messages=[error_message(text, code)],
            close=True,
            close_code=CLOSE_POLICY if code < 500 else CLOSE_INTERNAL,
            # A close reason must fit in 123 bytes of UTF-8; cut on a character boundary.
            close_reason=text.encode()[:120].decode(errors="ignore"),
            outcome="error",
        )

    # --- config ---

    def _configure(self, config: object) -> Reply:
        if not isinstance(config, dict):
            return self.error("config must be a JSON object")
        problem = request_problem(config, self._catalog)
        if problem:
            return self.error(problem)
        model = config["model"]
        sample_rate = config.get("sample_rate")
        if not isinstance(sample_rate, int) or isinstance(sample_rate, bool):
            return self.error("sample_rate is required and must be an integer")
        if sample_rate < MIN_SAMPLE_RATE:
            return self.error(f"sample_rate must be at least {MIN_SAMPLE_RATE}")
        endpoint = config.get("endpoint_silence_duration")
        if endpoint is not None and not _is_number(endpoint):
            return self.error("endpoint_silence_duration must be a number of seconds")
        problem = hotwords_problem(config.get("hotwords"))
        if problem:
            return self.error(problem)

        self.config = dict(config)
        self._language = self._catalog.get(model).primary_language
        self._partials = self._options.partials and not config.get("exclude_partial")
        self._lid = bool(config.get("at_start_lid"))
        self._aux = bool(config.get("aux"))
        self._segmenter = EnergySegmenter(
            sample_rate,
            endpoint_silence_duration=endpoint,
            threshold_dbfs=self._options.threshold_dbfs,
        )
        return Reply()

    # --- results ---

    def _open(self, event: SegmentOpened) -> None:
        text = segment_text(self._options, event.index)
        self._segment = _Segment(event.index, event.start_time, text.split())

    def _partial(self, event: SegmentProgress) -> Message:
        segment = self._segment
        assert segment is not None and segment.index == event.index
        first = segment.partials_sent == 0
        segment.partials_sent += 1
        if first and self._options.empty_partials:
            return self._result(segment, "partial", [], [], eos=False)
        shown = min(
            len(segment.words),
            max(1, int(event.speech_seconds / self._options.seconds_per_word + 1e-9)),
        )
        words = segment.words[:shown]
        if self._options.revise and not segment.revised and words:
            # The next partial or the complete shows the right word again.
            words = [*words[:-1], _mangle(words[-1])]
            segment.revised = True
        return self._result(
            segment, "partial", words, _spread(len(words), event.speech_seconds), eos=False
        )

    def _complete(self, event: SegmentComplete, *, eos: bool) -> Message:
        segment = self._segment
        assert segment is not None and segment.index == event.index
        self._segment = None
        words = segment.words
        return self._result(
            segment, "complete", words, _spread(len(words), event.duration), eos=eos
        )

    def _finish(self) -> Reply:
        assert self._segmenter is not None
        self.ended = True
        messages = [
            self._complete(event, eos=False)
            for event in self._segmenter.finish()
            if isinstance(event, SegmentComplete)
        ]
        if messages and self._options.final == "last-complete":
            messages[-1]["eos"] = True
        else:
            messages.append(self._eos_message())
        return Reply(
            messages=messages,
            close=True,
            close_code=CLOSE_NORMAL,
            close_reason="eos",
            outcome="eos",
            answers_eof=True,
        )

    def _eos_message(self) -> Message:
        assert self._segmenter is not None
        # The next segment id, at the end of the received audio: an empty segment of its own.
        empty = _Segment(self._segmenter.segment_count, self._segmenter.received_seconds, [])
        return self._result(empty, "complete", [], [], eos=True)

    def _result(
        self,
        segment: _Segment,
        kind: str,
        words: list[str],
        timestamps: list[float],
        *,
        eos: bool,
    ) -> Message:
        confidence = None if self._language in NO_CONFIDENCE_LANGUAGES else CONFIDENCE
        scripted = self._options.confidences
        if segment.index < len(scripted):
            confidence = scripted[segment.index]
        message: Message = {
            "call_id": self.call_id,
            "segment_id": segment.index,
            "eos": eos,
            "type": kind,
            "text": " ".join(words),
            "segment_meta": {
                "tokens": list(words),
                "timestamps": timestamps,
                "start_time": round(segment.start_time, 3),
                "confidence": confidence,
                "words": (
                    [{"word": word, "confidence": confidence} for word in words]
                    if kind == "complete"
                    else []
                ),
            },
        }
        if self._lid:
            message["language_code"] = self._language
        if self._aux:
            assert self._segmenter is not None
            endpoint = clamp_endpoint(self._config_endpoint())
            message["aux_info"] = {
                "request_time": round(self._clock() - self._started, 3),
                "eot_wait_time": endpoint if kind == "complete" and words else 0.0,
                "processed_audio_duration": round(self._segmenter.received_seconds, 3),
            }
        return message

    def _config_endpoint(self) -> float | None:
        assert self.config is not None
        value = self.config.get("endpoint_silence_duration")
        return float(value) if isinstance(value, int | float) else None


def _spread(count: int, seconds: float) -> list[float]:
    """Word end times relative to the segment start, evenly over ``seconds``."""
    return [round((i + 1) * seconds / count, 2) for i in range(count)]


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def request_problem(request: Mapping[str, Any], catalog: Catalog) -> str | None:
    """What is wrong with the model or transaction id of a config or a non-streaming
    request's form, if anything."""
    model = request.get("model")
    if not isinstance(model, str) or model not in catalog:
        shown = model if isinstance(model, str) else ("" if model is None else repr(model))
        return f"model '{shown}' is not available"
    transaction_id = request.get("transaction_id")
    if not isinstance(transaction_id, str) or not is_uuid(transaction_id):
        return "transaction_id must be a valid UUID"
    return None


def hotwords_problem(hotwords: object) -> str | None:
    if hotwords is None:
        return None
    shape = 'hotwords must be a list of {"phrase": str, "score"?: number}'
    if not isinstance(hotwords, list):
        return shape
    for item in hotwords:
        if not isinstance(item, dict) or not isinstance(item.get("phrase"), str):
            return shape
        # The vendor SDK leaves out a missing score rather than sending null.
        if "score" in item and not _is_number(item["score"]):
            return shape
    return None
