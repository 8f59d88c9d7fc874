"""The Wyoming event state machine for one client connection; thin by design.

It owns at most one live :class:`Utterance`. An utterance starts at ``transcribe`` or
``audio-start`` (or, leniently, at a first ``audio-chunk``), takes audio until
``audio-stop``, and always ends in a ``transcript`` or an ``error`` event; then the
connection is ready for the next one. A client that misuses the protocol gets an ``error``
event; one that breaks the framing loses its connection; neither disturbs anyone else.
"""

from __future__ import annotations

import asyncio
import logging

from wyoming.asr import Transcribe, TranscriptStart
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler

from .audio import AudioFormat, UnsupportedAudioFormat
from .bridge import Bridge
from .catalog import UnknownModelError
from .utterance import Utterance
from .wire import WireError, read_event

_LOGGER = logging.getLogger(__name__)


class BodhiEventHandler(AsyncEventHandler):
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bridge: Bridge
    ) -> None:
        super().__init__(reader, writer)
        self._bridge = bridge
        self._utterance: Utterance | None = None
        # After a refused request, its audio is ignored until its audio-stop.
        self._refused = False
        self._peer = writer.get_extra_info("peername")

    async def run(self) -> None:
        """Like wyoming's loop, but with bounded reads, and no event can crash it."""
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await read_event(self.reader)
                except WireError as err:
                    _LOGGER.warning("Closing the connection from %s: %s", self._peer, err)
                    break
                if event is None:
                    break
                try:
                    await self.handle_event(event)
                except (KeyError, TypeError, ValueError) as err:
                    _LOGGER.warning("Bad %s event from %s: %r", event.type, self._peer, err)
                    await self._fail_request(f"malformed {event.type} event: {err!r}", "protocol")
                except (ConnectionError, RuntimeError):
                    raise
                except Exception:
                    # A bug of ours must cost one request, not the connection or the server.
                    _LOGGER.exception("Internal error handling a %s event", event.type)
                    await self._fail_request(
                        "internal error in the speech-to-text server", "internal"
                    )
        except (ConnectionError, RuntimeError) as err:
            _LOGGER.debug("Connection from %s ended: %s", self._peer, err)
        finally:
            await self.disconnect()
            self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        if AudioChunk.is_type(event.type):
            await self._on_audio_chunk(AudioChunk.from_event(event))
        elif Transcribe.is_type(event.type):
            await self._on_transcribe(Transcribe.from_event(event))
        elif AudioStart.is_type(event.type):
            await self._on_audio_start(AudioStart.from_event(event))
        elif AudioStop.is_type(event.type):
            await self._on_audio_stop()
        elif Describe.is_type(event.type):
            await self.write_event(self._bridge.info_event)
        else:
            _LOGGER.debug("Ignoring a %s event", event.type)
        return True

    async def disconnect(self) -> None:
        if self._utterance is not None:
            _LOGGER.debug("Client disconnected mid-utterance; closing its Bodhi session")
            await self._utterance.cancel()
            self._utterance = None

    @property
    def busy(self) -> bool:
        """An utterance is in flight and has not answered yet."""
        return self._utterance is not None and not self._utterance.finished

    async def wait_until_idle(self) -> None:
        if self._utterance is not None:
            await self._utterance.wait()

    async def shut_down(self) -> None:
        """The server is stopping: end what is in flight with an error, close the connection."""
        if self._utterance is not None:
            await self._utterance.abort(
                "the speech-to-text server is shutting down; try again", "shutdown"
            )
        await self.stop()

    # -- events --------------------------------------------------------------------------------

    async def _on_transcribe(self, transcribe: Transcribe) -> None:
        if self._utterance is not None:
            if self._utterance.finished:
                # Answered early (endpointing): the client need not send audio-stop.
                await self._utterance.cancel()
            else:
                # A new request replaces one that never got its audio-stop.
                _LOGGER.warning("transcribe received during an utterance; starting over")
                await self._utterance.abort(
                    "a new transcribe arrived before audio-stop; the earlier request was dropped",
                    "protocol",
                )
            self._utterance = None
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
        await utterance.end_audio()
        # Bounded: the Bodhi connect timeout and retries, the pacing of queued audio, then
        # the response timeout.
        await utterance.wait()

    async def _start(self, transcribe: Transcribe | None) -> None:
        bridge = self._bridge
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
            request = bridge.request_for(transcribe)
        except UnknownModelError as err:
            _LOGGER.warning("Refusing a request: %s", err)
            await self._refuse(str(err), "unknown-model")
            return
        choice = request.choice
        _LOGGER.debug("Utterance with %s (language %s)", choice.model.name, choice.language)
        # Written here, not by the utterance's task, so that it always comes first.
        await self.write_event(TranscriptStart(language=choice.language).event())
        self._utterance = Utterance.start(bridge, request, self.write_event)

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
