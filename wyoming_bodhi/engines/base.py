"""The engine interface: what a streaming speech-to-text service provides to be served here.

An engine *declares* what it needs and what it can do — its audio format and framing
(:class:`AudioSpec`), its capabilities (:class:`Capabilities`), its models — and *opens
sessions*. A session takes audio frames and the end of the audio, and yields
:class:`Phrase`\\ s: partial, complete, and the end. Everything else is the pipeline's and is
the same for every engine: conversion to the engine's format, framing and pacing, buffering,
keepalive timing, retries with replay, transcript events, endpointing, limits and shutdown.

Modelled on LiveKit Agents' ``stt.STT`` / ``SpeechStream`` (push frames, end the input, iterate
interim and final results) and Pipecat's one-module-per-vendor services; the protocol logic of
each engine stays sans-I/O in its own ``protocol.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

from ..text import quoted

SAMPLE_WIDTH = 2
"""Every engine here takes signed 16-bit little-endian mono PCM."""


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """The audio an engine's socket takes: s16le mono at ``rate``, in paced frames."""

    rate: int
    """Samples per second (Bodhi 8000, iApp 16000)."""
    frame_ms: tuple[int, int]
    """The frame lengths it accepts, in milliseconds, inclusive."""
    realtime: bool = True
    """Audio must be paced at the speed of speech (ahead only by the configured lead)."""
    keepalive_after: float | None = None
    """The engine closes a silent session: after this many seconds without audio, the
    pipeline sends silence (and then every ``keepalive_interval``). None: no keepalive."""
    keepalive_interval: float = 5.0
    keepalive_flush: float = 0.0
    """Seconds of silence sent first, to let the engine finish the phrase it holds."""

    @property
    def bytes_per_second(self) -> int:
        return self.rate * SAMPLE_WIDTH

    def frame_bytes(self, frame_ms: int) -> int:
        return frame_ms * self.bytes_per_second // 1000


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine can do; settings and routing consult it instead of assuming."""

    hotwords: bool = False
    """Takes phrases to bias recognition towards."""
    ends_phrases: bool = False
    """Completes a phrase by itself on trailing silence, so it can end a command
    (``--endpointing``)."""
    language_id: bool = False
    partials: bool = False
    """Sends interim results."""
    confidence: bool = False


@dataclass(frozen=True, slots=True)
class Hotword:
    """A phrase to bias recognition towards; ``score`` left out means the engine's default."""

    phrase: str
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Model:
    """One model an engine offers, as Home Assistant and routing see it."""

    name: str
    engine: str
    """The engine's name (``bodhi``, ``iapp``)."""
    languages: tuple[str, ...]
    """Wyoming language tags: the plain code and the country form (``hi``, ``hi-IN``)."""
    description: str
    version: str


class UnknownModelError(ValueError):
    """A model name no configured engine has; the message lists the valid ones."""


class PhraseKind(StrEnum):
    PARTIAL = "partial"
    """Text so far of the open phrase; may still be revised."""
    COMPLETE = "complete"
    """A finished phrase: final text."""
    END = "end"
    """The engine has finished: nothing follows."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """One result from an engine, in the pipeline's terms."""

    kind: PhraseKind
    text: str = ""
    segment: int | str | None = None
    """Which phrase of the session this is (partials and their complete share it)."""
    language: str | None = None
    """The spoken language, when the engine identifies it."""
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """What the pipeline asks an engine for, for one utterance."""

    model: Model
    language: str
    """The language to report on the transcript: the client's tag, else the model's."""
    hotwords: tuple[Hotword, ...] = ()
    endpoint_silence: float | None = None
    """Trailing silence that completes a phrase, for engines that take it."""
    partials: bool = False
    """Whether partials are wanted (they cost traffic when nobody reads them)."""


class EngineError(Exception):
    """A session with an engine failed. ``code`` is the Wyoming error code (``bodhi-401``),
    ``kind`` what went wrong whatever the engine, ``retryable`` whether trying the same
    request again can help; ``message`` says what to do, and never holds a credential."""

    code: str = "engine-error"
    kind: str = "error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        kind: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Subclasses set these per class; an engine without its own classes sets them here.
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


# Kinds of failure, whatever the engine.
REFUSED = "refused"
"""The handshake was refused with an HTTP status."""
UNREACHABLE = "unreachable"
TLS = "tls"
TIMEOUT = "timeout"
CONNECTION_LOST = "connection-lost"
"""The connection closed before the engine ended the session."""
PROTOCOL = "protocol"
REJECTED = "rejected"
"""The engine refused the request in the session (a bad config, say)."""


