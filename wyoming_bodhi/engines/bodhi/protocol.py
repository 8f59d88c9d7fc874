"""Bodhi's protocols as plain data: messages in, messages out, no sockets.

The streaming protocol, and at the end the non-streaming API's request and reply (one WAV
file, one transcript). The shapes follow docs/protocol.md. Parsing is tolerant
where the vendor is vague (unknown keys, missing optional keys, ``segment_id`` as int or
string) and strict where a message could not mean anything (not JSON, not an object, no
text, unknown type).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from ...text import printable, quoted, valid_unicode
from ..base import Hotword, Phrase, PhraseKind, status_code
from .errors import BodhiError, BodhiProtocolError, error_for_reply, error_for_server_message

EOF_MESSAGE: Final = '{"eof": 1}'
"""Sent as a text frame once the last audio frame has gone."""

SAMPLE_RATE: Final = 8000
"""Bodhi's models are built for 8 kHz telephone audio; everything is converted to it."""


def hotword_dict(hotword: Hotword) -> dict[str, Any]:
    # The vendor omits a missing score rather than sending null.
    if hotword.score is None:
        return {"phrase": hotword.phrase}
    return {"phrase": hotword.phrase, "score": hotword.score}


def new_transaction_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class BodhiConfig:
    """The one ``{"config": {...}}`` message a session starts with.

    Optional fields left as ``None`` (or an empty hotword list) are left out of the message,
    so the server applies its own defaults.
    """

    model: str
    transaction_id: str = field(default_factory=new_transaction_id)
    sample_rate: int = SAMPLE_RATE
    parse_number: bool | None = None
    hotwords: tuple[Hotword, ...] = ()
    exclude_partial: bool | None = None
    aux: bool | None = None
    endpoint_silence_duration: float | None = None
    at_start_lid: bool | None = None
    transliterate: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "model": self.model,
            "transaction_id": self.transaction_id,
            "sample_rate": self.sample_rate,
        }
        for name in (
            "parse_number",
            "exclude_partial",
            "aux",
            "endpoint_silence_duration",
            "at_start_lid",
            "transliterate",
        ):
            value = getattr(self, name)
            if value is not None:
                config[name] = value
        if self.hotwords:
            config["hotwords"] = [hotword_dict(hotword) for hotword in self.hotwords]
        return config

    def message(self) -> str:
        return json.dumps({"config": self.to_dict()}, ensure_ascii=False)


class ResultType(StrEnum):
    PARTIAL = "partial"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class SegmentMeta:
    tokens: tuple[str, ...] = ()
    timestamps: tuple[float, ...] = ()
    """Seconds, aligned index by index with ``tokens``."""
    start_time: float | None = None
    """Start of the segment in the whole stream, in seconds."""
    confidence: float | None = None
    """0–1; absent or null for some languages (Telugu, Odia, English)."""
    words: tuple[Word, ...] = ()
    """Filled only on ``complete`` results."""


@dataclass(frozen=True, slots=True)
class BodhiResult:
    """One recognition result: a ``partial`` or the ``complete`` of a segment.

    ``text`` is cumulative within the segment and a later partial may revise it; the
    ``complete`` is authoritative. ``eos`` marks the last message of the session.
    """

    type: ResultType
    text: str
    segment_id: int | str | None = None
    eos: bool = False
    call_id: str | None = None
    segment_meta: SegmentMeta = SegmentMeta()
    language_code: str | None = None
    aux_info: dict[str, Any] | None = None

    @property
    def is_complete(self) -> bool:
        return self.type is ResultType.COMPLETE


@dataclass(frozen=True, slots=True)
class BodhiErrorMessage:
    """An in-socket ``{"error": ..., "code": ...}``: fatal for the session."""

    error: str
    code: int | str | None = None
    """As :func:`~..base.status_code` reads it: None when there was none."""
    message: str | None = None

    @property
    def detail(self) -> str:
        """What the server said, for a message."""
        if self.message and self.message.lower() != self.error.lower():
            return f"{self.error}: {self.message}"
        return self.error

    def to_exception(self) -> BodhiError:
        return error_for_server_message(self.code, self.detail)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BodhiErrorMessage:
        """From a message (or reply) whose ``error`` is truthy; the texts made printable."""
        message = data.get("message")
        return cls(
            error=_said(data.get("error")),
            code=status_code(data.get("code")),
            message=_said(message) if message else None,
        )


