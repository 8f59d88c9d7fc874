"""Reading Wyoming events with bounds: one client cannot make the server hold unbounded data.

``wyoming.event.async_read_event`` trusts the lengths a client announces
(``data_length``, ``payload_length``) and reads them whole, and treats garbage as a normal
end of stream. Here every length is checked first, and garbage is an error that closes that
client's connection, reported in the log.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from wyoming.event import Event

MAX_LINE_BYTES: Final = 64 * 1024
"""The JSON header line; also the StreamReader's limit."""
MAX_DATA_BYTES: Final = 64 * 1024
"""Event data (a transcribe with many names is a few kB)."""
MAX_PAYLOAD_BYTES: Final = 4 * 1024 * 1024
"""Audio payload: 4 MiB is over 10 s of 96 kHz stereo 32-bit audio in one chunk."""


class WireError(Exception):
    """The client broke the framing: the connection cannot continue."""


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(f"{key} is not a length: {value!r}")
    if value > limit:
        raise WireError(f"{key} {value} is over the limit of {limit} bytes")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None at the end of the stream. Raises :class:`WireError`."""
    try:
        line = await reader.readline()
    except ValueError:
        # StreamReader turns an over-long line into ValueError.
        raise WireError(f"event header longer than {MAX_LINE_BYTES} bytes") from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        # The stream ended mid-line.
        return None
    try:
        header = json.loads(line)
    except ValueError:
        raise WireError("event header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise WireError("event header has no type")
    data = header.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise WireError("event data is not an object")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise WireError("event data is not an object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except ValueError:
        raise WireError("event data is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)