MAX_STATUS_DIGITS = 4
"""A status an engine reports is an HTTP status or a WebSocket close code: four digits."""


def status_code(value: object) -> int | str | None:
    """The status code an engine sent in a message or reply, read strictly: an integer, or a
    string of ASCII digits, of at most :data:`MAX_STATUS_DIGITS` digits. None when none was
    sent; anything else (``"²"``, a thousand digits, a list) is returned quoted and short, to
    be named in a message and never used as a code."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < 10**MAX_STATUS_DIGITS:
            return value
    elif isinstance(value, str):
        digits = value.strip()
        # str.isdigit() also takes "²" and "٤", which int() then refuses or misreads.
        if 0 < len(digits) <= MAX_STATUS_DIGITS and digits.isascii() and digits.isdigit():
            return int(digits)
    return quoted(value, 16)


def engine_code(engine: str, status: int | str | None, known: Collection[int]) -> str:
    """The Wyoming error code for a status an engine gave: ``<engine>-<status>`` for the
    statuses it is known to give, ``<engine>-error`` for any other (the caller names it in
    the message). Codes are a closed set whatever an engine sends: they are label values in
    ``/metrics`` and keys of the status page's counts."""
    if isinstance(status, int) and status in known:
        return f"{engine}-{status}"
    return f"{engine}-error"


def retryable_code(status: int | str | None) -> bool:
    """:func:`retryable_status` for a status an engine reported, which may be no HTTP status
    at all (a close code, something unreadable): only an HTTP status may pass."""
    return isinstance(status, int) and 100 <= status < 600 and retryable_status(status)


MIN_REDACTED_LENGTH = 4
"""Shorter "secrets" are not worth mangling every message for."""


def redact(error: EngineError, secrets: Iterable[str | None]) -> EngineError:
    """``error`` with every credential blanked out of its message, should a server have
    echoed one back in what it said (our own messages never hold one)."""
    for secret in secrets:
        if secret and len(secret) >= MIN_REDACTED_LENGTH and secret in error.message:
            error.message = error.message.replace(secret, "…")
            error.args = (error.message,)
    return error


def fingerprint(secret: str) -> str:
    """Enough of a key to tell two apart in a log, not enough to use one: ``…1234``."""
    return f"…{secret[-4:]}" if len(secret) >= 12 else "…"


def retryable_status(status: int) -> bool:
    """The one rule for an HTTP status refusing a connection: the server's trouble (5xx) and
    "try later" (408 timeout, 429 too many requests) may pass; any other 4xx will not change
    on a retry."""
    return status >= 500 or status in (408, 429)


class Session(Protocol):
    """One streaming session: frames in, phrases out. An async context manager that closes."""

    skipped_messages: int
    """Messages from the engine that were not results, skipped."""

    async def send_audio(self, frame: bytes) -> None:
        """One frame of the engine's audio; raises :class:`EngineError`."""

    async def send_end(self) -> None:
        """The audio has ended: the engine finishes and ends the session."""

    def phrases(self) -> AsyncIterator[Phrase]:
        """Every result, up to and including the END one; raises :class:`EngineError`."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Engine(Protocol):
    """A configured engine: its declarations, its models, and how to open a session."""

    name: str
    """Short and lower case: the prefix of its error codes (``bodhi``, ``iapp``)."""
    title: str
    """For people: ``Bodhi``, ``iApp ASRx``."""
    vendor: str
    vendor_url: str
    url: str
    audio: AudioSpec
    capabilities: Capabilities
    models: Sequence[Model]

    def model_for_language(self, tag: str) -> Model | None:
        """This engine's model for a language tag, or None if it has none."""

    async def connect(self, request: Request, *, timeout: float) -> Session:
        """Open a session; ``timeout`` bounds everything up to the first audio frame. Raises
        :class:`EngineError`."""
        ...

    def describe_credentials(self) -> str:
        """For the start-up log: which credentials are set, never what they are."""
        ...


__all__ = [
    "CONNECTION_LOST",
    "PROTOCOL",
    "REFUSED",
    "REJECTED",
    "SAMPLE_WIDTH",
    "TIMEOUT",
    "TLS",
    "UNREACHABLE",
    "AudioSpec",
    "Capabilities",
    "Engine",
    "EngineError",
    "Hotword",
    "Model",
    "Phrase",
    "PhraseKind",
    "Request",
    "Session",
    "UnknownModelError",
    "engine_code",
    "fingerprint",
    "quoted",
    "redact",
    "retryable_code",
    "retryable_status",
    "status_code",
]
