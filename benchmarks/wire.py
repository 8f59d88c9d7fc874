"""Wyoming events as the bytes on the wire, encoded once by wyoming itself and reused."""

from __future__ import annotations

import io

from wyoming.event import Event, write_event


def encode_event(event: Event) -> bytes:
    """Exactly what ``async_write_event`` would write for ``event``."""
    buffer = io.BytesIO()
    write_event(event, buffer)
    return buffer.getvalue()
