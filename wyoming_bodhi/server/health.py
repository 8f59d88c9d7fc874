"""``wyoming-bodhi --health-check``: is a bodhi server answering Describe at this URI?"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

from ..addresses import WILDCARD_HOSTS, tcp_host_port
from ..pipeline.routing import PROGRAM_NAME

HEALTH_TIMEOUT = 2.0


def client_uri(server_uri: str) -> str:
    """Where a client reaches the server: a server bound to every address, on loopback."""
    host_port = tcp_host_port(server_uri)
    if host_port is None or host_port[0] not in WILDCARD_HOSTS:
        return server_uri
    host, port = host_port
    loopback = "[::1]" if host == "::" else "127.0.0.1"
    return urlunsplit(urlsplit(server_uri)._replace(netloc=f"{loopback}:{port}"))


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
