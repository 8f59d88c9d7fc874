"""``wyoming-bodhi --health-check``: is a bodhi server answering Describe at this URI?"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

from .info import PROGRAM_NAME

HEALTH_TIMEOUT = 2.0

# A server bound to every address is reached on the loopback one.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


def client_uri(server_uri: str) -> str:
    parts = urlsplit(server_uri)
    if parts.scheme != "tcp" or parts.hostname not in _WILDCARDS:
        return server_uri
    host = _WILDCARDS[parts.hostname or ""]
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


async def check(server_uri: str, timeout: float = HEALTH_TIMEOUT) -> str | None:
    """None when healthy, else what is wrong (one line)."""
    uri = client_uri(server_uri)
    if urlsplit(uri).scheme == "stdio":
        return "a stdio:// server cannot be health-checked from outside"
    try:
        async with asyncio.timeout(timeout):
            async with AsyncClient.from_uri(uri) as client:
                await client.write_event(Describe().event())
                while True:
                    event = await client.read_event()
                    if event is None:
                        return f"{uri} closed the connection without answering Describe"
                    if Info.is_type(event.type):
                        break
    except TimeoutError:
        return f"{uri} did not answer Describe within {timeout:g} s"
    except OSError as err:
        return f"cannot connect to {uri}: {err.strerror or err.__class__.__name__}"
    info = Info.from_event(event)
    if not any(program.name == PROGRAM_NAME for program in info.asr):
        return f"{uri} answered, but not as the {PROGRAM_NAME} speech-to-text server"
    return None
