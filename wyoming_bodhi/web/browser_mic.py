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
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.error import Error
from wyoming.event import Event

from ..engines.base import Phrase, PhraseKind, UnknownModelError
from ..pipeline.bridge import Bridge
from ..pipeline.sink import MAX_QUEUED, WRITE_TIMEOUT, ClientGone
from ..pipeline.utterance import Utterance

_LOGGER = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
"""One binary message: a browser sends 20–100 ms at a time (1–4 KiB at 16 kHz)."""
RATES = range(8000, 48001)
START_TIMEOUT = 10.0
"""The first message must come this soon."""
CLOSE_TIMEOUT = 0.5
"""Seconds a page gets to answer our WebSocket close frame before its connection is closed
regardless (aiohttp waits 10 s): a Wyoming client's LINGER. A page that never answers (a
tab asleep, a script that stopped reading) would otherwise hold up a stop."""


class SocketSink:
    """The utterance's answers and partials for the page, queued without waiting, and
    bounded as a Wyoming connection's output is (:mod:`..pipeline.sink`).

    A partial replaces the one before it while that one is still waiting (it was only the
    phrase as heard so far). Past ``max_queued`` bytes waiting, the partials go first; if that
    is not enough, or a send makes no progress for ``WRITE_TIMEOUT``, the page is not reading:
    ``on_cut_off`` closes its socket and the request ends as if it had left
    (:class:`ClientGone`).
    """

    def __init__(
        self, *, on_cut_off: Callable[[str], object], max_queued: int = MAX_QUEUED
    ) -> None:
        self._max_queued = max_queued
        self._on_cut_off = on_cut_off
        self._messages: deque[tuple[str, str]] = deque()
        """(kind, the JSON text) in the order they go out."""
        self._queued = 0
        self._closed = False
        self._wakeup = asyncio.Event()
        self.gone = False

    def put(self, event: Event) -> None:
        if self.gone:
            raise ClientGone("the page stopped reading")
        if TranscriptChunk.is_type(event.type):
            text = TranscriptChunk.from_event(event).text.strip()
            self._append({"type": "phrase", "text": text})
        elif Transcript.is_type(event.type):
            self._append({"type": "transcript", "text": Transcript.from_event(event).text})
        elif Error.is_type(event.type):
            error = Error.from_event(event)
            self._append({"type": "error", "code": error.code, "text": error.text})

    def on_phrase(self, phrase: Phrase) -> None:
        if self.gone or phrase.kind is not PhraseKind.PARTIAL or not phrase.text.strip():
            return
        if self._messages and self._messages[-1][0] == "partial":
            self._queued -= len(self._messages.pop()[1])
        self._append({"type": "partial", "text": " ".join(phrase.text.split())})

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def _append(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)  # ASCII: its length is its size on the wire
        self._messages.append((message["type"], text))
        self._queued += len(text)
        if self._queued > self._max_queued:
            kept = [item for item in self._messages if item[0] != "partial"]
            self._messages = deque(kept)
            self._queued = sum(len(text) for _kind, text in kept)
            if self._queued > self._max_queued:
                self.cut_off(f"over {self._max_queued} bytes wait for it")
                raise ClientGone("the page stopped reading")
        self._wakeup.set()

    def waiting(self) -> list[str]:
        """What waits to be sent, in order."""
        return [text for _kind, text in self._messages]

    async def get(self) -> str | None:
        """The next message to send; None once the utterance has said everything (or the
        page was cut off)."""
        while not self._messages and not self._closed and not self.gone:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.gone or not self._messages:
            return None
        text = self._messages.popleft()[1]
        self._queued -= len(text)
        return text

    def cut_off(self, why: str) -> None:
        if self.gone:
            return
        _LOGGER.warning("Closing a page's microphone socket: it is not reading (%s)", why)
        self.gone = True
        self._messages.clear()
        self._queued = 0
        self._wakeup.set()
        self._on_cut_off(why)


def _start_message(data: Any) -> tuple[Transcribe, int]:
    """The page's first message; ``ValueError`` saying what is wrong with it."""
    try:
        start = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested too deep ([[[[…)
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
    ws = web.WebSocketResponse(
        max_msg_size=MAX_MESSAGE_BYTES, heartbeat=20.0, timeout=CLOSE_TIMEOUT
    )
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

    def abort(_why: str) -> None:
        # Abort, not close: a close frame would wait behind what the page is not reading.
        if request.transport is not None:
            request.transport.abort()

    sink = SocketSink(on_cut_off=abort)
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
        while (message := await sink.get()) is not None:
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await ws.send_str(message)
            except TimeoutError:
                sink.cut_off(f"no write made progress for {WRITE_TIMEOUT:g} s")

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
