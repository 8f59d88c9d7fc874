"""A scripted engine in the test process: fakes the engine interface, not the network.

The pipeline's own logic (endpointing, keepalive, retries with replay, limits) is tested
against it in milliseconds; the simulators prove the wire protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from wyoming_bodhi.engines.base import (
    AudioSpec,
    Capabilities,
    EngineError,
    Model,
    Phrase,
    PhraseKind,
    Request,
)

MODEL = Model("fake-model", "fake", ("xx", "xx-XX"), "a scripted engine", "v1")
AUDIO_8K = AudioSpec(rate=8000, frame_ms=(50, 500))
ENDS_PHRASES = Capabilities(ends_phrases=True)


@dataclass
class FakeSession:
    """Says each scripted phrase once ``after_frames`` frames have arrived; END after the end."""

    script: Sequence[tuple[int, str]]
    """(frames received before it, completed text), in order."""
    frames: list[bytes] = field(default_factory=list)
    ended: bool = False
    closed: bool = False
    skipped_messages: int = 0
    closing: asyncio.Event | None = None
    """If given, :meth:`close` starts (``closing_started``), then waits for it: an engine
    slow to close its session."""
    closing_started: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_audio(self, frame: bytes) -> None:
        if self.closed:
            raise EngineError("closed", code="fake-connection-lost", kind="connection-lost")
        self.frames.append(frame)
        self._changed.set()

    async def send_end(self) -> None:
        self.ended = True
        self._changed.set()

    async def phrases(self) -> AsyncIterator[Phrase]:
        said = 0
        while True:
            while said < len(self.script) and len(self.frames) >= self.script[said][0]:
                yield Phrase(PhraseKind.COMPLETE, self.script[said][1], segment=said)
                said += 1
            if self.ended:
                yield Phrase(PhraseKind.END)
                return
            self._changed.clear()
            await self._changed.wait()

    async def close(self) -> None:
        self.closing_started = True
        if self.closing is not None:
            await self.closing.wait()
        self.closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@dataclass
class FakeEngine:
    script: Sequence[tuple[int, str]] = ()
    failures: list[EngineError] = field(default_factory=list)
    """Raised by the next connects, in order, before one succeeds."""
    audio: AudioSpec = AUDIO_8K
    capabilities: Capabilities = ENDS_PHRASES
    name: str = "fake"
    title: str = "Fake"
    vendor: str = "Nobody"
    vendor_url: str = "https://example.invalid"
    url: str = "fake://"
    sessions: list[FakeSession] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    connects: int = 0
    closing: asyncio.Event | None = None
    """Given to each session: see :attr:`FakeSession.closing`."""

    @property
    def models(self) -> Sequence[Model]:
        return [MODEL]

    def model_for_language(self, tag: str) -> Model | None:
        return MODEL if tag.startswith("xx") else None

    async def connect(self, request: Request, *, timeout: float) -> FakeSession:
        self.connects += 1
        self.requests.append(request)
        if self.failures:
            raise self.failures.pop(0)
        session = self.new_session()
        self.sessions.append(session)
        return session

    def new_session(self) -> FakeSession:
        return FakeSession(self.script, closing=self.closing)

    def describe_credentials(self) -> str:
        return "none"
