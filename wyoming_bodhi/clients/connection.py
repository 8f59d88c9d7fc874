"""Reaching a Wyoming server from a client: addresses, connecting, waiting, and the two
kinds of failure a client reports (its user's mistake, or the server's)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

from wyoming.client import AsyncClient, AsyncTcpClient, AsyncUnixClient
from wyoming.event import Event

from ..addresses import tcp_host_port
from ..wire import FROM_SERVERS, WireError, read_event
from .cli import UsageError
from .console import say

DEFAULT_URI: Final = "tcp://127.0.0.1:10300"
# How often a refused connection is retried under --wait: fast enough that a server which
# starts in a second is used within a tenth of one.
RETRY_INTERVAL: Final = 0.1


class ServerProblem(Exception):
    """The server could not be reached or did not answer with a transcript. Exit status 1."""

    def __init__(self, message: str, *, code: str = "connection") -> None:
        super().__init__(message)
        self.code = code
        """``connection``, or ``invalid-event`` for a server that sent something malformed."""


def read_failure(uri: str, err: Exception) -> ServerProblem:
    """Why reading from the server at ``uri`` failed, in words, whichever client read."""
    if isinstance(err, ServerProblem):
        return err
    if isinstance(err, WireError):
        return ServerProblem(f"{uri} sent an invalid event: {err}", code="invalid-event")
    if isinstance(err, asyncio.IncompleteReadError):
        return ServerProblem(f"{uri} closed the connection in the middle of an event")
    if isinstance(err, OSError):
        return ServerProblem(f"lost the connection to {uri}: {reason(err)}")
    # What the wyoming library makes of a malformed event: a KeyError, a JSON error, …
    what = f"{uri} sent an invalid event ({type(err).__name__})"
    return ServerProblem(what, code="invalid-event")


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[\w.-]+):\d+$")


Connector = Callable[[], Awaitable[AsyncClient]]
"""Opens a new connection to the server and returns its client."""


class _BoundedReads(AsyncClient):
    """Reads as the server reads its clients (:mod:`~wyoming_bodhi.wire`): a server cannot
    make a client hold more than an answer needs by announcing a longer event. Raises
    :class:`~wyoming_bodhi.wire.WireError`."""

    async def read_event(self) -> Event | None:
        assert self._reader is not None
        return await read_event(self._reader, FROM_SERVERS)


class TcpClient(_BoundedReads, AsyncTcpClient):
    pass


class UnixClient(_BoundedReads, AsyncUnixClient):
    pass


def parse_uri(uri: str) -> Connector:
    """How to connect to ``uri``, or `UsageError` saying what is wrong with it."""
    parts = urlsplit(uri)
    if parts.scheme == "tcp":
        host_port = tcp_host_port(uri)
        # A server may bind port 0 or every interface (no host); a client can reach neither.
        if host_port is None or not host_port[0] or not host_port[1]:
            raise UsageError(
                f"--uri {uri}: needs a host and a port from 1 to 65535, e.g. {DEFAULT_URI}"
            )
        host, port = host_port
        return lambda: _connect_tcp(host, port)
    if parts.scheme == "unix":
        path = parts.path
        if not path:
            raise UsageError(f"--uri {uri}: needs a socket path, e.g. unix:///run/wyoming.sock")
        return lambda: _connect(UnixClient(path))
    hint = f"; did you mean tcp://{uri}?" if _HOST_PORT.match(uri) else f", e.g. {DEFAULT_URI}"
    raise UsageError(f"--uri {uri}: expected tcp://HOST:PORT or unix://PATH{hint}")


async def _connect(client: AsyncClient) -> AsyncClient:
    await client.connect()
    return client


async def _connect_tcp(host: str, port: int) -> AsyncClient:
    """Try each address of ``host`` in turn, like asyncio, but keep a refusal a refusal.

    For "localhost" refused on both ::1 and 127.0.0.1, Python 3.11's asyncio raises a plain
    OSError ("Multiple exceptions: …"), which would hide that the server is simply not up yet
    (what --wait waits for)."""
    loop = asyncio.get_running_loop()
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    failures: list[OSError] = []
    for *_, address in addresses:
        try:
            return await _connect(TcpClient(str(address[0]), port))
        except OSError as err:
            failures.append(err)
    refused = [err for err in failures if isinstance(err, ConnectionRefusedError)]
    raise (refused or failures or [OSError(f"{host} has no address")])[0]


def reason(err: OSError) -> str:
    # asyncio puts the address in strerror ("Connect call failed (…)"); the errno says it
    # plainly. Resolver errors have negative codes of their own, with a good strerror.
    if err.errno and err.errno > 0 and not isinstance(err, socket.gaierror):
        return os.strerror(err.errno).lower()
    return (err.strerror or str(err) or err.__class__.__name__).lower()


async def connect(connector: Connector, uri: str, wait: float, timeout: float) -> AsyncClient:
    """Connect, retrying a refused connection for up to ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait
    waited = False
    while True:
        try:
            async with asyncio.timeout(timeout):
                client = await connector()
        except TimeoutError:
            problem = f"cannot connect to {uri}: no answer within {timeout:g} s"
            raise ServerProblem(problem) from None
        # FileNotFoundError: a unix socket that does not exist yet.
        except (ConnectionRefusedError, FileNotFoundError) as err:
            if loop.time() >= give_up:
                if waited:
                    raise ServerProblem(f"no server at {uri} after waiting {wait:g} s") from None
                raise ServerProblem(
                    f"cannot connect to {uri}: {reason(err)}; is the server running? "
                    "(--wait SECONDS waits for one that is starting)"
                ) from None
            if not waited:
                say(sys.stderr, f"waiting for the server at {uri} (up to {wait:g} s)")
                waited = True
            await asyncio.sleep(min(RETRY_INTERVAL, max(0.0, give_up - loop.time())))
            continue
        except OSError as err:
            raise ServerProblem(f"cannot connect to {uri}: {reason(err)}") from None
        return client
