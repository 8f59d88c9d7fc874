"""The Wyoming event state machine for one client connection; thin by design.

It owns at most one live :class:`Utterance`. An utterance starts at ``transcribe`` or
``audio-start`` (or, leniently, at a first ``audio-chunk``), takes audio until
``audio-stop``, and always ends in a ``transcript`` or an ``error`` event; then the
connection is ready for the next one.
"""

from __future__ import annotations

import asyncio
import logging

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler

from .audio import UnsupportedAudioFormat
from .bridge import Bridge
from .catalog import UnknownModelError
from .utterance import Utterance

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

    async def handle_event(self, event: Event) -> bool:
        if AudioChunk.is_type(event.type):
            await self._on_audio_chunk(AudioChunk.from_event(event))
        elif Transcribe.is_type(event.type):
            await self._on_transcribe(Transcribe.from_event(event))
        elif AudioStart.is_type(event.type):
            if self._utterance is None and not self._refused:
                await self._start(None)
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

    async def _start(self, transcribe: Transcribe | None) -> None:
        try:
            request = self._bridge.request_for(transcribe)
        except UnknownModelError as err:
            _LOGGER.warning("Refusing a request: %s", err)
            self._refused = True
            await self.write_event(Error(text=str(err), code="unknown-model").event())
            return
        choice = request.choice
        _LOGGER.debug("Utterance with %s (language %s)", choice.model.name, choice.language)
        self._utterance = Utterance.start(self._bridge, request, self.write_event)

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
            await self._utterance.abort(str(err), "audio-format")

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
        # Bounded: the Bodhi connect timeout, the pacing of queued audio, then the
        # response timeout.
        await utterance.wait()
