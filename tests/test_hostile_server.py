"""The clients against a Wyoming server that lies about its lengths, on 127.0.0.1.

A server may announce an event of any size; a client reads no more than an answer can need
(the same bounded reader the server uses on its clients), says so in one line, and hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wyoming.asr import Transcribe

from wyoming_bodhi.clients.connection import ServerProblem, parse_uri
from wyoming_bodhi.clients.direct import Failed
from wyoming_bodhi.clients.remote import WyomingRequest, describe

from .test_transcribe_client import run_client, send_in_process

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "samples" / "batti-jalao.wav")
ANNOUNCED = 2 * 1024**3
OFFERED = 64 * 1024**2
"""What the server tries to send of what it announced: far more than any answer needs."""
PIECE = 1024 * 1024


@dataclass
class LyingServer:
    port: int
    sent: int = 0
    """Bytes of the lie the client took."""


@contextlib.asynccontextmanager
async def lying_server(length_key: str) -> AsyncIterator[LyingServer]:
    """Answers a client's first event with one that announces 2 GB of data or payload, and
    sends as much of it as the client takes."""
    lying = LyingServer(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readline()
            header = {"type": "transcript", "data": {"text": "x"}, length_key: ANNOUNCED}
            writer.write(json.dumps(header).encode() + b"\n")
            piece = b"{" + bytes(PIECE - 1)
            while lying.sent < OFFERED:
                writer.write(piece)
                await writer.drain()
                lying.sent += PIECE
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    lying.port = server.sockets[0].getsockname()[1]
    async with server:
        yield lying


LENGTHS = ["payload_length", "data_length"]
TAKEN = 16 * 1024**2
"""At most what the client may have taken: the socket buffers of both ends, and the limit."""


@pytest.mark.parametrize("length_key", LENGTHS)
async def test_the_file_client_reads_no_more_than_an_answer_needs(length_key: str) -> None:
    async with lying_server(length_key) as server:
        with pytest.raises(ServerProblem, match="sent an invalid event") as caught:
            await asyncio.wait_for(send_in_process(SAMPLE, server.port), 10)
    assert server.sent < TAKEN, f"the client took {server.sent / 1e6:.0f} MB"
    assert str(ANNOUNCED) in str(caught.value)


@pytest.mark.parametrize("length_key", LENGTHS)
async def test_the_microphone_clients_request_and_describe_read_no_more(length_key: str) -> None:
    async with lying_server(length_key) as server:
        uri = f"tcp://127.0.0.1:{server.port}"
        with pytest.raises(ServerProblem, match="sent an invalid event"):
            await asyncio.wait_for(describe(parse_uri(uri), uri, 5), 10)
        described = server.sent
        server.sent = 0
        request = await WyomingRequest.open(
            parse_uri(uri), uri, Transcribe(language="hi"), (16000, 2, 1), 5
        )
        try:
            async with asyncio.timeout(10):
                updates = [update async for update in request.updates()]
        finally:
            await request.close()
    assert described < TAKEN and server.sent < TAKEN, (described, server.sent)
    (failed,) = updates
    assert isinstance(failed, Failed) and failed.code == "invalid-event", failed


async def test_the_file_client_says_it_in_one_line_and_exits() -> None:
    async with lying_server("payload_length") as server:
        run = await run_client(SAMPLE, "--uri", f"tcp://127.0.0.1:{server.port}")
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "sent an invalid event" in run.stderr, run.stderr
    assert server.sent < TAKEN
