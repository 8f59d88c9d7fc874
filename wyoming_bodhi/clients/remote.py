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
from wyoming.event import Event
from wyoming.info import Describe, Info

from .connection import Connector, ServerProblem, connect, read_failure
from .direct import Completed, Failed, Finished, Update

WRITE_TIMEOUT = 5.0
"""A server that takes no audio for this long has stopped reading."""
CLOSE_TIMEOUT = 1.0


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
    except Exception as err:
        raise read_failure(uri, err) from None
    finally:
        await hang_up(client)
    raise ServerProblem(f"{uri} closed the connection without describing itself")


async def hang_up(client: AsyncClient) -> None:
    """Close the connection, at once if the server has stopped reading: a graceful close
    would wait for it to take what is still buffered."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await client.disconnect()
    except (TimeoutError, OSError):
        writer = getattr(client, "_writer", None)
        if writer is not None:
            writer.transport.abort()


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
            raise read_failure(uri, err) from None
        return cls(client, uri)

    @property
    def finished(self) -> bool:
        """The final update has come: more audio would go nowhere."""
        return self._finished

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        await self._write(AudioChunk(rate, width, channels, audio).event())

    async def end_audio(self) -> None:
        await self._write(AudioStop().event())

    async def _write(self, event: Event) -> None:
        if self._finished or self._broken:
            return
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                await self._client.write_event(event)
        except TimeoutError:
            # The server has stopped reading (frozen, or gone without closing): it will not
            # answer either, and the client must not wait on it for ever.
            self._broken = True
            self._end(
                Failed(
                    "connection",
                    f"{self._uri} stopped taking audio (nothing read for {WRITE_TIMEOUT:g} s)",
                )
            )
        except OSError:
            # The reader says why (an error event, or the close).
            self._broken = True

    async def updates(self) -> AsyncIterator[Update]:
        while True:
            update = await self._updates.get()
            yield update
            if isinstance(update, Finished | Failed):
                return

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await hang_up(self._client)

    async def _read(self) -> None:
        uri = self._uri
        try:
            while (event := await self._client.read_event()) is not None:
                if TranscriptChunk.is_type(event.type):
                    self._updates.put_nowait(Completed(_text(event.data).strip()))
                elif Transcript.is_type(event.type):
                    self._end(Finished(_text(event.data)))
                    return
                elif Error.is_type(event.type):
                    data = event.data or {}
                    code = str(data.get("code") or "error")
                    self._end(Failed(code, _text(data)))
                    return
        except Exception as err:
            problem = read_failure(uri, err)
            self._end(Failed(problem.code, str(problem)))
            return
        self._end(Failed("connection", f"{uri} closed the connection without a transcript"))

    def _end(self, update: Finished | Failed) -> None:
        self._finished = True
        self._updates.put_nowait(update)


def _text(data: dict[str, object] | None) -> str:
    """An event's ``text``; a server that sends something else has sent an invalid event."""
    text = (data or {}).get("text", "")
    if not isinstance(text, str):
        raise ValueError("text is not a string")
    return text
