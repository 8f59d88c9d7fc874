"""What a client sends, checked before the state machine acts on it: a field of the wrong
type, too long, or not valid Unicode is the client's mistake (:class:`ProtocolError`, a
``protocol`` error for its request), never a crash further on."""

from __future__ import annotations

from typing import Any, Final

from wyoming.asr import Transcribe
from wyoming.event import Event

from ..text import has_lone_surrogate

TRANSCRIBE_BEFORE_1_4: Final = "transcibe"
"""How the ``wyoming`` library spelled ``transcribe`` before 1.4; clients built on 1.0–1.3
still send it."""
REQUEST_EVENTS: Final = frozenset(
    {"transcribe", TRANSCRIBE_BEFORE_1_4, "audio-start", "audio-chunk", "audio-stop"}
)
"""The events of a request (as opposed to ``describe``, ``ping`` and types unknown here)."""

MAX_NAME_CHARS: Final = 200
MAX_LANGUAGE_CHARS: Final = 64


class ProtocolError(ValueError):
    """The client sent an event this protocol does not allow; its request gets an error."""


def is_transcribe(event_type: str) -> bool:
    return Transcribe.is_type(event_type) or event_type == TRANSCRIBE_BEFORE_1_4


def client_name(peer: Any) -> str:
    """A client's address as people write it: ``192.0.2.7:51234``, ``[::1]:51234``."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer) if peer else "local"


def _text(data: dict[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ProtocolError(f"{key} is longer than {limit} characters")
    if has_lone_surrogate(value):
        raise ProtocolError(f"{key} is not valid Unicode")
    return value


def _names(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        # One name, not one name per character.
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"{key} must be a list of strings")
    if any(has_lone_surrogate(item) for item in value):
        raise ProtocolError(f"{key} is not valid Unicode")
    return value


def transcribe_from(event: Event) -> Transcribe:
    """``Transcribe.from_event``, but every field is checked: a wrong type is the client's
    mistake (a ``protocol`` error), not a crash further on."""
    data = event.data or {}
    context = data.get("context")
    if context is not None and not isinstance(context, dict):
        raise ProtocolError(f"context must be an object, not {type(context).__name__}")
    return Transcribe(
        name=_text(data, "name", MAX_NAME_CHARS),
        language=_text(data, "language", MAX_LANGUAGE_CHARS),
        context=context,
        vad_sensitivity=_text(data, "vad_sensitivity", MAX_LANGUAGE_CHARS),
        transcript_names=_names(data, "transcript_names"),
        transcript_terms=_names(data, "transcript_terms"),
    )


__all__ = [
    "MAX_LANGUAGE_CHARS",
    "MAX_NAME_CHARS",
    "REQUEST_EVENTS",
    "TRANSCRIBE_BEFORE_1_4",
    "ProtocolError",
    "client_name",
    "is_transcribe",
    "transcribe_from",
]
