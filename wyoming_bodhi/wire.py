"""Reading Wyoming events with bounds, on either side: the other end cannot make us hold
unbounded data.

``wyoming.event.async_read_event`` trusts the lengths the other end announces
(``data_length``, ``payload_length``), reads them whole however slowly they come, and treats
garbage as a normal end of stream. Here every length is checked first, against the
:class:`Limits` of what this side can need (the server's for what clients send, the
clients' for what a server answers), the rest of an event must follow its header within a
deadline, and garbage is an error that ends the connection, said in words.

Waiting for the *next* header is left to the caller (:func:`read_header` may be cancelled at
any time without losing data), so that it can apply its own idle policy.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final, NamedTuple

from wyoming.event import Event

from .text import quoted

MAX_LINE_BYTES: Final = 64 * 1024
"""The JSON header line; also the StreamReader's limit."""
MAX_DATA_BYTES: Final = 64 * 1024
"""Event data (a transcribe with many names is a few kB)."""
MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Audio payload. Home Assistant sends 320-byte chunks (4 KiB from its HTTP API), satellites a
few KiB; 256 KiB is 8 s of 16 kHz audio, or 0.7 s of 96 kHz stereo 32-bit, in one chunk."""
BODY_TIMEOUT: Final = 10.0
"""Seconds for an event's data and payload to arrive once its header has: 256 KiB in 10 s is
a 26 kB/s link, far below any network a voice assistant runs on."""


class Limits(NamedTuple):
    """The longest event data and payload one side takes."""

    data: int
    payload: int


FROM_CLIENTS: Final = Limits(MAX_DATA_BYTES, MAX_PAYLOAD_BYTES)
"""What the server reads from a client: requests and their audio."""
FROM_SERVERS: Final = Limits(data=1024 * 1024, payload=MAX_PAYLOAD_BYTES)
"""What a client reads from a server: answers. Data holds a transcript (100,000 characters at
most from this server, 300 kB of UTF-8 in Indian scripts) or an Info; no answer a client
reads has a payload, and one that came would be audio."""


class WireError(Exception):
    """The client broke the framing: the connection cannot continue."""


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(f"{key} is not a length: {quoted(value, 40)}")
    if value > limit:
        raise WireError(f"{key} {value} is over the limit of {limit} bytes")
    return value


async def read_header(reader: asyncio.StreamReader) -> bytes:
    """The next header line, b"" at the end of the stream. Raises :class:`WireError`.

    Cancelling it loses nothing: a partly received line stays in the reader's buffer.
    """
    try:
        line = await reader.readline()
    except ValueError:
        # StreamReader turns an over-long line into ValueError.
        raise WireError(f"event header longer than {MAX_LINE_BYTES} bytes") from None
    if not line.endswith(b"\n"):
        # The stream ended, possibly mid-line.
        return b""
    return line


async def read_body(
    reader: asyncio.StreamReader,
    line: bytes,
    timeout: float | None = None,
    limits: Limits = FROM_CLIENTS,
) -> Event | None:
    """The event whose header is ``line``, its data and payload read within ``timeout``
    (default :data:`BODY_TIMEOUT`), each no longer than ``limits`` allow.

    None when the stream ends first. Raises :class:`WireError`.
    """
    if timeout is None:
        timeout = BODY_TIMEOUT
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        raise WireError("event header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise WireError("event header has no type")
    data = header.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise WireError("event data is not an object")
    data_length = _length(header, "data_length", limits.data)
    payload_length = _length(header, "payload_length", limits.payload)
    try:
        async with asyncio.timeout(timeout):
            extra = await reader.readexactly(data_length) if data_length else None
            payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except TimeoutError:
        raise WireError(
            f"the {quoted(header['type'])} event's body did not arrive within {timeout:g} s"
        ) from None
    if extra is not None:
        try:
            extra_data = json.loads(extra)
        except (ValueError, RecursionError):
            raise WireError("event data is not JSON") from None
        if not isinstance(extra_data, dict):
            raise WireError("event data is not an object")
        data.update(extra_data)
    return Event(type=header["type"], data=data, payload=payload)


async def read_event(reader: asyncio.StreamReader, limits: Limits = FROM_CLIENTS) -> Event | None:
    """The next event, or None at the end of the stream. Raises :class:`WireError`."""
    line = await read_header(reader)
    return await read_body(reader, line, limits=limits) if line else None
