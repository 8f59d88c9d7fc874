"""The Wyoming event state machine for one client connection.

An utterance starts at ``transcribe`` or ``audio-start`` (or, leniently, at a first
``audio-chunk``), takes audio until ``audio-stop``, and always ends in one ``transcript`` or
one ``error`` event. The connection is read all the while — nothing here ever waits on a
request or on the client — so a client that goes away is noticed at once, whatever state its
requests are in, and their engine sessions closed. Requests may follow one another without
waiting (pipelining): each request's events go into its own slot of the connection's
:class:`~.outbox.Outbox`, written strictly in request order. A client that misuses the
protocol gets an ``error`` event; one that breaks the framing loses its connection; neither
disturbs anyone else.

What an event may hold is checked in :mod:`.events`; the order of the answers, and an answer
kept back for its ``audio-start``, are :mod:`.outbox`'s; a request itself is the pipeline's
:class:`~..pipeline.utterance.Utterance`. What is left here is one state machine (the request
taking audio, the requests whose answers are on their way, a refused request's audio, the
connection's close), a little over 400 lines because its transitions are read together.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from wyoming.asr import Transcribe, TranscriptStart
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler

from ..pipeline.activity import RequestRecord
from ..pipeline.audio import AudioFormat, UnsupportedAudioFormat
from ..pipeline.bridge import Bridge
from ..pipeline.inflight import SHUTDOWN, SHUTDOWN_TEXT
from ..pipeline.sink import ClientGone
from ..pipeline.utterance import TRANSCRIPT_LINES, Utterance
from ..text import quoted
from ..wire import WireError, read_body, read_header
from .events import REQUEST_EVENTS, ProtocolError, client_name, is_transcribe, transcribe_from
from .outbox import AnswerHold, Outbox

_LOGGER = logging.getLogger(__name__)

YIELD_AFTER = 0.005
"""Seconds of handling one client's events back to back before letting other clients run:
events already buffered are read without waiting, so a client sending large chunks in a
burst would otherwise hold the event loop for as long as it has data."""

FLUSH_AT_SHUTDOWN = 1.0
"""Seconds the last events (the shutdown errors) get to reach a client that is stopping."""
LINGER = 0.5
"""Seconds a connection being closed is still read (and what comes dropped) after the end
of our output, so that the client reads its answer before the close: closing a socket with
unread input resets it, and a client may then lose what it had not read yet."""

AUDIO_START_GRACE = 1.0
"""Seconds a request begun with transcribe waits for its audio-start before an early answer
(a refusal) goes out anyway (see :class:`.outbox.AnswerHold`). Home Assistant sends audio-start
straight after transcribe."""


class BridgeEventHandler(AsyncEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        bridge: Bridge,
        info: Event,
        *,
        idle_timeout: float | None = None,
        wait_at_end: bool = False,
    ) -> None:
        super().__init__(reader, writer)
        self._bridge = bridge
        self._info = info
        """The answer to ``describe``, built once by the server (see :func:`.info.info_event`)."""
        self._idle_timeout = idle_timeout
        self._wait_at_end = wait_at_end
        """At the end of the input, let the answers on their way go out (stdio: the end of
        stdin is how a piped client says it has nothing more to send)."""
        self._peer = writer.get_extra_info("peername")
        self._client_name = client_name(self._peer)
        self._outbox = Outbox(writer, self._client_name, warn=self._warn)
        self._current: Utterance | None = None
        """The request taking audio (or answered early, its audio still arriving)."""
        self._live: list[Utterance] = []
        """Every request not over yet, in order: the current one, and those whose audio has
        ended and whose answers are on their way."""
        self._refused = False
        """A refused request's audio is ignored until its audio-stop."""
        self._hold = AnswerHold(AUDIO_START_GRACE, self._grace_over)
        """The answer of a request that began with transcribe, kept back until its audio-start
        (at most :data:`AUDIO_START_GRACE`)."""
        self._said_unknown_model = False
        self._closer: asyncio.Task[None] | None = None
        self._closed = False
        self._lingering = False
        """Our output has ended: what the client still sends is read and dropped."""
        self._linger_timer: asyncio.TimerHandle | None = None
        self._left_out = 0
        """Warnings about this connection that the server's throttle left out of the log."""

    def _warn(
        self, message: str, *args: object, level: int = logging.WARNING, burst: int = 1
    ) -> None:
        """A warning about what this client did, through the server's throttle: no client,
        nor any number of them, can flood the log. What it leaves out is counted here, and
        summarised when the connection closes."""
        if not self._bridge.warnings.log(_LOGGER, level, message, *args, burst=burst, stacklevel=3):
            self._left_out += 1

    async def run(self) -> None:
        """Like wyoming's loop, but with bounded reads, and no event can crash it."""
        self._is_running = True
        loop = asyncio.get_running_loop()
        turn_started = loop.time()
        try:
            while self._is_running:
                if loop.time() - turn_started > YIELD_AFTER:
                    await asyncio.sleep(0)
                    turn_started = loop.time()
                try:
                    event = await self._next_event()
                except WireError as err:
                    self._warn("Closing the connection from %s: %s", self._client_name, err)
                    break
                if event is None:
                    self._hold.release()
                    if self._wait_at_end:
                        await self.wait_until_idle()
                        await self._outbox.flush(FLUSH_AT_SHUTDOWN)
                    break
                if self._lingering:
                    continue
                try:
                    await self.handle_event(event)
                except ClientGone:
                    break
                except ProtocolError as err:
                    kind = quoted(event.type)
                    self._warn("Bad %s event from %s: %s", kind, self._client_name, err)
                    await self._fail_request(f"bad {kind} event: {err}", "protocol")
                except (KeyError, TypeError, ValueError) as err:
                    kind, said = quoted(event.type), quoted(err, 200)
                    self._warn("Bad %s event from %s: %s", kind, self._client_name, said)
                    await self._fail_request(f"malformed {kind} event: {said}", "protocol")
                except ConnectionError:
                    raise
                except Exception:
                    # A bug of ours must cost one request, not the connection or the server.
                    self._bridge.warnings.log(
                        _LOGGER,
                        logging.ERROR,
                        "Internal error handling a %s event",
                        quoted(event.type),
                        exc_info=True,
                    )
                    await self._fail_request(
                        "internal error in the speech-to-text server", "internal"
                    )
        except (ConnectionError, ClientGone) as err:
            _LOGGER.debug("Connection from %s ended: %r", self._peer, err)
        finally:
            self._closed = True
            if self._linger_timer is not None:
                self._linger_timer.cancel()
            await self.disconnect()
            await self._outbox.close()
            self.writer.close()
            if self._left_out:
                self._bridge.warnings.warning(
                    _LOGGER,
                    "Connection from %s closed; %d more warnings about it were not logged",
                    self._client_name,
                    self._left_out,
                )

    async def _next_event(self) -> Event | None:
        """The next event; None at the end of the stream, or after ``idle_timeout`` with no
        request in progress."""
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    line = await read_header(self.reader)
            except TimeoutError:
                if self.busy:
                    continue
                _LOGGER.debug(
                    "Closing the connection from %s: idle for %g s", self._peer, self._idle_timeout
                )
                return None
            if not line:
                return None
            return await read_body(self.reader, line)

    async def handle_event(self, event: Event) -> bool:
        # Whatever the client sends for its request (even a malformed event) comes after the
        # transcribe: a kept-back answer can go now. Other events (describe, ping, types
        # unknown here) belong to no request, and leave it kept back for the audio-start.
        own = event.type in REQUEST_EVENTS and self._hold.release()
        if AudioChunk.is_type(event.type):
            await self._on_audio_chunk(AudioChunk.from_event(event))
        elif is_transcribe(event.type):
            await self._on_transcribe(event)
        elif AudioStart.is_type(event.type):
            await self._on_audio_start(AudioStart.from_event(event), own=own)
        elif AudioStop.is_type(event.type):
            await self._on_audio_stop()
        elif Describe.is_type(event.type):
            self._outbox.send(self._info)
        else:
            _LOGGER.debug("Ignoring a %s event", quoted(event.type))
        return True

    async def disconnect(self) -> None:
        self._hold.release()  # and its timer, which would otherwise keep the handler a while
        live, self._live, self._current = self._live, [], None
        for utterance in live:
            if utterance.finished:
                # Home Assistant hangs up as soon as it has the transcript: all is well.
                _LOGGER.debug("Client %s left after its transcript", self._peer)
            else:
                self._warn(
                    "Client %s went away before its transcript; closing its engine session",
                    self._client_name,
                    level=logging.INFO,
                )
            await utterance.cancel()

    @property
    def busy(self) -> bool:
        """A request is in progress: it has not been answered yet."""
        return any(not utterance.finished for utterance in self._live)

    async def wait_until_idle(self) -> None:
        for utterance in list(self._live):
            await utterance.wait()

    async def shut_down(self) -> None:
        """The server is stopping: end what is in flight with a ``shutdown`` error, write it,
        and close the connection. Never waits on the client for longer than
        :data:`FLUSH_AT_SHUTDOWN`, then :data:`LINGER`."""
        for utterance in list(self._live):
            utterance.fail(SHUTDOWN_TEXT, SHUTDOWN)
        self.close_when_idle()
        if self._closer is not None:
            await asyncio.shield(self._closer)

    def close_when_idle(self) -> None:
        """Close the connection once no request on it is waiting for its answer: now, if
        none is. A stop has begun, and a client that keeps its connection open between
        requests (a satellite) must connect again, through its load balancer, to a server
        that is not stopping."""
        if self.busy or self._closer is not None or self._lingering or self._closed:
            return
        self._closer = asyncio.create_task(self._close(), name="closing a connection")

    async def _close(self) -> None:
        """Write what is owed, end our output, and close after :data:`LINGER` (or when the
        client closes first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_AT_SHUTDOWN
        try:
            while True:
                # An answer kept back for its audio-start goes now: no request follows it.
                self._hold.release()
                await self._outbox.flush(max(0.0, deadline - loop.time()))
                if self.busy:
                    return  # a request came meanwhile: the connection closes after it
                if self._outbox.idle or loop.time() >= deadline:
                    break
            self._lingering = True
            await self._outbox.close()
            with contextlib.suppress(OSError, RuntimeError):
                if self.writer.can_write_eof():
                    self.writer.write_eof()
            # Abort, not close: close would wait to flush to a client that does not read.
            self._linger_timer = loop.call_later(LINGER, self.writer.transport.abort)
        finally:
            self._closer = None

    # -- events --------------------------------------------------------------------------------

    async def _on_transcribe(self, event: Event) -> None:
        await self._end_current(
            "a new transcribe arrived before audio-stop; the earlier request was dropped"
        )
        self._refused = False
        try:
            transcribe = transcribe_from(event)
        except ProtocolError as err:
            self._warn("Bad 'transcribe' event from %s: %s", self._client_name, err)
            self._refuse(f"bad transcribe event: {err}", "protocol", before_audio=True)
            return
        await self._start(self._without_unknown_model(transcribe))

    async def _on_audio_start(self, start: AudioStart, *, own: bool = False) -> None:
        """``own``: the request's answer was being kept back for this audio-start."""
        current = self._current
        if self._refused and current is None:
            return
        if current is not None and current.finished:
            if own:
                # Its answer (an early refusal) waited for this audio-start: this is still
                # its request's audio, not the start of a new one.
                return
            # Answered early (endpointing), before this audio-start: it starts the next request.
            await self._end_current("")
            current = None
        try:
            AudioFormat(start.rate, start.width, start.channels).validate()
        except UnsupportedAudioFormat as err:
            await self._fail_request(str(err), "audio-format")
            return
        if current is None:
            await self._start(None)

    async def _on_audio_chunk(self, chunk: AudioChunk) -> None:
        if self._refused:
            return
        if self._current is None:
            # Lenient: audio without audio-start still starts an utterance.
            await self._start(None)
        current = self._current
        if current is None or current.finished:
            # Refused, or answered early: the rest of its audio is not needed.
            return
        try:
            await current.add_audio(chunk.audio, chunk.rate, chunk.width, chunk.channels)
        except UnsupportedAudioFormat as err:
            await self._fail_request(str(err), "audio-format")

    async def _on_audio_stop(self) -> None:
        current, self._current = self._current, None
        refused, self._refused = self._refused, False
        if current is None:
            if not refused:
                # Nothing was asked; still answer, so the client does not wait forever.
                self._refuse("audio-stop without an utterance", "protocol")
                self._refused = False
            return
        if current.finished:
            # Already answered (endpointing): only the engine's clean-up is left; cut it short.
            await self._release(current)
            return
        # The answer goes out when it comes; meanwhile the connection is read, so a client
        # that leaves is noticed.
        current.end_audio()

    async def _start(self, transcribe: Transcribe | None) -> None:
        bridge = self._bridge
        refusal = bridge.refusal()
        before_audio = transcribe is not None
        if refusal is not None:
            self._refuse(*refusal, before_audio=before_audio)
            return
        # Every name is one the router knows (see _without_unknown_model).
        choice, request = bridge.request_for(transcribe)
        _LOGGER.debug(
            "Utterance with %s %s (language %r)",
            choice.engine.title,
            choice.model.name,
            choice.language,
        )
        slot = self._outbox.slot()
        if before_audio:
            self._hold.hold(slot)
        # Put here, not by the utterance's task, so that it always comes first.
        slot.put(TranscriptStart(language=choice.language).event())
        utterance = Utterance.start(bridge, choice, request, slot, client=self._client_name)
        utterance.when_done(self._forget)
        self._current = utterance
        self._live.append(utterance)

    def _without_unknown_model(self, transcribe: Transcribe) -> Transcribe:
        """A model name not offered here is dropped, and the language chooses, as the
        reference server (wyoming-faster-whisper) ignores a name it does not have: clients
        send names of their own (wyoming-openai-gateway's default is ``whisper-1``), and
        many read nothing but a transcript, so an error would leave them waiting."""
        name = transcribe.name
        if not name or self._bridge.router.knows(name):
            return transcribe
        if not self._said_unknown_model:
            # Once per connection: a client sends its name with every request.
            self._said_unknown_model = True
            # Through the server's throttle too: a client can open many connections.
            self._warn(
                "Client %s asked for model %s, which is not offered here: serving it by its "
                "language, as a request that names no model (said once per connection)",
                self._client_name,
                quoted(name),
                level=logging.INFO,
                # Every connection's while clients come at a human pace.
                burst=TRANSCRIPT_LINES,
            )
        return dataclasses.replace(transcribe, name=None)

    def _forget(self, utterance: Utterance) -> None:
        if utterance in self._live:
            self._live.remove(utterance)
        if not self._bridge.ready:
            # Draining: this client's next request goes to another server.
            self.close_when_idle()

    async def _end_current(self, text: str) -> None:
        """End the request taking audio: with an error if it has not been answered (``text``),
        quietly if it has."""
        current, self._current = self._current, None
        if current is None:
            return
        if not current.finished and text:
            self._warn("Ending a request early from %s: %s", self._client_name, text)
            await current.abort(text, "protocol")
        else:
            await self._release(current)

    async def _release(self, utterance: Utterance) -> None:
        await utterance.cancel()
        self._forget(utterance)

    async def _fail_request(self, text: str, code: str) -> None:
        """End the current request with an error, whether or not it has started. A request
        already answered keeps its answer as its one final event."""
        current, self._current = self._current, None
        if current is not None and current.finished:
            _LOGGER.debug("Ignoring a bad event after the transcript: %s", text)
            self._current = current
            return
        if current is not None:
            await current.abort(text, code)
            self._refused = True
            return
        self._refuse(text, code)

    def _refuse(self, text: str, code: str, *, before_audio: bool = False) -> None:
        """Answer the request with an error and ignore its audio until its audio-stop."""
        self._refused = True
        slot = self._outbox.slot()
        if before_audio:
            self._hold.hold(slot)
        try:
            slot.put(Error(text=text, code=code).event())
        finally:
            slot.close()
        self._bridge.activity.request_done(RequestRecord.refused(self._client_name, code, text))

    def _grace_over(self) -> None:
        # Nothing of a request has come from the client since its transcribe (any of it
        # releases the hold), so no request in hand means the answer kept back was a
        # refusal: it has gone out on its own, and the next audio-start is a new request.
        if self._current is None:
            self._refused = False
