"""The page's microphone test: PCM from the browser over a WebSocket, through exactly the
pipeline a Wyoming request takes (same routing, engine, limits, events), with the phrases
and the transcript sent back as they come.

The conversation, one request per socket:

- the page sends ``{"language": "hi", "model": null, "rate": 16000}`` first,
- then binary messages of 16-bit little-endian mono PCM at that rate,
- then ``{"type": "stop"}`` when the person stops (or just closes the socket);
- the server sends ``{"type": "started", "engine", "model", "language"}``, then
  ``{"type": "partial" | "phrase", "text"}`` as the engine hears them, and finally
  ``{"type": "transcript", "text"}`` or ``{"type": "error", "code", "text"}``, and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.error import Error
from wyoming.event import Event

from ..engines.base import Phrase, PhraseKind, UnknownModelError
from ..pipeline.bridge import Bridge
from ..pipeline.utterance import Utterance

_LOGGER = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
"""One binary message: a browser sends 20–100 ms at a time (1–4 KiB at 16 kHz)."""
RATES = range(8000, 48001)
START_TIMEOUT = 10.0
"""The first message must come this soon."""


class _SocketSink:
    """The utterance's events and partials, queued for the socket (never waits)."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def put(self, event: Event) -> None:
        if TranscriptChunk.is_type(event.type):
            text = TranscriptChunk.from_event(event).text.strip()
            self.messages.put_nowait({"type": "phrase", "text": text})
        elif Transcript.is_type(event.type):
            self.messages.put_nowait(
                {"type": "transcript", "text": Transcript.from_event(event).text}
            )
        elif Error.is_type(event.type):
            error = Error.from_event(event)
            self.messages.put_nowait({"type": "error", "code": error.code, "text": error.text})

    def close(self) -> None:
        self.messages.put_nowait(None)

    def on_phrase(self, phrase: Phrase) -> None:
        if phrase.kind is PhraseKind.PARTIAL and phrase.text.strip():
            self.messages.put_nowait({"type": "partial", "text": " ".join(phrase.text.split())})


def _start_message(data: Any) -> tuple[Transcribe, int]:
    """The page's first message; ``ValueError`` saying what is wrong with it."""
    try:
        start = json.loads(data)
    except ValueError:
        raise ValueError("the first message must be JSON") from None
    if not isinstance(start, dict):
        raise ValueError("the first message must be a JSON object")
    language, model, rate = start.get("language"), start.get("model"), start.get("rate")
    for name, value in (("language", language), ("model", model)):
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            raise ValueError(f"{name} must be a short string or null")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate not in RATES:
        raise ValueError("rate must be a whole number of Hz from 8000 to 48000")
    return Transcribe(name=model or None, language=language or None), rate


async def microphone_socket(request: web.Request, bridge: Bridge) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=20.0)
    await ws.prepare(request)

    async def fail(code: str, text: str) -> web.WebSocketResponse:
        await ws.send_json({"type": "error", "code": code, "text": text})
        await ws.close()
        return ws

    try:
        async with asyncio.timeout(START_TIMEOUT):
            first = await ws.receive()
    except TimeoutError:
        return await fail("protocol", f"no start message within {START_TIMEOUT:g} s")
    if first.type != WSMsgType.TEXT:
        await ws.close()
        return ws
    try:
        transcribe, rate = _start_message(first.data)
    except ValueError as err:
        return await fail("protocol", str(err))
    refusal = bridge.refusal()
    if refusal is not None:
        text, code = refusal
        return await fail(code, text)
    try:
        choice, pipeline_request = bridge.request_for(transcribe)
    except UnknownModelError as err:
        return await fail("unknown-model", str(err))

    sink = _SocketSink()
    utterance = Utterance.start(
        bridge,
        choice,
        # The person watching wants the phrase as it is heard.
        dataclasses.replace(pipeline_request, partials=True),
        sink,
        on_phrase=sink.on_phrase,
        client="browser",
    )
    await ws.send_json(
        {
            "type": "started",
            "engine": choice.engine.title,
            "model": choice.model.name,
            "language": choice.language,
        }
    )

    async def forward() -> None:
        """The answers, until the utterance's last."""
        while (message := await sink.messages.get()) is not None:
            await ws.send_json(message)

    async def read() -> None:
        """Audio until the page says stop; returns when the page closes the socket."""
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await utterance.add_audio(message.data, rate, 2, 1)
            elif message.type == WSMsgType.TEXT:
                utterance.end_audio()

    writer = asyncio.create_task(forward(), name="browser microphone writer")
    reader = asyncio.create_task(read(), name="browser microphone reader")
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not writer.done():
            # The page left before its answer: nobody is waiting for it (as with a
            # Wyoming client), so the engine's session closes now.
            _LOGGER.debug("The page closed its microphone socket before the answer")
    except (ConnectionError, RuntimeError) as err:
        _LOGGER.debug("The page's microphone socket ended: %r", err)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await utterance.cancel()
        await ws.close()
    return ws
