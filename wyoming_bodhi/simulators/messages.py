"""What a simulator's sans-I/O session answers with, whatever the vendor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]

# WebSocket close codes. The vendors document none; these are the standard meanings, and a
# client must not rely on them (a 1000 close before the end is still a failure for Bodhi).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011


@dataclass(slots=True)
class Reply:
    """What the server must do after one client frame."""

    messages: list[Message] = field(default_factory=list)
    close: bool = False
    close_code: int | None = None
    close_reason: str = ""
    outcome: str | None = None
    """Why the session ended: ``"eos"`` or ``"error"``; None while it goes on."""
    answers_eof: bool = False
    """These are the final results for the end of the audio (the server may delay or
    withhold them)."""


class SimulatedSession(Protocol):
    """One connection's protocol state (a vendor's session), as the server shell drives it."""

    @property
    def call_id(self) -> str | None: ...

    config: dict[str, Any] | None
    eof_received: bool
    eof_message: str | None
    ended: bool

    def on_text(self, text: str) -> Reply: ...

    def on_binary(self, data: bytes) -> Reply: ...

    def error(self, text: str, code: int = 400) -> Reply:
        """End the session with an in-socket error (also for the server's fault knobs)."""
        ...
