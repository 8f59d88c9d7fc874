"""Talk to the engine itself, with no Wyoming server in between (``--direct``).

The request runs through the same pipeline as one the server takes — conversion to the
engine's format, paced frames, retries, deadlines, transcript assembly — in this process,
with the credentials the server would use (environment, ``*_FILE``, config file). What a
Wyoming client never sees comes out too: the partial text of the phrase being spoken.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

import aiohttp
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.error import Error
from wyoming.event import Event

from ..engines.base import Phrase, PhraseKind
from ..engines.websocket import engine_http
from ..pipeline.bridge import Bridge, Choice, Request, UnknownModelError
from ..pipeline.utterance import Utterance
from ..redaction import Secrets, redact_logging
from ..settings import TRY_DEMO, Settings, SettingsError, load_client_settings
from .cli import UsageError


def engine_settings(
    config: str | None, notice: Callable[[str], None], flag: str = "--direct"
) -> Settings:
    """The server's settings, for a client that talks to an engine itself (``flag``:
    ``--direct``, ``--rest``): its environment, ``*_FILE`` secrets and config file. Each old
    setting name used is said once through ``notice``, as the server logs it; every secret is
    blanked out of the log lines shown from here on (``--debug``'s). Raises
    :class:`UsageError`, also in demo mode: the bundled simulators run in the server, and
    the demo's key would go to the real engine."""
    instead = f"or start wyoming-bodhi --demo and transcribe through it, without {flag}"
    try:
        settings = load_client_settings(config, os.environ)
    except SettingsError as err:
        raise UsageError(str(err).replace(TRY_DEMO, instead)) from None
    if settings.demo:
        raise UsageError(
            f"{flag} talks to the engine itself, and demo mode has no engine to talk to: "
            f"unset BODHI_DEMO (or demo in the config file), {instead}"
        )
    for deprecation in settings.deprecations:
        notice(deprecation)
    redact_logging(Secrets(settings.secrets))
    return settings


@dataclass(frozen=True, slots=True)
class Partial:
    """The text so far of the phrase being spoken; the next one replaces it."""

    text: str


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished phrase."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The whole transcript: the request is over."""

    text: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The request ended in an error: its Wyoming code and message."""

    code: str
    text: str


Update = Partial | Completed | Finished | Failed


class ClientRequest(Protocol):
    """One request as a client drives it, direct or through a Wyoming server."""

    @property
    def finished(self) -> bool:
        """The final update is out: more audio would go nowhere."""

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None: ...

    async def end_audio(self) -> None: ...

    def updates(self) -> AsyncIterator[Update]:
        """Every update, in order, up to and including the final one."""
        ...

    async def close(self) -> None: ...


class _UpdateSink:
    """The utterance's Wyoming events, as updates."""

    def __init__(self, updates: asyncio.Queue[Update | None]) -> None:
        self._updates = updates

    def put(self, event: Event) -> None:
        if TranscriptChunk.is_type(event.type):
            text = TranscriptChunk.from_event(event).text.strip()
            self._updates.put_nowait(Completed(text))
        elif Transcript.is_type(event.type):
            self._updates.put_nowait(Finished(Transcript.from_event(event).text))
        elif Error.is_type(event.type):
            error = Error.from_event(event)
            self._updates.put_nowait(Failed(error.code or "error", error.text))

    def close(self) -> None:
        self._updates.put_nowait(None)


class DirectRequest:
    """One request: feed audio, end it, read :meth:`updates` until :class:`Finished` or
    :class:`Failed`."""

    def __init__(self, bridge: Bridge, transcribe: Transcribe) -> None:
        try:
            choice, request = bridge.request_for(transcribe)
        except UnknownModelError as err:
            raise UsageError(str(err)) from None
        self.engine_title = choice.engine.title
        self.model = choice.model.name
        self._updates: asyncio.Queue[Update | None] = asyncio.Queue()
        self._utterance = Utterance.start(
            bridge,
            choice,
            dataclasses.replace(request, partials=True),
            sink=_UpdateSink(self._updates),
            on_phrase=self._on_phrase,
            client="direct",
        )

    def _on_phrase(self, phrase: Phrase) -> None:
        if phrase.kind is PhraseKind.PARTIAL and phrase.text.strip():
            self._updates.put_nowait(Partial(" ".join(phrase.text.split())))
        elif phrase.kind is PhraseKind.COMPLETE:
            # The phrase is over, whether or not it is kept (too little confidence, say).
            self._updates.put_nowait(Partial(""))

    # -- the client's side ---------------------------------------------------------------

    async def add_audio(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        await self._utterance.add_audio(audio, rate, width, channels)

    async def end_audio(self) -> None:
        self._utterance.end_audio()

    @property
    def finished(self) -> bool:
        """The final update is out: more audio would go nowhere."""
        return self._utterance.finished

    async def updates(self) -> AsyncIterator[Update]:
        """Every update, in order, up to and including the final one."""
        while (update := await self._updates.get()) is not None:
            yield update
            if isinstance(update, Finished | Failed):
                return

    async def close(self) -> None:
        """Closes the engine's session, whether or not the request is over."""
        await self._utterance.cancel()


class DirectEngine:
    """The configured engines, ready for requests: ``async with DirectEngine(settings)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: aiohttp.ClientSession | None = None
        self._bridge: Bridge | None = None

    async def __aenter__(self) -> Self:
        self._http = engine_http(self.settings.secrets)
        try:
            self._bridge = Bridge(self.settings, self._http)
        except SettingsError as err:
            # A plugin that fails to build its engine.
            await self._http.close()
            raise UsageError(str(err)) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.close()

    def check(self, transcribe: Transcribe) -> None:
        """:class:`UsageError` if the request cannot be served as asked: a model no engine
        has, or a language no configured engine speaks (the server would fall back to its
        default model; a person at a terminal should be told instead)."""
        self.prepare(transcribe)

    def prepare(self, transcribe: Transcribe) -> tuple[Choice, Request]:
        """The engine and what to ask it, as the server would choose them, for a caller that
        drives the engine itself (``--rest``); :class:`UsageError` as :meth:`check`."""
        assert self._bridge is not None, "use DirectEngine in an async with block"
        try:
            prepared = self._bridge.request_for(transcribe)
        except UnknownModelError as err:
            raise UsageError(str(err)) from None
        language, engines = transcribe.language, self._bridge.engines
        if (
            language
            and not transcribe.name
            and not any(engine.model_for_language(language) for engine in engines)
        ):
            spoken = sorted({tag for e in engines for model in e.models for tag in model.languages})
            raise UsageError(
                f"no configured engine speaks {language!r}; languages: {', '.join(spoken)}"
            )
        return prepared

    def request(self, transcribe: Transcribe) -> DirectRequest:
        """Start a request: the engine's connection opens now, while audio comes."""
        assert self._bridge is not None, "use DirectEngine in an async with block"
        return DirectRequest(self._bridge, transcribe)
