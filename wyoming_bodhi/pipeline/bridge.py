"""What every connection shares: settings, the engines, routing, the HTTP session."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from wyoming.asr import Transcribe, VadSensitivity

from ..engines import registry
from ..engines.base import Engine, Hotword, Request, UnknownModelError
from ..engines.errors import ErrorTable
from ..engines.plugin import EngineContext
from ..logs import Throttled
from ..redaction import Secrets
from ..settings import Settings
from .activity import Observers
from .hotwords import merge_hotwords
from .inflight import SHUTDOWN, SHUTDOWN_TEXT, InFlight
from .routing import Choice, Router

_LOGGER = logging.getLogger(__name__)


def _no_names() -> Sequence[str]:
    return ()


@dataclass
class Bridge:
    settings: Settings
    http: aiohttp.ClientSession
    hass_names: Callable[[], Sequence[str]] = _no_names
    """The latest Home Assistant names (cached; never waits)."""
    active_utterances: int = 0
    """Utterances in flight, across every connection (for max_sessions)."""
    requests: InFlight = field(default_factory=InFlight)
    """Every request in flight, Wyoming's and the page's microphone's: what a stop ends."""
    draining: bool = False
    """A stop has begun: not ready (``/readyz`` says 503), though still serving."""
    shutting_down: bool = False
    """No new request is taken: each is answered with a ``shutdown`` error."""
    engines: list[Engine] = field(default_factory=list)
    """The engines the settings configure, unless given (tests give scripted ones)."""
    activity: Observers = field(default_factory=Observers)
    """Told each request's outcome (the status page, /metrics)."""
    warnings: Throttled = field(default_factory=Throttled)
    """The server's warnings that a client or an engine can repeat (a bad event, a refused
    request, a failed one): each kind at most once per interval, with a count."""
    router: Router = field(init=False)
    error_codes: dict[str, frozenset[str]] = field(init=False)
    """Each engine's error codes, a closed set (its error table's): the label values of
    ``/metrics`` and the status page's counts."""
    ssl_context: ssl.SSLContext | None = field(init=False, default=None)
    """Adds the user's CA (--ca-file) to the system's; verification is never off."""

    def __post_init__(self) -> None:
        settings = self.settings
        self.ssl_context = settings.ssl_context()
        if not self.engines:
            context = EngineContext(self.http, self.ssl_context, settings.model)
            self.engines = [
                registry.build(entry.plugin, entry.settings, context)
                for entry in settings.configured
            ]
        self.router = Router(self.engines, settings.model, self.warnings)
        tables = {entry.plugin.name: entry.plugin.errors for entry in settings.engines}
        self.error_codes = {
            # An engine given without a plugin (a test's) has the codes every engine has.
            e.name: frozenset(tables.get(e.name, ErrorTable(e.name, e.title, "", {})).codes())
            for e in self.engines
        }
        # Blanked out of anything an engine says before it is logged or passed on: every
        # value any engine (or the core) declares secret.
        self.secrets = settings.secrets
        self.blanking = Secrets(self.secrets)
        """The same, for the text of phrases: a server that quotes a key in a transcript
        (escaped in its JSON, where the blanking of what arrives cannot see it)."""

    @property
    def ready(self) -> bool:
        """Ready for new requests: no stop has begun. At max_sessions it still is: one more
        request is answered ``busy`` at once, which says more than no answer at all."""
        return not (self.draining or self.shutting_down)

    def refusal(self) -> tuple[str, str] | None:
        """Why a new request cannot start now, as (message, code); None if it can."""
        if self.shutting_down:
            return SHUTDOWN_TEXT, SHUTDOWN
        if self.active_utterances >= self.settings.max_sessions:
            self.warnings.warning(
                _LOGGER,
                "Refusing a request: %d utterances in flight (max_sessions)",
                self.active_utterances,
            )
            return (
                f"the speech-to-text server is busy with {self.active_utterances} requests "
                "(max_sessions); try again shortly",
                "busy",
            )
        return None

    def request_for(self, transcribe: Transcribe | None) -> tuple[Choice, Request]:
        """The engine and what to ask it; raises :class:`UnknownModelError`."""
        settings = self.settings
        choice = self.router.choose(transcribe)
        vad = transcribe.vad_sensitivity if transcribe is not None else None
        hotwords: tuple[Hotword, ...] = ()
        policy = choice.engine.capabilities.hotwords
        if policy is not None:
            hotwords = merge_hotwords(
                policy,
                names=(transcribe.transcript_names or ()) if transcribe else (),
                static=settings.hotwords,
                hass_names=self.hass_names(),
                terms=(transcribe.transcript_terms or ()) if transcribe else (),
            )
        request = Request(
            model=choice.model,
            language=choice.language,
            hotwords=hotwords,
            vad_sensitivity=(vad.value if isinstance(vad, VadSensitivity) else vad) or None,
            # Partials are only read by endpointing (has anything been said yet?) and the
            # debug log.
            partials=settings.endpointing or settings.debug,
        )
        return choice, request


__all__ = ["Bridge", "Choice", "Request", "UnknownModelError"]