def _said(value: Any) -> str:
    """Text the server sent, or whatever it sent in its place, fit for a message."""
    return printable(value) if isinstance(value, str) else quoted(value, 200)


BodhiMessage = BodhiResult | BodhiErrorMessage


_SHOWN = 120
"""Characters of a message that is not understood, shown in the error (and the log)."""


def _fail(reason: str, text: str | bytes, what: str = "message") -> BodhiProtocolError:
    shown = text if isinstance(text, str) else text[: _SHOWN * 2].decode("utf-8", "replace")
    if len(shown) < len(text):
        # The cut is marked, as every cut is: redaction blanks what a cut left of a key
        # beside its mark (a piece with no mark beside it is blanked only from 8 characters).
        shown += "…"
    unit = "characters" if isinstance(text, str) else "bytes"
    return BodhiProtocolError(
        f"unexpected {what} from Bodhi ({reason}, {len(text)} {unit}): {quoted(shown, _SHOWN)}"
    )


def _optional_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _parse_segment_meta(raw: Any) -> SegmentMeta:
    if not isinstance(raw, dict):
        return SegmentMeta()
    tokens = raw.get("tokens")
    timestamps = raw.get("timestamps")
    words = raw.get("words")
    return SegmentMeta(
        tokens=tuple(str(t) for t in tokens) if isinstance(tokens, list) else (),
        timestamps=(
            tuple(f for f in map(_optional_float, timestamps) if f is not None)
            if isinstance(timestamps, list)
            else ()
        ),
        start_time=_optional_float(raw.get("start_time")),
        confidence=_optional_float(raw.get("confidence")),
        words=(
            tuple(
                Word(str(w.get("word", "")), _optional_float(w.get("confidence")))
                for w in words
                if isinstance(w, dict)
            )
            if isinstance(words, list)
            else ()
        ),
    )


MAX_SEGMENT_ID_CHARS = 64
"""Segment ids are small numbers; a longer string id is cut to this (it only tells phrases
apart, and the ids of an utterance's phrases are kept until it ends)."""


