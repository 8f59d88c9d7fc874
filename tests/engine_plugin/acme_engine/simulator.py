"""Step 4: Acme's simulator, on the shared server shell: the handshake's key, phrases found by
loudness, each answered with a scripted text or one that says where it comes from."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from wyoming_bodhi.simulators.messages import (
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    Message,
    Reply,
    SimulatedSession,
)
from wyoming_bodhi.simulators.options import SimulatorOptions
from wyoming_bodhi.simulators.record import ConnectionRecord
from wyoming_bodhi.simulators.segmenter import (
    EnergySegmenter,
    SegmentComplete,
    SegmentOpened,
    SegmentProgress,
)
from wyoming_bodhi.simulators.server import SimulatorServer

from .protocol import SAMPLE_RATE
from .settings import AcmeSettings

PHRASE_PAUSE = 0.5
"""Seconds of received silence that end a phrase."""


def default_text(index: int) -> str:
    return f"simulated Swahili phrase {index + 1} from the Acme simulator"


class AcmeSession:
    """One connection's protocol state, sans I/O."""

    call_id = None
    config: dict[str, Any] | None = None

    def __init__(self, options: SimulatorOptions) -> None:
        self._options = options
        self._segmenter = EnergySegmenter(SAMPLE_RATE, PHRASE_PAUSE, options.threshold_dbfs)
        self._words: list[str] = []
        self._shown = 0
        self._phrase = -1
        self.eof_received = False
        self.eof_message: str | None = None
        self.ended = False

    def on_text(self, text: str) -> Reply:
        if self.ended:
            return Reply()
        try:
            message = json.loads(text)
        except ValueError:
            return self.error("not JSON")
        if not isinstance(message, dict) or message.get("type") != "end":
            return self.error('expected {"type": "end"}')
        self.eof_received = True
        self.eof_message = text
        self.ended = True
        messages: list[Message] = []
        for event in self._segmenter.finish():
            if isinstance(event, SegmentComplete):
                messages.append(self._final())
        messages.append({"type": "done"})
        return Reply(messages, close=True, close_code=CLOSE_NORMAL, outcome="eos",
                     answers_eof=True)  # fmt: skip

    def on_binary(self, data: bytes) -> Reply:
        if self.ended:
            return Reply()
        reply = Reply()
        for event in self._segmenter.feed(data):
            if isinstance(event, SegmentOpened):
                texts = self._options.texts
                text = texts[event.index] if event.index < len(texts) else default_text(event.index)
                self._phrase, self._words, self._shown = event.index, text.split(), 0
            elif isinstance(event, SegmentProgress) and self._options.partials:
                per_word = self._options.seconds_per_word
                shown = min(len(self._words), max(1, math.ceil(event.speech_seconds / per_word)))
                if shown > self._shown:
                    self._shown = shown
                    reply.messages.append(self._result("partial", self._words[:shown]))
            elif isinstance(event, SegmentComplete):
                reply.messages.append(self._final())
        return reply

    def error(self, text: str, code: int = 400) -> Reply:
        self.ended = True
        return Reply(
            messages=[{"type": "error", "status": code, "message": text}],
            close=True,
            close_code=CLOSE_POLICY if code < 500 else CLOSE_INTERNAL,
            close_reason=text.encode()[:120].decode(errors="ignore"),
            outcome="error",
        )

    def _final(self) -> Message:
        return self._result("final", self._words)

    def _result(self, kind: str, words: list[str]) -> Message:
        return {"type": kind, "phrase": self._phrase, "text": " ".join(words)}


class AcmeSimulator(SimulatorServer):
    """An Acme server: ``Authorization: Key …``, raw 16 kHz audio, phrases, done."""

    vendor = "Acme"

    def new_session(self) -> SimulatedSession:
        return AcmeSession(self.options)

    def authenticate(
        self, request: web.Request, record: ConnectionRecord
    ) -> tuple[int, str] | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        record.auth_headers = ("authorization",) if "authorization" in request.headers else ()
        # What was presented, kept for the tests; never logged.
        record.api_key = key.strip() or None
        record.auth_scheme = "key" if record.api_key else None
        if scheme != "Key" or not record.api_key:
            return 401, "missing key"
        if self.options.api_key is not None and record.api_key != self.options.api_key:
            return 401, "invalid key"
        return None


def simulate(settings: AcmeSettings, *, history: int = 1000, **options: Any) -> AcmeSimulator:
    """Acme for ``--demo`` and tests; ``options`` are ``SimulatorOptions``' knobs."""
    return AcmeSimulator(SimulatorOptions(history=history, **options))
