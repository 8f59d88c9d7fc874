"""The core's settings: every setting that is not an engine's, declared once.

These are read by the pipeline, the server, the web side and the clients as typed fields
(``settings.max_sessions``). Each engine declares its own settings in its package
(:class:`~wyoming_bodhi.engines.plugin.EngineSpec`); :mod:`wyoming_bodhi.settings` puts them
all together.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Final

import voluptuous as vol

from ..declarations import Alias, setting, switch, validators
from ..declarations.validators import OptionalRanged, Ranged
from ..engines.base import Hotword

DEFAULT_URI: Final = "tcp://0.0.0.0:10300"
DEFAULT_LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EVENT_LOOPS: Final = ("auto", "asyncio", "uvloop")
DEFAULT_FRAME_MS: Final = 100
ENDPOINTING_FRAME_MS: Final = 50
"""Frame lengths when ``chunk_ms`` is unset (see :meth:`CoreSettings.frame_ms`)."""
MAX_HOTWORD_SCORE: Final = 10.0
"""A sanity bound; an engine may take less."""

PLACEHOLDERS: Final = frozenset({"your-long-lived-access-token"})
"""What the example config file holds in place of a real token."""


def parse_hotword(text: str) -> Hotword:
    """``batti`` → no score (the engine's default); ``batti:2.5`` → 2.5.

    Only a trailing number counts as a score, so ``10:30 alarm`` stays one phrase.
    """
    phrase, sep, tail = text.rpartition(":")
    if sep:
        try:
            return Hotword(phrase.strip(), optional_score(tail.strip()))
        except ValueError as err:
            if "score must" in str(err):
                raise
    return Hotword(text.strip())


def hotword_list(value: Any) -> tuple[Hotword, ...]:
    """``PHRASE[:SCORE]`` strings (or ``{phrase, score}`` mappings in a file)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.replace("\n", ";").split(";") if part.strip()]
    if not isinstance(value, list | tuple):
        raise vol.Invalid("expected a list of PHRASE[:SCORE]")
    hotwords = []
    for item in value:
        try:
            if isinstance(item, dict):
                hotword = Hotword(str(item["phrase"]).strip(), optional_score(item.get("score")))
            else:
                hotword = parse_hotword(str(item))
        except (KeyError, ValueError) as err:
            raise vol.Invalid(f"bad hotword {item!r}: {err}") from None
        if not hotword.phrase:
            raise vol.Invalid(f"bad hotword {item!r}: empty phrase")
        hotwords.append(hotword)
    return tuple(hotwords)


def optional_score(value: Any) -> float | None:
    if value is None or value == "":
        return None
    score = float(value)
    if not 0 < score <= MAX_HOTWORD_SCORE:
        raise ValueError(f"score must be above 0 and at most {MAX_HOTWORD_SCORE:g}")
    return score


def _model_name(value: Any) -> str:
    """A model's name; empty is unset (resolved by the checks: the first configured engine's
    first model)."""
    return str(value).strip()


# -- the settings, each declared once --------------------------------------------------------


