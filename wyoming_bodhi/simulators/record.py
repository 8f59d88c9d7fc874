"""What crossed the wire on one connection, for tests to assert on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

# Why a connection ended.
ENDED_EOS = "eos"  # final results sent after eof, then a normal close
ENDED_ERROR = "error"  # an in-socket error message, then a close
ENDED_IDLE = "idle"  # no client message for idle_timeout
ENDED_CLIENT_CLOSED = "client-closed"  # the client closed (or vanished) first
ENDED_DROPPED = "dropped"  # drop_after_frames: the server cut the TCP connection
ENDED_REFUSED = "refused"  # the handshake was answered with an HTTP error
ENDED_SERVER_STOPPED = "server-stopped"  # the simulator was stopped
ENDED_ANSWERED = "answered"  # a request to the non-streaming API was answered (see http_status)


@dataclass(frozen=True, slots=True)
class FrameRecord:
    size: int
    """Bytes in the binary frame."""
    at: float
    """``time.monotonic()`` at arrival."""


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """The file posted to the non-streaming API as ``audio_file``."""

    size: int
    """Bytes of the file, header included."""
    filename: str | None
    content_type: str | None
    format: str | None
    """What its WAV header says (``16-bit PCM, 8000 Hz, mono``); None if it is no WAV file."""
    seconds: float | None
    """Length of its audio, when it is a WAV file."""


@dataclass(slots=True, eq=False, repr=False)
class ConnectionRecord:
    """One handshake and, if accepted, its WebSocket session; or one request to the
    non-streaming API (``method`` POST), its form and file.

    Header *values* are kept in memory for assertions but never logged (see ``__repr__``).
    """

    index: int
    path: str
    started_at: float
    method: str = "GET"
    """GET for a WebSocket handshake, POST for a request to the non-streaming API."""
    auth_headers: tuple[str, ...] = ()
    """Names (lower case) of the authentication headers present: ``x-api-key``,
    ``authorization``, ``x-customer-id``."""
    api_key: str | None = None
    """The key the client presented (from ``x-api-key`` or ``Authorization: Bearer``)."""
    auth_scheme: str | None = None
    """``"x-api-key"``, ``"bearer"``, ``"both"`` or None."""
    customer_id: str | None = None
    http_status: int | None = None
    """101 once upgraded; otherwise the refusal status."""
    call_id: str | None = None
    config: dict[str, Any] | None = None
    frames: list[FrameRecord] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray, repr=False)
    """The received PCM, when the simulator was told to ``record_audio``."""
    form: dict[str, str] | None = None
    """The non-streaming API's text fields as they came (the file is in ``upload``)."""
    upload: UploadRecord | None = None
    texts_received: list[str] = field(default_factory=list)
    """Every text frame from the client, raw, in order."""
    eof_received: bool = False
    eof_message: str | None = None
    sent: list[dict[str, Any] | str] = field(default_factory=list)
    """Every message sent: dicts for JSON, str for raw (non-JSON) text frames."""
    ended: str | None = None
    """One of the ``ENDED_*`` values."""
    close_code: int | None = None
    close_reason: str | None = None
    ended_at: float | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the connection is over, whatever the outcome."""

    def __repr__(self) -> str:
        # A summary: the full lists drown test failure output, and header values are secret.
        return (
            f"ConnectionRecord(index={self.index}, {self.method} {self.path!r}, "
            f"http_status={self.http_status}, auth_headers={self.auth_headers}, "
            f"frames={len(self.frames)}, audio_bytes={self.audio_bytes}, "
            f"eof_received={self.eof_received}, sent={len(self.sent)}, ended={self.ended!r}, "
            f"close_code={self.close_code}, close_reason={self.close_reason!r})"
        )

    @property
    def audio_bytes(self) -> int:
        return sum(frame.size for frame in self.frames)

    @property
    def results(self) -> list[dict[str, Any]]:
        """Result messages sent (partials and completes), in order."""
        return [m for m in self.sent if isinstance(m, dict) and "type" in m]

    @property
    def partials(self) -> list[dict[str, Any]]:
        return [m for m in self.results if m["type"] == "partial"]

    @property
    def completes(self) -> list[dict[str, Any]]:
        return [m for m in self.results if m["type"] == "complete"]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if isinstance(m, dict) and m.get("error")]

    def end(self, how: str, at: float, code: int | None = None, reason: str | None = None) -> None:
        """Record the first way the connection ended; later ones are consequences of it.

        ``closed`` is set separately, by the server, once the socket is really gone.
        """
        if self.ended is None:
            self.ended = how
            self.close_code = code
            self.close_reason = reason
            self.ended_at = at
