"""The bridge against a Wyoming client that does its worst without credentials: what it can
make the log say, however much it sends.

Every line that carries what a client sent is short, and a warning it can repeat is said
once per connection and per interval for the server, then summarised with a count.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioStop
from wyoming.event import Event, async_read_event

from wyoming_bodhi import wire

from .harness import running_bridge, settled
from .test_promises import raw_connection, send

FLOOD = 1500


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines a server at its default level (INFO) would have written."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


async def answered(reader: asyncio.StreamReader, count: int) -> None:
    finals = 0
    while finals < count:
        event = await asyncio.wait_for(async_read_event(reader), 5)
        assert event is not None, f"{finals} of {count} answered"
        finals += event.type in ("transcript", "error")


BAD_REQUESTS = {
    "bad transcribe": lambda n: Event("transcribe", {"language": n}),
    "malformed audio-chunk": lambda n: Event("audio-chunk", {"width": n}, payload=b"\0\0"),
}


@pytest.mark.parametrize("kind", BAD_REQUESTS)
async def test_a_flood_of_bad_requests_is_a_few_short_lines_with_a_count(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad = BAD_REQUESTS[kind]
    async with running_bridge("ws://127.0.0.1:9", retries=0) as bridge:
        async with raw_connection(bridge.port) as (reader, writer):
            events = [event for n in range(FLOOD) for event in (bad(n), AudioStop().event())]
            await send(writer, *events)
            await answered(reader, FLOOD)
        assert await settled(lambda: bridge.server.connections == 0)
    lines = logged(caplog)
    assert len(lines) <= 3, lines[:5]
    assert all(len(line) <= 500 for line in lines), lines
    # The connection's own summary says how many it sent.
    assert any(str(FLOOD - 1) in line for line in lines), lines


async def test_a_flood_of_requests_for_unknown_models_is_a_few_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A model we do not have is served by its language (here by an engine that cannot be
    # reached): one line says so for the connection, one says the first failure, one the
    # first busy refusal (the flood outruns max_sessions); the rest are counted, not logged.
    caplog.set_level(logging.INFO)
    async with running_bridge("ws://127.0.0.1:9", retries=0) as bridge:
        async with raw_connection(bridge.port) as (reader, writer):
            events = [
                event
                for n in range(FLOOD)
                for event in (Transcribe(name=f"no-such-model-{n}").event(), AudioStop().event())
            ]
            await send(writer, *events)
            await answered(reader, FLOOD)
        assert await settled(lambda: bridge.server.connections == 0)
    lines = [line for line in logged(caplog) if line != "Stopped"]
    assert len(lines) <= 3, lines[:5]
    assert "which is not offered here" in lines[0], lines
    assert any("cannot connect to Bodhi" in line for line in lines), lines
    assert all(len(line) <= 500 for line in lines), lines


async def test_many_connections_sending_garbage_are_summarised_for_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bridge("ws://127.0.0.1:9") as bridge:
        for _ in range(200):
            async with raw_connection(bridge.port) as (reader, writer):
                writer.write(b"this is not a Wyoming event\n")
                assert await asyncio.wait_for(reader.read(), 3) == b""
    lines = [line for line in logged(caplog) if line != "Stopped"]
    assert 1 <= len(lines) <= 2, lines[:5]


async def test_an_event_type_of_60_kB_makes_short_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wyoming_bodhi")
    monkeypatch.setattr(wire, "BODY_TIMEOUT", 0.2)
    huge = "x" * 60_000
    async with running_bridge("ws://127.0.0.1:9") as bridge:
        async with raw_connection(bridge.port) as (reader, writer):
            await send(writer, Event(huge, {"a": 1}), Event("audio-chunk", {"a": 1}))
            await answered(reader, 1)
            # Its body never comes: the connection is closed, saying why.
            writer.write(json.dumps({"type": huge, "payload_length": 10}).encode() + b"\n")
            assert await asyncio.wait_for(reader.read(), 3) == b""
    lines = [r.getMessage() for r in caplog.records]
    assert any("did not arrive" in line for line in lines), lines
    assert all(len(line) <= 500 for line in lines), [line[:200] for line in lines]


async def test_an_absurd_audio_format_is_named_briefly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_bridge("ws://127.0.0.1:9") as bridge:
        async with raw_connection(bridge.port) as (reader, writer):
            await send(
                writer, Event("audio-start", {"rate": "9" * 60_000, "width": 2, "channels": 1})
            )
            event = await asyncio.wait_for(async_read_event(reader), 5)
    assert event is not None and event.data["code"] == "audio-format"
    assert len(event.data["text"]) < 300, len(event.data["text"])
    assert all(len(line) <= 500 for line in logged(caplog)), logged(caplog)
