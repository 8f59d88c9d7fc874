"""Conformance: an independent WebSocket client, following iApp's own sample client, against
the project's iApp simulator.

The client is the ``websockets`` package (a test extra), not our aiohttp code, and it does
what iApp's documented sample does: the key in an ``apikey`` header, 1024-byte frames of
16 kHz PCM every 20 ms, ``{"data": {"status": "CloseConnection"}}``, then reading until the end
text; it prints a new line on ``NewSentence`` and overwrites the line on ``Sentence``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wyoming_bodhi.simulators.iapp import IappOptions, IappSimulator

from .signals import encode, utterances

THAI = ["สวัสดีครับ", "เปิดไฟห้องนอน"]
AUDIO = encode(utterances(16000, count=2, burst=0.6, gap=1.0))
KEY = "sample-client-key-1234"


@contextlib.asynccontextmanager
async def simulator(**options: object) -> AsyncIterator[IappSimulator]:
    async with IappSimulator(IappOptions(**options)) as running:  # type: ignore[arg-type]
        yield running


async def sample_client(url: str, key: str, end_texts: set[str]) -> list[str]:
    """The sample client's flow; returns its screen, a line per sentence."""
    lines = [""]
    async with connect(url, additional_headers={"apikey": key}, ping_interval=None) as ws:

        async def send_audio() -> None:
            for offset in range(0, len(AUDIO), 1024):
                await ws.send(AUDIO[offset : offset + 1024])
                await asyncio.sleep(0.005)  # the sample sleeps 0.02 s; faster keeps this quick
            await ws.send(json.dumps({"data": {"status": "CloseConnection"}}))

        sender = asyncio.create_task(send_audio())
        async for message in ws:
            data = json.loads(message)
            if data.get("text") in end_texts:
                break
            if data.get("state") in ("NewSentence", "New sentence"):
                lines.append("")
            lines[-1] = data["text"]
        await sender
    return lines


@pytest.mark.parametrize(
    ("end_form", "end_text"),
    [("end_of_process", "end_of_process"), ("confirm", "Confirm Close Connection")],
)
async def test_the_sample_client_transcribes_through_the_simulator(
    end_form: str, end_text: str
) -> None:
    async with simulator(texts=THAI, end_form=end_form) as running:
        lines = await asyncio.wait_for(sample_client(running.url, KEY, {end_text}), 15)
        (record,) = running.connections
        await asyncio.wait_for(record.closed.wait(), 5)
    assert lines == THAI
    assert record.auth_headers == ("apikey",)
    assert {frame.size for frame in record.frames[:-1]} == {1024}
    assert record.eof_received
    # The sample client closes once it has the end text.
    assert record.ended == "eos"


async def test_the_other_spelling_of_a_new_sentence_is_heard_too() -> None:
    async with simulator(texts=THAI, new_sentence="New sentence") as running:
        lines = await asyncio.wait_for(sample_client(running.url, KEY, {"end_of_process"}), 15)
    assert lines == THAI


async def test_a_refused_key_is_refused_at_the_handshake() -> None:
    async with simulator(api_key="the-right-key") as running:
        with pytest.raises(InvalidStatus) as info:
            await sample_client(running.url, "a-wrong-key", {"end_of_process"})
        (record,) = running.connections
    assert info.value.response.status_code == 401
    assert (record.http_status, record.ended) == (401, "refused")