def _segment_id(value: Any) -> int | str | None:
    """An int or a string; digits (ASCII only: ``"²".isdigit()`` is true too) as the int."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= MAX_SEGMENT_ID_CHARS:
            return int(value)
        return valid_unicode(value[:MAX_SEGMENT_ID_CHARS])
    return value


def parse_message(text: str | bytes) -> BodhiMessage:
    """Parse one text frame from Bodhi.

    Raises :class:`BodhiProtocolError` for anything that is neither a result nor an error.
    """
    try:
        data = json.loads(text)
    except ValueError:
        raise _fail("not JSON", text) from None
    except RecursionError:
        # Valid JSON nested deeper than the parser's stack: never a result.
        raise _fail("nested too deeply", text) from None
    if not isinstance(data, dict):
        raise _fail("not a JSON object", text)

    if data.get("error"):
        return BodhiErrorMessage.from_dict(data)

    eos = data.get("eos") is True or data.get("eos") in (1, "true", "1")
    raw_type = data.get("type")
    if raw_type is None and eos:
        # A bare end-of-stream marker: tolerated, it carries no text.
        raw_type = ResultType.COMPLETE.value
    try:
        result_type = ResultType(str(raw_type))
    except ValueError:
        raise _fail(f"unknown result type {quoted(raw_type, 40)}", text) from None

    result_text = data.get("text")
    if result_text is None and (eos or "text" in data):
        # An end-of-stream marker may carry no text, and a null text is an empty one.
        result_text = ""
    if not isinstance(result_text, str):
        raise _fail("result without text", text)

    segment_id = _segment_id(data.get("segment_id"))

    call_id = data.get("call_id")
    language_code = data.get("language_code")
    aux_info = data.get("aux_info")
    return BodhiResult(
        type=result_type,
        text=valid_unicode(result_text),
        segment_id=segment_id,
        eos=eos,
        call_id=call_id if isinstance(call_id, str) else None,
        segment_meta=_parse_segment_meta(data.get("segment_meta")),
        language_code=valid_unicode(language_code) if isinstance(language_code, str) else None,
        aux_info=aux_info if isinstance(aux_info, dict) else None,
    )


def phrases_of(result: BodhiResult) -> list[Phrase]:
    """A result in the pipeline's terms: a partial or a complete, then END at end of stream.

    The last complete may carry ``eos`` itself, or a separate empty result may; either way the
    phrase comes before the END.
    """
    kind = PhraseKind.COMPLETE if result.is_complete else PhraseKind.PARTIAL
    phrase = Phrase(
        kind,
        result.text,
        result.segment_id,
        result.language_code,
        result.segment_meta.confidence,
    )
    return (
        [phrase, Phrase(PhraseKind.END, language=result.language_code)] if result.eos else [phrase]
    )


# -- the non-streaming API: one WAV file, one transcript ----------------------------------
#
# ``POST <host>/api/transcribe``, multipart/form-data. This shape comes from public material
# outside the vendor documents we hold, and has not been checked against the live service.

TRANSCRIBE_PATH: Final = "/api/transcribe"
_HTTP_SCHEMES: Final = {"wss": "https", "ws": "http"}


def transcribe_url(streaming_url: str) -> str:
    """The non-streaming endpoint on the streaming endpoint's host: ``wss://bodhi.navana.ai``
    → ``https://bodhi.navana.ai/api/transcribe``, ``ws://`` → ``http://``. A path (a proxy's
    prefix) and a query are kept: ``wss://proxy/bodhi`` → ``https://proxy/bodhi/api/transcribe``."""
    parts = urlsplit(streaming_url)
    scheme = _HTTP_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"not a ws:// or wss:// URL: {streaming_url!r}")
    path = parts.path.rstrip("/") + TRANSCRIBE_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class TranscribeRequest:
    """The form fields of one request, all but the audio file. As in a streaming config,
    options left as ``None`` (or no hotwords) are left out, for the server's defaults."""

    model: str
    transaction_id: str = field(default_factory=new_transaction_id)
    parse_number: bool | None = None
    hotwords: tuple[Hotword, ...] = ()
    aux: bool | None = None

    def fields(self) -> dict[str, str]:
        """Form fields are text: booleans as ``true``/``false``, hotwords as a JSON string."""
        fields = {"transaction_id": self.transaction_id, "model": self.model}
        for name in ("parse_number", "aux"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = "true" if value else "false"
        if self.hotwords:
            fields["hotwords"] = json.dumps(
                [hotword_dict(hotword) for hotword in self.hotwords], ensure_ascii=False
            )
        return fields


@dataclass(frozen=True, slots=True)
class Transcription:
    """A successful reply: ``{"text": ..., "call_id": ..., "status": "success"}``."""

    text: str
    call_id: str | None = None


def parse_transcription(status: int, body: bytes) -> Transcription:
    """The reply to a request, from its HTTP status and body.

    Raises the status's :class:`BodhiError` for a failure (an HTTP error status, or
    ``"status": "error"``), with what the reply's ``error`` and ``message`` said, and
    :class:`BodhiProtocolError` for a success that is not the documented shape.
    """
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if not 200 <= status < 300:
        raise error_for_reply(status, _failure_detail(data))
    if isinstance(data, dict) and data.get("status") == "error":
        # A failure under a success status: its own code if that is an HTTP error status.
        code = status_code(data.get("code"))
        if isinstance(code, int) and 400 <= code < 600:
            raise error_for_reply(code, _failure_detail(data))
        raise error_for_server_message(code, _failure_detail(data) or "no reason given")
    if data is None:
        raise _fail("not JSON", body, "reply")
    if not isinstance(data, dict):
        raise _fail("not a JSON object", body, "reply")
    text = data.get("text")
    if not isinstance(text, str):
        raise _fail("no text", body, "reply")
    if data.get("status", "success") != "success":
        raise _fail(f"status {quoted(data['status'], 40)}", body, "reply")
    call_id = data.get("call_id")
    return Transcription(valid_unicode(text), call_id if isinstance(call_id, str) else None)


def _failure_detail(data: Any) -> str | None:
    """What a failure reply says (its ``error`` and ``message``), if it says anything."""
    if not isinstance(data, dict):
        return None
    said = data.get("error") or data.get("message")
    return BodhiErrorMessage.from_dict({**data, "error": said}).detail if said else None
