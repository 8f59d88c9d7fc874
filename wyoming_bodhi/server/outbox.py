"""What a connection owes its client: events written in request order, each write bounded.

Every request on a connection (and every reply to ``describe``) gets a :class:`Slot`.
Events are put into slots without waiting and one writer task writes them out, a slot at a
time in the order the slots were opened: a later request's events never overtake an earlier
request's answer, and nothing that produces events ever waits on the client. A client that
stops reading is cut off: a write that makes no progress for ``write_timeout`` seconds, or
more than ``max_queued`` bytes waiting, closes the connection (its reader then sees the end,
and the handler releases everything the connection held).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections import deque
from collections.abc import Callable

from wyoming.event import Event, write_event

from ..pipeline.sink import MAX_QUEUED, WRITE_TIMEOUT, ClientGone

_LOGGER = logging.getLogger(__name__)


def encode(event: Event) -> bytes:
    """The event as wyoming writes it. Raises ``ValueError`` (``UnicodeEncodeError``) for text
    that cannot be UTF-8, at once, where the event is made."""
    buffer = io.BytesIO()
    write_event(event, buffer)
    return buffer.getvalue()


class Slot:
    """One request's place in the connection's output."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._events: deque[bytes] = deque()
        self.closed = False
        """No more events will be put."""
        self.held = False
        """Its events wait, and so do the slots after it, until :meth:`release`."""

    def put(self, event: Event) -> None:
        """Queue an event for the client. Raises :class:`ClientGone`, or ``ValueError`` if the
        event cannot be encoded."""
        if self._outbox.gone:
            raise ClientGone("the connection is closed")
        data = encode(event)
        self._events.append(data)
        self._outbox.queued(len(data))

    def close(self) -> None:
        """This request's events are all put (or it was abandoned)."""
        if not self.closed:
            self.closed = True
            self._outbox.wake()

    def hold(self) -> None:
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._outbox.wake()

    @property
    def ready(self) -> bool:
        """The writer can take this slot's events, or drop the slot."""
        return not self.held and (bool(self._events) or self.closed)


class Outbox:
    """The writer of one connection; create with the connection's writer, ``await close()``."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        peer: object,
        *,
        write_timeout: float = WRITE_TIMEOUT,
        max_queued: int = MAX_QUEUED,
        warn: Callable[..., None] | None = None,
    ) -> None:
        self._writer = writer
        self._peer = peer
        self._warn = warn or _LOGGER.warning
        """Logs a warning about this client (the handler's: throttled for the server)."""
        self._write_timeout = write_timeout
        self._max_queued = max_queued
        self._slots: deque[Slot] = deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.gone = False
        """The connection is closed, or was closed for not reading."""
        self._task = asyncio.create_task(self._run(), name="outbox")

    def slot(self) -> Slot:
        """A place after every slot opened before it."""
        slot = Slot(self)
        self._slots.append(slot)
        self._drained.clear()
        return slot

    def send(self, event: Event) -> None:
        """One event in a slot of its own (a reply to ``describe``, a refusal)."""
        slot = self.slot()
        try:
            slot.put(event)
        finally:
            slot.close()

    def queued(self, size: int) -> None:
        self._queued += size
        if self._queued > self._max_queued:
            self._cut_off(f"over {self._max_queued} bytes wait for it")
        self.wake()

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def idle(self) -> bool:
        """Everything put has been written and every slot closed."""
        return not self._slots

    async def _run(self) -> None:
        slots, writer = self._slots, self._writer
        try:
            while not self.gone:
                while slots and slots[0].ready:
                    slot = slots[0]
                    while slot._events:
                        data = slot._events.popleft()
                        self._queued -= len(data)
                        writer.write(data)
                        await self._drain()
                    if slot.closed:
                        slots.popleft()
                if not slots:
                    self._drained.set()
                self._wakeup.clear()
                if slots and slots[0].ready:
                    continue
                await self._wakeup.wait()
        except ConnectionError as err:
            _LOGGER.debug("Writing to %s failed: %r", self._peer, err)
            self.gone = True
        finally:
            self._drained.set()

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await self._writer.drain()
        except TimeoutError:
            self._cut_off(f"no write made progress for {self._write_timeout:g} s")

    def _cut_off(self, why: str) -> None:
        if self.gone:
            return
        self._warn("Closing the connection from %s: it is not reading (%s)", self._peer, why)
        self.gone = True
        self._slots.clear()
        self._drained.set()
        # Abort, not close: close would wait to flush what the client is not reading.
        self._writer.transport.abort()
        self.wake()

    async def flush(self, timeout: float) -> None:
        """Wait, at most ``timeout`` s, until everything put so far is written."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._drained.wait()

    async def close(self) -> None:
        """Stop writing; whatever is still queued is dropped."""
        self.gone = True
        self.wake()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class AnswerHold:
    """A request's answer kept back until its ``audio-start``, or ``grace`` seconds.

    A request that begins with ``transcribe`` can be answered before its ``audio-start`` is
    read (a refusal, or an engine that refuses at once), and Wyoming has no request ids: an
    ``audio-start`` read after the answer could be this request's own (a client that sends
    transcribe, audio-start and its audio back to back, as Home Assistant does) or the
    client's next request (one that read the answer, gave up on this one and starts over
    without transcribe). Kept back, the answer follows the audio-start, and that audio-start
    is this request's; a client that sends none within the grace gets its answer then
    (``on_grace_over()`` is called), and what it sends next is a new request.
    """

    def __init__(self, grace: float, on_grace_over: Callable[[], object]) -> None:
        self._grace = grace
        self._on_grace_over = on_grace_over
        self._slot: Slot | None = None
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, slot: Slot) -> None:
        """Keep ``slot`` (and so every slot after it) back; one held before it goes now."""
        self.release()
        slot.hold()
        self._slot = slot
        self._timer = asyncio.get_running_loop().call_later(self._grace, self._expire)

    def release(self) -> bool:
        """Let a kept-back answer go, and its timer; whether one was being kept back."""
        slot, self._slot = self._slot, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if slot is None:
            return False
        slot.release()
        return True

    def _expire(self) -> None:
        self._timer = None
        if self.release():
            self._on_grace_over()
