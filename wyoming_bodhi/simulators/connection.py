"""One upgraded WebSocket of a simulator: reads frames, feeds the vendor's sans-I/O session,
sends its replies, and injects the faults its options ask for (idle close, a drop, an error
after N frames, noise before the results, silence after eof)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from aiohttp import WSMsgType, web

from .messages import CLOSE_GOING_AWAY, CLOSE_NORMAL, Message, Reply, SimulatedSession
from .options import SimulatorOptions
from .record import (
    ENDED_CLIENT_CLOSED,
    ENDED_DROPPED,
    ENDED_ERROR,
    ENDED_IDLE,
    ENDED_SERVER_STOPPED,
    ConnectionRecord,
    FrameRecord,
)

_LOGGER = logging.getLogger(__name__)

# What malformed_results slips in before the first real result.
MALFORMED_TEXT = "<simulator: this text frame is not JSON>"
UNKNOWN_SHAPE: Message = {"status": "processing", "detail": "simulator: message of unknown shape"}

MAX_KEPT_NOISE = 100
"""A flood of raw messages is sent but not recorded, message by message."""


def echoed_credentials(record: ConnectionRecord, offset: int = 0) -> str:
    """A careless server's error, quoting the credentials the handshake carried; the key
    from ``offset`` on, if it is given."""
    said = [f"api key {record.api_key}"] if record.api_key else []
    said += [f"customer id {record.customer_id}"] if record.customer_id else []
    text = f"credentials not accepted: {', '.join(said) or 'none given'}"
    if offset and record.api_key:
        text = "x" * max(0, offset - text.index(record.api_key)) + text
    return text


class Connection:
    """One upgraded WebSocket: reads frames, feeds the session, sends its replies."""

    def __init__(
        self,
        options: SimulatorOptions,
        stopping: asyncio.Event,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: ConnectionRecord,
        session: SimulatedSession,
    ) -> None:
        self.options = options
        self._stopping = stopping
        """Set once the simulator is stopping."""
        self.request = request
        self.ws = ws
        self.record = record
        self.session = session
        record.call_id = self.session.call_id
        self._noise_pending = self.options.malformed_results or bool(
            self.options.raw_before_results
        )
        self._stop_task: asyncio.Task[bool] | None = None

    def request_stop(self) -> None:
        """Close from outside (the simulator is stopping); ``run()`` then winds up."""
        if self._stop_task is None and not self.ws.closed:
            self.record.end(
                ENDED_SERVER_STOPPED, time.monotonic(), CLOSE_GOING_AWAY, "simulator stopping"
            )
            self._stop_task = asyncio.ensure_future(
                self.ws.close(code=CLOSE_GOING_AWAY, message=b"simulator stopping")
            )

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            if self._stop_task is not None:
                # Let the close handshake that stop() started finish before the handler
                # returns: aiohttp tears the transport down once it does.
                await asyncio.shield(self._stop_task)

    async def _loop(self) -> None:
        options, record, ws = self.options, self.record, self.ws
        while True:
            silent = options.silent_after_eof and self.session.eof_received
            try:
                # An outer timeout, not receive(timeout=...): aiohttp restarts its own timer
                # after each ping, and Bodhi's idle close does not promise to count pings.
                async with asyncio.timeout(None if silent else options.idle_timeout):
                    msg = await ws.receive()
            except TimeoutError:
                reason = f"idle timeout: no message for {options.idle_timeout:g} s"
                record.end(ENDED_IDLE, time.monotonic(), CLOSE_NORMAL, reason)
                await ws.close(code=CLOSE_NORMAL, message=reason.encode())
                return
            if msg.type is WSMsgType.TEXT:
                record.texts_received.append(msg.data)
                reply = self.session.on_text(msg.data)
                if record.config is None and self.session.config is not None:
                    record.config = self.session.config
                    _LOGGER.debug(
                        "connection %d: config model=%s sample_rate=%s",
                        record.index,
                        record.config.get("model"),
                        record.config.get("sample_rate"),
                    )
                if self.session.eof_received and not record.eof_received:
                    record.eof_received = True
                    record.eof_message = self.session.eof_message
            elif msg.type is WSMsgType.BINARY:
                record.frames.append(FrameRecord(len(msg.data), time.monotonic()))
                if options.record_audio:
                    record.audio.extend(msg.data)
                count = len(record.frames)
                if options.drop_after_frames == count:
                    self._drop(count)
                    return
                if options.error_after_frames == count:
                    reply = self.session.error("internal error", 500)
                elif options.echo_credentials and count == 1:
                    reply = self.session.error(echoed_credentials(record, options.echo_offset))
                else:
                    reply = self.session.on_binary(msg.data)
            else:
                # CLOSE, CLOSING (ours, from stop()), CLOSED or ERROR.
                record.end(
                    ENDED_CLIENT_CLOSED,
                    time.monotonic(),
                    ws.close_code,
                    msg.extra if isinstance(msg.extra, str) else None,
                )
                return
            if not await self._deliver(reply):
                return

    async def _deliver(self, reply: Reply) -> bool:
        """Send a reply; False once the connection is over."""
        options = self.options
        if reply.answers_eof:
            if options.silent_after_eof:
                _LOGGER.debug("connection %d: eof withheld (silent_after_eof)", self.record.index)
                return True
            if options.eos_delay:
                await asyncio.sleep(options.eos_delay)
        for message in reply.messages:
            if not await self._send(message):
                return False
        if reply.outcome is not None and not reply.close:
            # The session is over, and the client is to close (iApp's way).
            self.record.end(reply.outcome, time.monotonic(), None, "awaiting the client's close")
        if reply.close:
            if reply.outcome == ENDED_ERROR and options.leave_open_after_error:
                # A hostile server: the session is over, but the socket stays open, unread,
                # so the client's close frame goes unanswered, until the idle timeout.
                self.record.end(reply.outcome, time.monotonic(), None, reply.close_reason)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), options.idle_timeout)
                return False
            code = reply.close_code or CLOSE_NORMAL
            assert reply.outcome is not None
            self.record.end(reply.outcome, time.monotonic(), code, reply.close_reason)
            await self.ws.close(code=code, message=reply.close_reason.encode())
            return False
        return True

    async def _send(self, message: Message) -> bool:
        if self._noise_pending and "type" in message:
            self._noise_pending = False
            options = self.options
            noise: list[Message | str] = []
            if options.malformed_results:
                noise += [MALFORMED_TEXT, UNKNOWN_SHAPE]
            noise += list(options.raw_before_results) * options.raw_repeat
            for item in noise:
                if not await self._send_raw(item, keep=len(noise) <= MAX_KEPT_NOISE):
                    return False
        return await self._send_raw(message)

    async def _send_raw(self, message: Message | str, keep: bool = True) -> bool:
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError) as err:
            self.record.end(ENDED_CLIENT_CLOSED, time.monotonic(), self.ws.close_code, str(err))
            return False
        if keep:
            self.record.sent.append(message)
        return True

    def _drop(self, count: int) -> None:
        reason = f"dropped after {count} audio frames"
        self.record.end(ENDED_DROPPED, time.monotonic(), None, reason)
        _LOGGER.info("connection %d: %s", self.record.index, reason)
        transport = self.request.transport
        if transport is not None:
            transport.abort()


__all__ = ["MALFORMED_TEXT", "MAX_KEPT_NOISE", "UNKNOWN_SHAPE", "Connection"]
