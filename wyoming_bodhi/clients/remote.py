"""A request to a Wyoming speech-to-text server, read as the same updates a direct request
gives, so a client's loop does not care which one it drives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info

from .connection import Connector, ServerProblem, connect, reason
from .direct import Completed, Failed, Finished, Update


async def describe(connector: Connector, uri: str, timeout: float) -> Info:
    """The server's Info; :class:`ServerProblem` if it cannot be reached or does not say."""
    client = await connect(connector, uri, 0.0, timeout)
    try:
        async with asyncio.timeout(timeout):
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    return Info.from_event(event)
                if Error.is_type(event.type):
                    error = Error.from_event(event)
                    raise ServerProblem(
                        f"{uri} answered with an error ({error.code}): {error.text}"
                    )
    except TimeoutError:
        raise ServerProblem(f"{uri} did not describe itself within {timeout:g} s") from None
    except ConnectionError as err:
        raise ServerProblem(f"lost the connection to {uri}: {reason(err)}") from None
    finally:
        with contextlib.suppress(OSError):
            await client.disconnect()
    raise ServerProblem(f"{uri} closed the connection without describing itself")


class WyomingRequest:
    """One ``transcribe`` request on its own connection (servers such as
    wyoming-faster-whisper close the connection after each transcript)."""

    def __init__(self, client: AsyncClient, uri: str) -> None:
        self._client = client
        self._uri = uri
        self._updates: asyncio.Queue[Update] = asyncio.Queue()
        self._finished = False
        self._broken = False
        self._reader = asyncio.create_task(self._read(), name="wyoming reader")

    @classmethod
    async def open(
        cls,
        connector: Connector,
        uri: str,
        transcribe: Transcribe,
        audio: tuple[int, int, int],
        timeout: float,
    ) -> WyomingRequest:
        """Connect and start the request; ``audio`` is (rate, width, channels)."""
        client = await connect(connector, uri, 0.0, timeout)
        try:
            await client.write_event(transcribe.event())
            await client.write_event(AudioStart(*audio).event())
        except OSError as err:
            with contextlib.suppress(OSError):
                await client.disconnect()
            raise ServerProblem(f"lost the connection to {uri}: {reason(err)}") from None
        return cls(client, uri)

    @property
    def finished(self) -> bool:
        """The final update has come: more audio would go nowhere."""
        return self._finished

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        if self._finished or self._broken:
            return
        try:
            await self._client.write_event(AudioChunk(rate, width, channels, audio).event())
        except OSError:
            # The reader says why (an error event, or the close).
            self._broken = True

    async def end_audio(self) -> None:
        if self._finished or self._broken:
            return
        try:
            await self._client.write_event(AudioStop().event())
        except OSError:
            self._broken = True

    async def updates(self) -> AsyncIterator[Update]:
        while True:
            update = await self._updates.get()
            yield update
            if isinstance(update, Finished | Failed):
                return

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(OSError):
            await self._client.disconnect()

    async def _read(self) -> None:
        uri = self._uri
        try:
            while (event := await self._client.read_event()) is not None:
                if TranscriptChunk.is_type(event.type):
                    text = TranscriptChunk.from_event(event).text.strip()
                    self._updates.put_nowait(Completed(text))
                elif Transcript.is_type(event.type):
                    self._end(Finished(Transcript.from_event(event).text))
                    return
                elif Error.is_type(event.type):
                    error = Error.from_event(event)
                    self._end(Failed(error.code or "error", error.text))
                    return
        except (ConnectionError, OSError) as err:
            self._end(Failed("connection", f"lost the connection to {uri}: {reason(err)}"))
            return
        self._end(Failed("connection", f"{uri} closed the connection without a transcript"))

    def _end(self, update: Finished | Failed) -> None:
        self._finished = True
        self._updates.put_nowait(update)
