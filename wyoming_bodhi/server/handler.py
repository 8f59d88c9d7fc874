"""The Wyoming event state machine for one client connection; thin by design.

It owns at most one utterance taking audio and one whose audio has ended and whose answer is
on its way. An utterance starts at ``transcribe`` or ``audio-start`` (or, leniently, at a first
``audio-chunk``), takes audio until ``audio-stop``, and always ends in a ``transcript`` or an
``error`` event. The connection is read all the while, so a client that goes away is noticed
at once and its Bodhi session closed. A client that misuses the protocol gets an ``error``
event; one that breaks the framing loses its connection; neither disturbs anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from wyoming.asr import Transcribe, TranscriptStart
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler

from ..engines.base import UnknownModelError
from ..pipeline.audio import AudioFormat, UnsupportedAudioFormat
from ..pipeline.bridge import Bridge
from ..pipeline.utterance import Utterance
from .wire import WireError, read_body, read_header

_LOGGER = logging.getLogger(__name__)

# Field bounds for transcribe: far beyond any real name, and each one is logged or echoed.
YIELD_AFTER = 0.005
"""Seconds of handling one client's events back to back before letting other clients run:
events already buffered are read without waiting, so a client sending large chunks in a
burst would otherwise hold the event loop for as long as it has data."""

MAX_NAME_CHARS = 200
MAX_LANGUAGE_CHARS = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class ProtocolError(ValueError):
    """The client sent an event this protocol does not allow; its request gets an error."""


class BodhiEventHandler(AsyncEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        bridge: Bridge,
        *,
        idle_timeout: float | None = None,
        wait_at_end: bool = False,
    ) -> None:
        super().__init__(reader, writer)
        self._bridge = bridge
        self._idle_timeout = idle_timeout
        self._wait_at_end = wait_at_end
        """At the end of the input, let answers on their way finish (stdio: the end of stdin
        is how a piped client says it has nothing more to send)."""
        self._utterance: Utterance | None = None
        """The request taking audio."""
        self._finishing: Utterance | None = None
        """The request whose audio has ended, its answer on its way."""
        # After a refused request, its audio is ignored until its audio-stop.
        self._refused = False
        self._peer = writer.get_extra_info("peername")

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
                    _LOGGER.warning("Closing the connection from %s: %s", self._peer, err)
                    break
                if event is None:
                    if self._wait_at_end:
                        await self.wait_until_idle()
                    break
                try:
                    await self.handle_event(event)
                except ProtocolError as err:
                    _LOGGER.warning("Bad %r event from %s: %s", event.type, self._peer, err)
                    await self._fail_request(f"bad {event.type} event: {err}", "protocol")
                except (KeyError, TypeError, ValueError) as err:
                    _LOGGER.warning("Bad %r event from %s: %r", event.type, self._peer, err)
                    await self._fail_request(f"malformed {event.type} event: {err!r}", "protocol")
                except ConnectionError:
                    raise
                except Exception:
                    # A bug of ours must cost one request, not the connection or the server.
                    _LOGGER.exception("Internal error handling a %r event", event.type)
                    await self._fail_request(
                        "internal error in the speech-to-text server", "internal"
                    )
        except ConnectionError as err:
            _LOGGER.debug("Connection from %s ended: %r", self._peer, err)
        finally:
            await self.disconnect()
            self.writer.close()

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
        if AudioChunk.is_type(event.type):
            await self._on_audio_chunk(AudioChunk.from_event(event))
        elif Transcribe.is_type(event.type):
            await self._on_transcribe(transcribe_from(event))
        elif AudioStart.is_type(event.type):
            await self._on_audio_start(AudioStart.from_event(event))
        elif AudioStop.is_type(event.type):
            await self._on_audio_stop()
        elif Describe.is_type(event.type):
            await self.write_event(self._bridge.info_event)
        else:
            _LOGGER.debug("Ignoring a %r event", event.type)
        return True

    async def disconnect(self) -> None:
        for utterance in (self._utterance, self._finishing):
            if utterance is None:
                continue
            if utterance.finished:
                # Home Assistant hangs up as soon as it has the transcript: all is well.
                _LOGGER.debug("Client %s left after its transcript", self._peer)
            else:
                _LOGGER.info(
                    "Client %s went away before its transcript; closing its Bodhi session",
                    self._peer,
                )
            await utterance.cancel()
        self._utterance = self._finishing = None

    @property
    def busy(self) -> bool:
        """A request is in progress: it has not been answered yet."""
        return any(
            utterance is not None and not utterance.finished
            for utterance in (self._utterance, self._finishing)
        )

    async def wait_until_idle(self) -> None:
        for utterance in (self._finishing, self._utterance):
            if utterance is not None:
                await utterance.wait()

    async def shut_down(self) -> None:
        """The server is stopping: end what is in flight with an error, close the connection."""
        for utterance in (self._finishing, self._utterance):
            if utterance is not None:
                await utterance.abort(
                    "the speech-to-text server is shutting down; try again", "shutdown"
                )
        await self.stop()

    # -- events --------------------------------------------------------------------------------

    async def _on_transcribe(self, transcribe: Transcribe) -> None:
        utterance, self._utterance = self._utterance, None
        if utterance is not None:
            if not utterance.finished:
                # A new request replaces one that never got its audio-stop.
                _LOGGER.warning("transcribe received during an utterance; starting over")
                await utterance.abort(
                    "a new transcribe arrived before audio-stop; the earlier request was dropped",
                    "protocol",
                )
            # Answered early (endpointing): the client need not send audio-stop.
            await utterance.cancel()
        self._refused = False
        await self._start(transcribe)

    async def _on_audio_start(self, start: AudioStart) -> None:
        if self._refused:
            return
        try:
            AudioFormat(start.rate, start.width, start.channels).validate()
        except UnsupportedAudioFormat as err:
            await self._fail_request(str(err), "audio-format")
            return
        if self._utterance is None:
            await self._start(None)

    async def _on_audio_chunk(self, chunk: AudioChunk) -> None:
        if self._refused:
            return
        if self._utterance is None:
            # Lenient: audio without audio-start still starts an utterance.
            await self._start(None)
        if self._utterance is None:
            return
        try:
            await self._utterance.add_audio(chunk.audio, chunk.rate, chunk.width, chunk.channels)
        except UnsupportedAudioFormat as err:
            await self._fail_request(str(err), "audio-format")

    async def _on_audio_stop(self) -> None:
        utterance, self._utterance = self._utterance, None
        refused, self._refused = self._refused, False
        if utterance is None:
            if not refused:
                # Nothing was asked; still answer, so the client does not wait forever.
                await self.write_event(
                    Error(text="audio-stop without an utterance", code="protocol").event()
                )
            return
        if utterance.finished:
            # Already answered (endpointing): only Bodhi's clean-up is left; cut it short.
            await utterance.cancel()
            return
        utterance.end_audio()
        # The answer is written when it comes; meanwhile the connection is read, so a client
        # that leaves is noticed.
        self._finishing = utterance

    async def _start(self, transcribe: Transcribe | None) -> None:
        bridge = self._bridge
        finishing, self._finishing = self._finishing, None
        if finishing is not None:
            # Answers go out in the order the requests came; Bodhi's clean-up after an answer
            # is not waited for.
            await finishing.wait_answered()
            await finishing.cancel()
        if bridge.shutting_down:
            await self._refuse("the speech-to-text server is shutting down; try again", "shutdown")
            return
        if bridge.active_utterances >= bridge.settings.max_sessions:
            _LOGGER.warning(
                "Refusing a request: %d utterances in flight (max_sessions)",
                bridge.active_utterances,
            )
            await self._refuse(
                f"the speech-to-text server is busy with {bridge.active_utterances} requests "
                "(max_sessions); try again shortly",
                "busy",
            )
            return
        try:
            choice, request = bridge.request_for(transcribe)
        except UnknownModelError as err:
            _LOGGER.warning("Refusing a request: %s", err)
            await self._refuse(str(err), "unknown-model")
            return
        _LOGGER.debug(
            "Utterance with %s %s (language %r)",
            choice.engine.title,
            choice.model.name,
            choice.language,
        )
        # Written here, not by the utterance's task, so that it always comes first.
        await self.write_event(TranscriptStart(language=choice.language).event())
        self._utterance = Utterance.start(bridge, choice, request, self.write_event)

    async def _fail_request(self, text: str, code: str) -> None:
        """End the current request with an error, whether or not it has started."""
        utterance, self._utterance = self._utterance, None
        if utterance is not None and not utterance.finished:
            await utterance.abort(text, code)
            self._refused = True
            return
        if utterance is not None:
            await utterance.cancel()
        await self._refuse(text, code)

    async def _refuse(self, text: str, code: str) -> None:
        """Answer the request with an error and ignore its audio until its audio-stop."""
        self._refused = True
        await self.write_event(Error(text=text, code=code).event())


# -- checking what clients send -----------------------------------------------------------------


def _text(data: dict[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ProtocolError(f"{key} is longer than {limit} characters")
    if _SURROGATE.search(value):
        raise ProtocolError(f"{key} is not valid Unicode")
    return value


def _names(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        # One name, not one name per character.
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"{key} must be a list of strings")
    if any(_SURROGATE.search(item) for item in value):
        raise ProtocolError(f"{key} is not valid Unicode")
    return value


def transcribe_from(event: Event) -> Transcribe:
    """``Transcribe.from_event``, but every field is checked: a wrong type is the client's
    mistake (a ``protocol`` error), not a crash further on."""
    data = event.data or {}
    context = data.get("context")
    if context is not None and not isinstance(context, dict):
        raise ProtocolError(f"context must be an object, not {type(context).__name__}")
    return Transcribe(
        name=_text(data, "name", MAX_NAME_CHARS),
        language=_text(data, "language", MAX_LANGUAGE_CHARS),
        context=context,
        vad_sensitivity=_text(data, "vad_sensitivity", MAX_LANGUAGE_CHARS),
        transcript_names=_names(data, "transcript_names"),
        transcript_terms=_names(data, "transcript_terms"),
    )