@dataclass(frozen=True)
class CoreSettings:
    """Every setting that is not an engine's, read by the core as typed fields."""

    # -- where to serve, and how to log --
    uri: str = setting(
        DEFAULT_URI, validators.uri, "WYOMING_URI",
        "where to serve Wyoming: tcp://HOST:PORT, unix://PATH or stdio://",
        addon=False,
        why_not_addon="the add-on's start script fixes it",
    )  # fmt: skip
    zeroconf: str | None = setting(
        None, validators.zeroconf, "WYOMING_ZEROCONF",
        "advertise over mDNS for Home Assistant discovery, optionally under NAME",
        kind="optional",
        addon=False,
        why_not_addon="the Supervisor's discovery replaces it",
    )  # fmt: skip
    debug: bool = switch(
        "WYOMING_DEBUG", "log debug messages (never credentials)",
        title="Debug logging",
        description="Print DEBUG level messages to the add-on's log: each request's model, "
        "connection time, partial results and timings (never the credentials).",
    )  # fmt: skip
    log_format: str = setting(
        DEFAULT_LOG_FORMAT,
        validators.text,
        "WYOMING_LOG_FORMAT",
        "Python logging format",
        addon=False,
        why_not_addon="the add-on's log has its own format",
    )
    demo: bool = switch(
        "BODHI_DEMO", "serve through the bundled simulator: no account needed",
        title="Demo mode",
        description="Serve through the bundled simulators instead of the engines: no account "
        "or network needed. They do not recognise speech; each phrase comes back as a "
        "placeholder text, so you can try the whole chain with Home Assistant.",
    )  # fmt: skip
    http_uri: str | None = setting(
        None, validators.http_uri, "BODHI_HTTP_URI",
        "also serve the status page, /metrics, /healthz and /readyz over HTTP here, e.g. "
        "tcp://127.0.0.1:10301 (no password: see the README before binding beyond loopback)",
        addon=False,
        why_not_addon="the add-on serves the status page to ingress from its start script",
    )  # fmt: skip
    metrics_uri: str | None = setting(
        None, validators.http_uri, "BODHI_METRICS_URI",
        "serve only /healthz, /readyz and /metrics over HTTP here, for health checks and "
        "Prometheus, e.g. tcp://0.0.0.0:10302 (nothing on it costs money or shows a "
        "transcript)",
        addon=False,
        why_not_addon="the add-on serves /metrics and /readyz to ingress with the status page",
    )  # fmt: skip
    http_allow: tuple[str, ...] = setting(
        (), validators.networks, "BODHI_HTTP_ALLOW",
        "addresses (or networks, 172.30.32.0/24) allowed to reach the HTTP server; "
        "unset: any that can connect",
        kind="list",
        addon=False,
        why_not_addon="the add-on allows only the ingress proxy, from its start script",
    )  # fmt: skip
    http_hosts: tuple[str, ...] = setting(
        (), validators.host_names, "BODHI_HTTP_HOSTS",
        "names the HTTP server is reached by, beyond its addresses and localhost (a page "
        "under any other name is refused: DNS rebinding); * for any, behind a proxy that "
        "checks names itself",
        flag="--http-host", kind="list",
        addon=False,
        why_not_addon="the ingress proxy, its one peer, forwards any name Home Assistant has",
    )  # fmt: skip
    http_max_connections: int = setting(
        32, Ranged(int, 1, 10_000), "BODHI_HTTP_MAX_CONNECTIONS",
        "concurrent HTTP connections (live pages included); one more is answered 503 and "
        "closed",
        addon=False,
        why_not_addon="the ingress proxy is its one peer",
    )  # fmt: skip
    event_loop: str = setting(
        "auto", vol.In(EVENT_LOOPS), "WYOMING_EVENT_LOOP",
        "asyncio's own event loop, or uvloop (pip install uvloop); auto: "
        "uvloop when it is installed",
        addon=False,
        why_not_addon="the image decides: uvloop when it is installed (auto)",
    )  # fmt: skip

    # -- models --
    model: str = setting(
        "", _model_name, "BODHI_MODEL",
        "the default model (see --list-models; unset: the first model of the first engine "
        "configured)",
        # Any name, for the Supervisor: it must take a model added with an engine's setting
        # (extra_models); the server checks the name and stops, naming the valid ones.
        addon_type="str?",
        title="Default model",
        description="The model used when a request names no language, or a language no "
        "engine has a model for. When the assistant's language is another one an engine "
        "speaks, that language's model is used; when it is this model's language, this model "
        "is used. Unset, the first model of the first engine whose key is set. A name that "
        "is not a model of such an engine stops the add-on, and its log lists the valid ones.",
    )  # fmt: skip

    # -- the audio stream --
    chunk_ms: int | None = setting(
        None,
        OptionalRanged(int, 20, 500),
        "BODHI_CHUNK_MS",
        f"audio frame length sent to the engines, in ms, within what each takes (unset: "
        f"{ENDPOINTING_FRAME_MS} with --endpointing, else {DEFAULT_FRAME_MS})",
        title="Chunk length (ms)",
        description="Length of the audio frames sent to the engines, {range} milliseconds, "
        f"within what each takes. Unset, {ENDPOINTING_FRAME_MS} when the engine ends the "
        f"command (the answer comes sooner) and {DEFAULT_FRAME_MS} otherwise.",
    )
    lead: float = setting(
        1.0, Ranged(float, 0, 30), "BODHI_LEAD", "seconds the audio may run ahead of real time",
        title="Lead (s)",
        description="Seconds the audio may run ahead of real time when a client sends faster "
        "than real time (a wake-word pre-roll). 0 is strict real time; live audio is never "
        "delayed.",
    )  # fmt: skip
    connect_timeout: float = setting(
        5.0, Ranged(float, 0.1, 120), "BODHI_CONNECT_TIMEOUT", "seconds to connect to an engine",
        title="Connect timeout (s)",
        description="Seconds allowed for connecting to the engine (name resolution, TCP, TLS "
        "and the WebSocket upgrade).",
    )  # fmt: skip
    response_timeout: float = setting(
        5.0, Ranged(float, 0.1, 120), "BODHI_RESPONSE_TIMEOUT",
        "seconds to wait for the engine's final result after the audio ends",
        title="Response timeout (s)",
        description="Seconds to wait for the engine's final result after the audio has ended.",
    )  # fmt: skip

    # -- voice features --
    endpointing: bool = switch(
        "BODHI_ENDPOINTING",
        "let the engine end the voice command (Home Assistant then runs no VAD of its own)",
        title="The engine ends the command",
        description="Let the engine decide when the voice command has ended: the transcript "
        "is sent as soon as it completes the first phrase, and Home Assistant runs no voice "
        "activity detection of its own. An engine that cannot stops the add-on, and its log "
        "says which.",
    )
    no_speech_timeout: float = setting(
        8.0, Ranged(float, 1, 60), "BODHI_NO_SPEECH_TIMEOUT",
        "with --endpointing: seconds without any recognised text before an empty transcript",
        title="No-speech timeout (s)",
        description="With the engine ending the command: seconds without any recognised text "
        "before giving up with an empty transcript.",
    )  # fmt: skip
    max_command: float = setting(
        15.0, Ranged(float, 1, 300), "BODHI_MAX_COMMAND",
        "longest command (with --endpointing), longest pause in the audio, and how far the "
        "audio may fall behind real time, in seconds",
        title="Longest command (s)",
        description="The longest voice command when the engine ends the command, and the "
        "longest pause in any client's audio; then the transcript is finalised with what was "
        "said.",
    )  # fmt: skip
    hotwords: tuple[Hotword, ...] = setting(
        (), hotword_list, "BODHI_HOTWORDS",
        "PHRASE[:SCORE] to bias recognition towards (';'-separated in the env)",
        flag="--hotword", kind="list",
        title="Hotwords",
        description="Phrases to bias recognition towards, as PHRASE or PHRASE:SCORE (a score "
        f"above 0 and at most {MAX_HOTWORD_SCORE:g}; without one, the engine's default).",
    )  # fmt: skip
    min_confidence: float | None = setting(
        None, OptionalRanged(float, 0, 1), "BODHI_MIN_CONFIDENCE",
        "leave out completed phrases below this confidence (unset: keep all)",
        title="Minimum confidence",
        description="Leave out completed phrases whose confidence is below this, {range}. "
        "Unset, every phrase is kept.",
    )  # fmt: skip

    # -- Home Assistant's names as hotwords --
    hass_url: str | None = setting(
        None, validators.http_url, "HASS_URL",
        "Home Assistant URL: its exposed entity, area and floor names become hotwords",
        addon=False,
        why_not_addon="the add-on reaches Home Assistant through the Supervisor (hass_names)",
    )  # fmt: skip
    hass_token: str | None = setting(
        None, validators.secret(PLACEHOLDERS), "HASS_TOKEN",
        "Home Assistant long-lived access token", secret=True,
        addon=False,
        why_not_addon="the add-on reaches Home Assistant through the Supervisor (hass_names)",
    )  # fmt: skip
    hass_names: bool = switch(
        "BODHI_HASS_NAMES",
        "use Home Assistant's names as hotwords (in an add-on: through the Supervisor)",
        title="Home Assistant names as hotwords",
        description="Add the names of the entities, areas and floors exposed to Assist as "
        "hotwords, read from Home Assistant through the Supervisor (no URL or token needed).",
    )

    # -- reliability and limits --
    retries: int = setting(
        2, Ranged(int, 0, 10), "BODHI_RETRIES",
        "retries of a failed connection to the engine (a 5xx, 408 or 429 refusal, refused, "
        "unresolved, timed out)",
        title="Connection retries",
        description="How often a failed connection to the engine is retried (a 5xx, 408 or "
        "429 answer, a refused or timed-out connection, a name that did not resolve), {range}.",
    )  # fmt: skip
    retry_budget: float = setting(
        3.0, Ranged(float, 0, 60), "BODHI_RETRY_BUDGET",
        "seconds from the first attempt after which no retry starts",
        title="Retry budget (s)",
        description="Seconds from the first attempt after which no retry starts, so that a "
        "voice command is never kept waiting long.",
    )  # fmt: skip
    max_sessions: int = setting(
        20, Ranged(int, 1, 10_000), "BODHI_MAX_SESSIONS",
        "concurrent requests; more are refused with a busy error",
        title="Concurrent requests",
        description="How many requests may stream to the engines at once; more are refused "
        "with an error.",
    )  # fmt: skip
    max_connections: int = setting(
        100, Ranged(int, 1, 100_000), "WYOMING_MAX_CONNECTIONS",
        "concurrent client connections; one more is told the server is busy and closed",
        title="Concurrent connections",
        description="How many client connections are served at once; one more is told the "
        "server is busy and closed.",
    )  # fmt: skip
    idle_timeout: float = setting(
        120.0, Ranged(float, 1, 86_400), "WYOMING_IDLE_TIMEOUT",
        "seconds a connection with no request in progress may stay silent",
        title="Idle connection timeout (s)",
        description="A connection with no request in progress is closed after this long "
        "without a message.",
    )  # fmt: skip
    max_audio: float = setting(
        300.0, Ranged(float, 1, 3600), "BODHI_MAX_AUDIO",
        "longest audio of one request, in seconds; longer ends in an error",
        title="Longest audio (s)",
        description="The longest audio one request may send, in seconds; longer ends in an "
        "error.",
    )  # fmt: skip
    drain_delay: float = setting(
        3.0, Ranged(float, 0, 300), "BODHI_DRAIN_DELAY",
        "on SIGTERM, seconds to go on accepting and serving while /readyz says 503, so "
        "that a load balancer stops sending requests here first (Ctrl-C skips it)",
        addon=False,
        why_not_addon="no load balancer is in front of the add-on: its start script sets none",
    )  # fmt: skip
    shutdown_timeout: float = setting(
        4.0, Ranged(float, 0, 300), "BODHI_SHUTDOWN_TIMEOUT",
        "after the drain delay, seconds in-flight requests get to finish before they are "
        "answered with a shutdown error",
        addon=False,
        why_not_addon="the add-on manifest's stop timeout covers its default",
    )  # fmt: skip

    # -- TLS --
    ca_file: str | None = setting(
        None, validators.ca_file, "BODHI_CA_FILE",
        "a PEM file of CA certificates to trust for the engines' TLS, on top of the system's",
        aliases=(Alias("bodhi_ca", "BODHI_CA", "--bodhi-ca"),),
        addon=False,
        why_not_addon="a CA file would need a folder mapped into the container",
    )  # fmt: skip
    allow_insecure: bool = switch(
        "BODHI_ALLOW_INSECURE", "allow an unencrypted ws:// engine URL to another machine",
        title="Allow unencrypted engine URLs",
        description="Allow a ws:// (unencrypted) engine URL to a host other than this "
        "machine. Your API key would cross the network in clear text: only for a trusted "
        "local network.",
    )  # fmt: skip

    def frame_ms(self, accepted: tuple[int, int]) -> int:
        """The frame length to send an engine that takes frames of ``accepted`` ms (inclusive).

        ``chunk_ms`` when the user set it (validated against every configured engine).
        Otherwise 50 ms with endpointing: the frame that completes the endpoint waits for its
        last sample, so shorter frames answer sooner (half of 100 ms frames' wait) at twice
        the frames per second. Without endpointing the answer waits for audio-stop, which
        flushes the last frame at once, so 100 ms frames cost half as much and lose nothing.
        """
        if self.chunk_ms is not None:
            return self.chunk_ms
        wanted = ENDPOINTING_FRAME_MS if self.endpointing else DEFAULT_FRAME_MS
        low, high = accepted
        return min(max(wanted, low), high)

    def ssl_context(self) -> ssl.SSLContext | None:
        """What TLS trusts: None for the system's CAs alone, else a context that adds
        ``ca_file`` (a private CA) to them. Verification is never off."""
        if not self.ca_file:
            return None
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=self.ca_file)
        return context
