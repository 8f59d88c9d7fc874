"""All configuration: each setting declared once, validated by one voluptuous schema.

A setting is one field of :class:`Settings`; its metadata (:class:`Spec`) says how it is
given: its environment variable, its flag (if any), its validator and its help. The schema,
the command-line flags, ``--help`` and the checks of config-file keys are all built from
those fields.

Settings come in layers, the first that sets a value wins: command-line flags, then
environment variables, then a YAML or JSON file (``--config``), then built-in defaults. Each
value remembers where it came from, so an error names what the user actually wrote (a flag,
a variable, or a key in a file). Secrets (the API key and customer id) are never flags,
because flags show in process listings: they come from the environment, directly or through
``*_FILE`` (Docker and add-on secrets), or from the config file.

The setting names (``bodhi_url``, ``chunk_ms``, …) are the names users write in files and
add-on options (the add-on's ``/data/options.json`` loads directly).
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import os
import re
import ssl
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

import voluptuous as vol
import yaml

from .addresses import is_loopback, tcp_host_port
from .engines.base import Hotword
from .engines.bodhi.catalog import (
    DEFAULT_DOMAIN,
    DEFAULT_MODEL,
    DOMAINS,
    BodhiModel,
    Catalog,
    UnknownModelError,
)

DEFAULT_URI = "tcp://0.0.0.0:10300"
DEFAULT_BODHI_URL = "wss://bodhi.navana.ai"
DEFAULT_IAPP_URL = "wss://api.iapp.co.th/asrx"
IAPP_MODEL = "iapp-asrx"
LEGACY_HOSTS = frozenset({"bodhi.navana.ai"})
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

DEMO_API_KEY = "demo-key-for-the-bundled-simulator"
EVENT_LOOPS: Final = ("auto", "asyncio", "uvloop")
DEFAULT_FRAME_MS = 100
ENDPOINTING_FRAME_MS = 50
"""Frame lengths when ``chunk_ms`` is unset (see :meth:`Settings.frame_ms`)."""
MAX_HOTWORD_SCORE = 10.0
CREDENTIALS_HELP = "see 'Getting credentials' in the README"

# What the example config file holds in place of real credentials.
PLACEHOLDERS: Final = frozenset(
    {"your-bodhi-api-key", "00000000-0000-0000-0000-000000000000", "your-long-lived-access-token"}
)


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it, where it came from, and what is
    expected, in one line."""


# -- validators -------------------------------------------------------------------------------


class Ranged:
    """A number of ``kind`` within [low, high]; strings (from the environment) are converted."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self._schema = vol.All(vol.Coerce(kind), vol.Range(min=low, max=high))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise vol.Invalid(f"expected a number from {self.describe()}")
        return self._schema(value)

    def describe(self) -> str:
        return f"{self.low:g}-{self.high:g}"


class OptionalRanged(Ranged):
    """As :class:`Ranged`, or unset (None; an empty string from the environment or add-on)."""

    def __call__(self, value: Any) -> Any:
        if value is None or value == "":
            return None
        return self.kind(super().__call__(value))


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise vol.Invalid("has a port out of range: use 1-65535") from None


def _uri(value: Any) -> str:
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme == "tcp":
        _port(parts)
        host_port = tcp_host_port(text)
        if host_port is None or not host_port[0]:
            raise vol.Invalid("needs a host and a port, e.g. tcp://0.0.0.0:10300")
    elif parts.scheme == "unix":
        if not parts.path:
            raise vol.Invalid("needs a socket path, e.g. unix:///run/wyoming-bodhi.sock")
    elif text != "stdio://":
        raise vol.Invalid("is not tcp://HOST:PORT, unix://PATH or stdio://")
    return text


def _http_uri(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme != "tcp":
        raise vol.Invalid("is not tcp://HOST:PORT, e.g. tcp://127.0.0.1:10301")
    _port(parts)
    host_port = tcp_host_port(text)
    if host_port is None:
        raise vol.Invalid("needs a port, e.g. tcp://127.0.0.1:10301")
    return text


def _items(value: Any) -> list[Any] | tuple[Any, ...]:
    """A list as given in a file, or as a comma- or space-separated string (a variable)."""
    return value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()


def _networks(value: Any) -> tuple[str, ...]:
    networks = []
    for item in _items(value):
        try:
            networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise vol.Invalid(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]{0,252})")


def _host_names(value: Any) -> tuple[str, ...]:
    """Host names as a browser sends them in ``Host`` (no scheme, no port), or ``*``."""
    names = []
    for item in _items(value):
        name = str(item).strip().lower()
        if name != "*" and not _HOST_NAME.fullmatch(name):
            raise vol.Invalid(
                f"{str(item)[:60]!r} is not a host name: give a name alone, without a scheme "
                "or port (e.g. bodhi.lan), or * for any"
            )
        names.append(name)
    return tuple(names)


def _websocket_url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise vol.Invalid("is not a ws:// or wss:// URL")
    unprintable = any(c.isspace() or not c.isprintable() for c in text)
    if "@" in parts.netloc or "\\" in text or "#" in text or unprintable:
        # Parsers disagree on such URLs (which host is it?), and credentials belong in
        # BODHI_API_KEY, never in a URL that is logged.
        raise vol.Invalid(
            "must be a plain ws[s]://HOST[:PORT][/PATH] URL, with no user part or fragment"
        )
    if _port(parts) == 0:
        raise vol.Invalid("has a port out of range: use 1-65535")
    return text


def _http_url(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise vol.Invalid("is not an http:// or https:// URL")
    _port(parts)
    return text.rstrip("/")


def _ca_file(value: Any) -> str | None:
    path = "" if value is None else str(value).strip()
    if not path:
        return None
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as err:
        reason = getattr(err, "strerror", None) or err.__class__.__name__
        raise vol.Invalid(f"cannot load CA certificates from it ({reason})") from None
    return path


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if text in PLACEHOLDERS:
        raise vol.Invalid(
            f"is the example's placeholder, not a real credential; {CREDENTIALS_HELP}"
        )
    return text or None


def _customer_id(value: Any) -> str | None:
    text = _secret(value)
    if text is None:
        return None
    try:
        uuid.UUID(text)
    except ValueError:
        # Never echo the value: it is a credential.
        raise vol.Invalid("is not a UUID (expected 8-4-4-4-12 hexadecimal digits)") from None
    return text


def _non_empty(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise vol.Invalid("is empty")
    return text


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise vol.Invalid("expected true or false (also yes/no, on/off, 1/0)")


def _zeroconf(value: Any) -> str | None:
    """Off (None), on under the default name (""), or on under a given name."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    text = str(value).strip()
    if text.lower() in _FALSE:
        return None
    if text.lower() in _TRUE:
        return ""
    return text


def parse_hotword(text: str) -> Hotword:
    """``batti`` → no score (Bodhi's default); ``batti:2.5`` → 2.5.

    Only a trailing number counts as a score, so ``10:30 alarm`` stays one phrase.
    """
    phrase, sep, tail = text.rpartition(":")
    if sep:
        try:
            return Hotword(phrase.strip(), _optional_score(tail.strip()))
        except ValueError as err:
            if "score must" in str(err):
                raise
    return Hotword(text.strip())


def _hotwords(value: Any) -> tuple[Hotword, ...]:
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
                hotword = Hotword(str(item["phrase"]).strip(), _optional_score(item.get("score")))
            else:
                hotword = parse_hotword(str(item))
        except (KeyError, ValueError) as err:
            raise vol.Invalid(f"bad hotword {item!r}: {err}") from None
        if not hotword.phrase:
            raise vol.Invalid(f"bad hotword {item!r}: empty phrase")
        hotwords.append(hotword)
    return tuple(hotwords)


def _optional_score(value: Any) -> float | None:
    if value is None or value == "":
        return None
    score = float(value)
    if not 0 < score <= MAX_HOTWORD_SCORE:
        raise ValueError(f"score must be above 0 and at most {MAX_HOTWORD_SCORE:g}")
    return score


def _model_names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list | tuple):
        raise vol.Invalid("expected a list of model names")
    names = tuple(str(item).strip() for item in value)
    for name in names:
        try:
            BodhiModel.from_name(name)
        except UnknownModelError as err:
            raise vol.Invalid(str(err)) from None
    return names


def _text(value: Any) -> str:
    return str(value)


# -- the settings, each declared once --------------------------------------------------------

Kind = Literal["value", "switch", "list", "optional"]


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is given and checked (the metadata of a :class:`Settings` field)."""

    env: str
    flag: str | None
    help: str
    validator: Callable[[Any], Any]
    kind: Kind = "value"
    """How the flag is given: a value, a ``switch`` (no value), a repeatable ``list``, or an
    ``optional`` value."""
    secret: bool = False
    name: str = ""
    default: Any = None


def setting(
    default: Any,
    validator: Callable[[Any], Any],
    env: str,
    help: str,
    *,
    flag: str | Literal["auto"] | None = "auto",
    kind: Kind = "value",
    secret: bool = False,
) -> Any:
    """A :class:`Settings` field; ``flag="auto"`` is ``--`` and the name with dashes."""
    spec = Spec(env, None if flag == "auto" else flag, help, validator, kind, secret)
    return field(default=default, repr=not secret, metadata={"spec": spec, "auto_flag": flag})


def _switch(env: str, help: str) -> Any:
    return setting(False, _boolean, env, help, kind="switch")


@dataclass(frozen=True)
class Settings:
    # -- where to serve, and how to log --
    uri: str = setting(
        DEFAULT_URI, _uri, "WYOMING_URI",
        "where to serve Wyoming: tcp://HOST:PORT, unix://PATH or stdio://",
    )  # fmt: skip
    zeroconf: str | None = setting(
        None, _zeroconf, "WYOMING_ZEROCONF",
        "advertise over mDNS for Home Assistant discovery, optionally under NAME",
        kind="optional",
    )  # fmt: skip
    debug: bool = _switch("WYOMING_DEBUG", "log debug messages (never credentials)")
    log_format: str = setting(
        DEFAULT_LOG_FORMAT, _text, "WYOMING_LOG_FORMAT", "Python logging format"
    )
    demo: bool = _switch("BODHI_DEMO", "serve through the bundled simulator: no account needed")
    http_uri: str | None = setting(
        None, _http_uri, "BODHI_HTTP_URI",
        "also serve the status page, /metrics, /healthz and /readyz over HTTP here, e.g. "
        "tcp://127.0.0.1:10301 (no password: see the README before binding beyond loopback)",
    )  # fmt: skip
    metrics_uri: str | None = setting(
        None, _http_uri, "BODHI_METRICS_URI",
        "serve only /healthz, /readyz and /metrics over HTTP here, for health checks and "
        "Prometheus, e.g. tcp://0.0.0.0:10302 (nothing on it costs money or shows a "
        "transcript)",
    )  # fmt: skip
    http_allow: tuple[str, ...] = setting(
        (), _networks, "BODHI_HTTP_ALLOW",
        "addresses (or networks, 172.30.32.0/24) allowed to reach the HTTP server; "
        "unset: any that can connect",
        kind="list",
    )  # fmt: skip
    http_hosts: tuple[str, ...] = setting(
        (), _host_names, "BODHI_HTTP_HOSTS",
        "names the HTTP server is reached by, beyond its addresses and localhost (a page "
        "under any other name is refused: DNS rebinding); * for any, behind a proxy that "
        "checks names itself",
        flag="--http-host", kind="list",
    )  # fmt: skip
    http_max_connections: int = setting(
        32, Ranged(int, 1, 10_000), "BODHI_HTTP_MAX_CONNECTIONS",
        "concurrent HTTP connections (live pages included); one more is answered 503 and "
        "closed",
    )  # fmt: skip
    event_loop: str = setting(
        "auto", vol.In(EVENT_LOOPS), "WYOMING_EVENT_LOOP",
        "asyncio's own event loop, or uvloop (pip install uvloop); auto: "
        "uvloop when it is installed",
    )  # fmt: skip

    # -- Bodhi: credentials, endpoint, models --
    api_key: str | None = setting(
        None, _secret, "BODHI_API_KEY", "Bodhi API key", flag=None, secret=True
    )
    customer_id: str | None = setting(
        None, _customer_id, "BODHI_CUSTOMER_ID", "Bodhi customer id (a UUID; legacy platform)",
        flag=None, secret=True,
    )  # fmt: skip
    bodhi_url: str = setting(
        DEFAULT_BODHI_URL, _websocket_url, "BODHI_URL", "Bodhi streaming endpoint (ws:// or wss://)"
    )
    model: str = setting(DEFAULT_MODEL, _non_empty, "BODHI_MODEL", "default Bodhi model")
    domain: str = setting(
        DEFAULT_DOMAIN, vol.In(DOMAINS), "BODHI_DOMAIN",
        f"model domain used when a language picks the model ({' or '.join(DOMAINS)})",
    )  # fmt: skip
    extra_models: tuple[str, ...] = setting(
        (), _model_names, "BODHI_EXTRA_MODELS",
        "model names to add to the catalogue (comma-separated in the env)",
        flag="--extra-model", kind="list",
    )  # fmt: skip

    # -- iApp ASRx (Thai) --
    iapp_api_key: str | None = setting(
        None, _secret, "IAPP_API_KEY", "iApp API key: serves Thai through iApp ASRx",
        flag=None, secret=True,
    )  # fmt: skip
    iapp_url: str = setting(
        DEFAULT_IAPP_URL,
        _websocket_url,
        "IAPP_URL",
        "iApp ASRx streaming endpoint (ws:// or wss://)",
    )

    # -- the audio stream --
    chunk_ms: int | None = setting(
        None,
        OptionalRanged(int, 20, 500),
        "BODHI_CHUNK_MS",
        f"audio frame length sent to the engine, in ms (Bodhi takes 50-500; unset: "
        f"{ENDPOINTING_FRAME_MS} with --endpointing, else {DEFAULT_FRAME_MS})",
    )
    lead: float = setting(
        1.0, Ranged(float, 0, 30), "BODHI_LEAD", "seconds the audio may run ahead of real time"
    )
    connect_timeout: float = setting(
        5.0, Ranged(float, 0.1, 120), "BODHI_CONNECT_TIMEOUT", "seconds to connect to Bodhi"
    )
    response_timeout: float = setting(
        5.0, Ranged(float, 0.1, 120), "BODHI_RESPONSE_TIMEOUT",
        "seconds to wait for Bodhi's final result after the audio ends",
    )  # fmt: skip

    # -- voice features --
    endpointing: bool = _switch(
        "BODHI_ENDPOINTING",
        "let Bodhi end the voice command (Home Assistant then runs no VAD of its own)",
    )
    endpoint_silence: float | None = setting(
        None, OptionalRanged(float, 0.44, 1.2), "BODHI_ENDPOINT_SILENCE",
        "seconds of trailing silence that end a phrase (unset: Bodhi's 0.44)",
    )  # fmt: skip
    no_speech_timeout: float = setting(
        8.0, Ranged(float, 1, 60), "BODHI_NO_SPEECH_TIMEOUT",
        "with --endpointing: seconds without any recognised text before an empty transcript",
    )  # fmt: skip
    max_command: float = setting(
        15.0, Ranged(float, 1, 300), "BODHI_MAX_COMMAND",
        "longest command (with --endpointing), longest pause in the audio, and how far the "
        "audio may fall behind real time, in seconds",
    )  # fmt: skip
    hotwords: tuple[Hotword, ...] = setting(
        (), _hotwords, "BODHI_HOTWORDS",
        "PHRASE[:SCORE] to bias recognition towards (';'-separated in the env)",
        flag="--hotword", kind="list",
    )  # fmt: skip
    parse_number: bool = _switch("BODHI_PARSE_NUMBER", "spoken numbers as digits")
    language_id: bool = _switch(
        "BODHI_LANGUAGE_ID", "identify the spoken language; the transcript reports it"
    )
    transliterate: bool = _switch("BODHI_TRANSLITERATE", "ask Bodhi for transliterated text")
    min_confidence: float | None = setting(
        None, OptionalRanged(float, 0, 1), "BODHI_MIN_CONFIDENCE",
        "leave out completed phrases below this confidence (unset: keep all)",
    )  # fmt: skip

    # -- Home Assistant's names as hotwords --
    hass_url: str | None = setting(
        None, _http_url, "HASS_URL",
        "Home Assistant URL: its exposed entity, area and floor names become hotwords",
    )  # fmt: skip
    hass_token: str | None = setting(
        None, _secret, "HASS_TOKEN", "Home Assistant long-lived access token",
        flag=None, secret=True,
    )  # fmt: skip
    hass_names: bool = _switch(
        "BODHI_HASS_NAMES",
        "use Home Assistant's names as hotwords (in an add-on: through the Supervisor)",
    )

    # -- reliability and limits --
    retries: int = setting(
        2, Ranged(int, 0, 10), "BODHI_RETRIES",
        "retries of a failed connection to Bodhi (500, 503, refused, unresolved, timed out)",
    )  # fmt: skip
    retry_budget: float = setting(
        3.0, Ranged(float, 0, 60), "BODHI_RETRY_BUDGET",
        "seconds from the first attempt after which no retry starts",
    )  # fmt: skip
    max_sessions: int = setting(
        20, Ranged(int, 1, 10_000), "BODHI_MAX_SESSIONS",
        "concurrent requests; more are refused with a busy error",
    )  # fmt: skip
    max_connections: int = setting(
        100, Ranged(int, 1, 100_000), "WYOMING_MAX_CONNECTIONS",
        "concurrent client connections; one more is told the server is busy and closed",
    )  # fmt: skip
    idle_timeout: float = setting(
        120.0, Ranged(float, 1, 86_400), "WYOMING_IDLE_TIMEOUT",
        "seconds a connection with no request in progress may stay silent",
    )  # fmt: skip
    max_audio: float = setting(
        300.0, Ranged(float, 1, 3600), "BODHI_MAX_AUDIO",
        "longest audio of one request, in seconds; longer ends in an error",
    )  # fmt: skip
    drain_delay: float = setting(
        3.0, Ranged(float, 0, 300), "BODHI_DRAIN_DELAY",
        "on SIGTERM, seconds to go on accepting and serving while /readyz says 503, so "
        "that a load balancer stops sending requests here first (Ctrl-C skips it)",
    )  # fmt: skip
    shutdown_timeout: float = setting(
        4.0, Ranged(float, 0, 300), "BODHI_SHUTDOWN_TIMEOUT",
        "after the drain delay, seconds in-flight requests get to finish before they are "
        "answered with a shutdown error",
    )  # fmt: skip

    # -- TLS --
    bodhi_ca: str | None = setting(
        None, _ca_file, "BODHI_CA",
        "a PEM file of CA certificates to trust for Bodhi's TLS, on top of the system's",
    )  # fmt: skip
    allow_insecure: bool = _switch(
        "BODHI_ALLOW_INSECURE", "allow an unencrypted ws:// Bodhi URL to another machine"
    )

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.extra_models)

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

    @property
    def is_legacy_platform(self) -> bool:
        return urlsplit(self.bodhi_url).hostname in LEGACY_HOSTS

    def ssl_context(self) -> ssl.SSLContext | None:
        """What TLS trusts: None for the system's CAs alone, else a context that adds
        ``bodhi_ca`` (a private CA) to them. Verification is never off."""
        if not self.bodhi_ca:
            return None
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=self.bodhi_ca)
        return context


def _specs() -> tuple[Spec, ...]:
    specs = []
    for item in fields(Settings):
        spec: Spec = item.metadata["spec"]
        flag = spec.flag
        if item.metadata["auto_flag"] == "auto":
            flag = "--" + item.name.replace("_", "-")
        specs.append(replace(spec, name=item.name, flag=flag, default=item.default))
    return tuple(specs)


SETTINGS: Final = _specs()
_BY_NAME: Final = {spec.name: spec for spec in SETTINGS}
SECRETS: Final = tuple(spec.name for spec in SETTINGS if spec.secret)

SCHEMA: Final = vol.Schema(
    {vol.Optional(spec.name, default=spec.default): spec.validator for spec in SETTINGS}
)


# -- where values come from -------------------------------------------------------------------


class RawSettings(dict[str, Any]):
    """Unvalidated setting values, each with where it came from (for error messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, str] = {}

    def put(self, name: str, value: Any, source: str) -> None:
        self[name] = value
        self.sources[name] = source


def _where(name: str, sources: Mapping[str, str]) -> str:
    """How the user gave ``name``: a flag, a variable, a config file; or every way they could."""
    source = sources.get(name)
    if source is not None:
        return source
    spec = _BY_NAME.get(name)
    if spec is None:
        return name
    ways = [spec.flag] if spec.flag else []
    ways.append(spec.env)
    return " / ".join(ways)


def _shown_value(name: str, value: Any) -> str:
    if value is None or name in SECRETS:
        return ""
    text = str(value)
    # A URL's user part may be a password: never echo it.
    text = re.sub(r"(//)[^/@]*@", r"\1…@", text)
    return f" '{text[:60]}'"


def validate(raw: Mapping[str, Any]) -> Settings:
    """Validate merged raw settings; raises :class:`SettingsError` naming the first problem."""
    sources: Mapping[str, str] = getattr(raw, "sources", {})
    data = dict(raw)
    unknown = sorted(str(key) for key in data if key not in _BY_NAME)
    if unknown:
        raise SettingsError(_unknown_setting(unknown[0], sources.get(unknown[0])))
    try:
        values = SCHEMA(data)
    except vol.MultipleInvalid as err:
        first = err.errors[0]
        name = str(first.path[0]) if first.path else "settings"
        shown = _shown_value(name, data.get(name))
        raise SettingsError(
            f"invalid {name}{shown} ({_where(name, sources)}): {first.error_message}"
        ) from None

    if values["demo"]:
        # The demo serves both engines through the bundled simulators, which take any key.
        values["api_key"] = values["api_key"] or DEMO_API_KEY
        values["iapp_api_key"] = values["iapp_api_key"] or DEMO_API_KEY
    if values["api_key"] is None and values["iapp_api_key"] is not None and "model" not in data:
        # Thai only: the default model is iApp's.
        values["model"] = IAPP_MODEL
    settings = Settings(**values)

    def where(name: str) -> str:
        return _where(name, sources)

    if settings.api_key is None and settings.iapp_api_key is None:
        raise SettingsError(
            "no engine configured: set BODHI_API_KEY (Bodhi: Indian languages; or "
            "BODHI_API_KEY_FILE, or api_key in a config file), IAPP_API_KEY (iApp ASRx: Thai), "
            f"or both; {CREDENTIALS_HELP}, or try --demo"
        )
    models = (settings.catalog.names if settings.api_key else []) + (
        [IAPP_MODEL] if settings.iapp_api_key else []
    )
    if settings.model not in models:
        raise SettingsError(
            f"invalid model {settings.model!r} ({where('model')}): not a model of a configured "
            f"engine; valid models: {', '.join(models)} (add Bodhi models with extra_models, "
            "--extra-model)"
        )
    for engine, (low, high) in _frame_ranges(settings).items():
        if settings.chunk_ms is not None and not low <= settings.chunk_ms <= high:
            raise SettingsError(
                f"invalid chunk_ms {settings.chunk_ms} ({where('chunk_ms')}): {engine} takes "
                f"frames of {low} to {high} ms"
            )
    if settings.endpointing and settings.iapp_api_key:
        raise SettingsError(
            f"invalid endpointing ({where('endpointing')}): iApp ASRx completes a sentence only "
            "when the next one begins, so it cannot end a voice command by itself; turn "
            "endpointing off, or serve Thai from a separate instance without it"
        )
    urls = [("bodhi_url", settings.api_key), ("iapp_url", settings.iapp_api_key)]
    for name in [name for name, key in urls if key]:
        url_text = str(getattr(settings, name))
        url = urlsplit(url_text)
        if (
            url.scheme == "ws"
            and not is_loopback(url.hostname or "")
            and not settings.allow_insecure
        ):
            raise SettingsError(
                f"refusing {name} {url_text} ({where(name)}): ws:// would send the API key and "
                "your audio unencrypted over the network; use wss://, or set allow_insecure "
                "(--allow-insecure) if you really mean it"
            )
    if bool(settings.hass_url) != bool(settings.hass_token):
        given, missing = (
            ("hass_url", "hass_token") if settings.hass_url else ("hass_token", "hass_url")
        )
        raise SettingsError(
            f"missing {missing}: Home Assistant's names need both hass_url and hass_token (a "
            f"long-lived access token, also HASS_TOKEN_FILE), and only {given} is set "
            f"({where(given)})"
        )
    if settings.zeroconf is not None and not settings.uri.startswith("tcp://"):
        raise SettingsError(
            f"invalid zeroconf ({where('zeroconf')}): zeroconf advertises a TCP port, but uri "
            f"is {settings.uri} ({where('uri')})"
        )
    if (
        settings.api_key
        and settings.is_legacy_platform
        and not settings.customer_id
        and not settings.demo
    ):
        raise SettingsError(
            f"missing the Bodhi customer id: {settings.bodhi_url} needs it as well as the API key; "
            "set BODHI_CUSTOMER_ID (or BODHI_CUSTOMER_ID_FILE, or customer_id in a config file); "
            f"{CREDENTIALS_HELP}"
        )
    return settings


def _frame_ranges(settings: Settings) -> dict[str, tuple[int, int]]:
    """The frame lengths each configured engine takes, as it declares them."""
    ranges = {}
    if settings.api_key:
        from .engines.bodhi.engine import AUDIO as BODHI_AUDIO

        ranges["Bodhi"] = BODHI_AUDIO.frame_ms
    if settings.iapp_api_key:
        from .engines.iapp.engine import AUDIO as IAPP_AUDIO

        ranges["iApp ASRx"] = IAPP_AUDIO.frame_ms
    return ranges


def _unknown_setting(key: str, source: str | None) -> str:
    """'unknown setting' with the nearest known name, also for a variable or flag written as
    a key (``BODHI_API_KEY: …`` or ``chunk-ms: …`` in a file)."""
    aliases = {spec.name: spec.name for spec in SETTINGS}
    for spec in SETTINGS:
        aliases[spec.env.lower()] = spec.name
        if spec.flag:
            aliases[spec.flag.lstrip("-")] = spec.name
    wanted = key.lower().lstrip("-")
    match = aliases.get(wanted) or next(
        iter(aliases[m] for m in difflib.get_close_matches(wanted, list(aliases), n=1, cutoff=0.6)),
        None,
    )
    where = f" in {source}" if source else ""
    hint = f"; did you mean '{match}'?" if match else "; see config/wyoming-bodhi.example.yaml"
    return f"unknown setting {key!r}{where}{hint}"


# -- sources -------------------------------------------------------------------------------


MAX_SECRET_FILE_BYTES = 64 * 1024
"""A key or token is tens or hundreds of bytes; a longer file is not the one meant."""


def _read_secret_file(env_name: str, path: str) -> str:
    # Every message here names the file, never what is in it: the exception of a failed
    # decode would show a byte of the secret and where it is.
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as err:
        raise SettingsError(f"cannot read {env_name}={path}: {err.strerror}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SettingsError(
            f"{env_name}={path} is longer than {MAX_SECRET_FILE_BYTES} bytes: not a secret file"
        )
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingsError(f"{env_name}={path} is not UTF-8 text") from None


def from_environment(environ: Mapping[str, str], raw: RawSettings) -> None:
    """Settings given by environment variables (``*_FILE`` for the secrets)."""
    for spec in SETTINGS:
        file_env = f"{spec.env}_FILE"
        if spec.secret and environ.get(file_env):
            if environ.get(spec.env):
                raise SettingsError(f"set {spec.env} or {file_env}, not both")
            raw.put(spec.name, _read_secret_file(file_env, environ[file_env]), file_env)
        elif environ.get(spec.env, "") != "":
            raw.put(spec.name, environ[spec.env], spec.env)


def read_config_file(path: str, raw: RawSettings) -> None:
    """Settings from a YAML or JSON file (JSON is YAML, so one parser serves both)."""
    source = f"config file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read config file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{source} is not UTF-8 text") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except RecursionError:
        # Both parsers recurse per level: a file nested thousands deep is not a config.
        raise SettingsError(f"{source} is nested too deeply") from None
    except json.JSONDecodeError as err:
        raise SettingsError(
            f"{source} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    except yaml.YAMLError as err:
        raise SettingsError(f"{source} is not valid YAML: {_yaml_reason(err)}") from None
    if data is None:
        return
    if not isinstance(data, dict):
        raise SettingsError(f"{source} must hold a mapping of setting: value")
    for key, value in data.items():
        if str(key) not in _BY_NAME:
            raise SettingsError(_unknown_setting(str(key), source))
        # Add-on options leave optional strings empty rather than absent.
        if value != "":
            raw.put(str(key), value, source)


def _yaml_reason(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def catalog_of(raw: Mapping[str, Any]) -> Catalog:
    """The model catalogue the raw settings ask for (checking ``extra_models`` alone)."""
    try:
        return Catalog(_model_names(raw.get("extra_models")))
    except vol.Invalid as err:
        sources: Mapping[str, str] = getattr(raw, "sources", {})
        raise SettingsError(
            f"invalid extra_models ({_where('extra_models', sources)}): {err.error_message}"
        ) from None


def _help_for(spec: Spec) -> str:
    extras = []
    if spec.kind != "switch" and spec.default not in (None, (), ""):
        default = spec.default
        extras.append(
            f"default {default.replace('%', '%%') if isinstance(default, str) else default}"
        )
    if isinstance(spec.validator, Ranged):
        extras.append(spec.validator.describe())
    extras.append(f"env {spec.env}")
    return f"{spec.help} ({'; '.join(extras)})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wyoming-bodhi",
        description="Wyoming speech-to-text server for Bodhi (Navana) real-time ASR. "
        "Credentials come only from the environment (BODHI_API_KEY and BODHI_CUSTOMER_ID, "
        "or BODHI_API_KEY_FILE and BODHI_CUSTOMER_ID_FILE) or from the --config file.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="YAML or JSON settings file, e.g. the add-on's /data/options.json (env BODHI_CONFIG)",
    )
    parser.add_argument(
        "--health-check",
        action="store_true",
        help="exit 0 if the server at --uri answers Describe with the bodhi program within 2 s",
    )
    parser.add_argument(
        "--list-models", action="store_true", help="print the model catalogue and exit"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    for spec in SETTINGS:
        if spec.flag is None:
            continue
        help_text = _help_for(spec)
        if spec.kind == "switch":
            parser.add_argument(spec.flag, action="store_true", default=None, help=help_text)
        elif spec.kind == "optional":
            parser.add_argument(
                spec.flag, nargs="?", const=True, default=None, metavar="NAME", help=help_text
            )
        elif spec.kind == "list":
            parser.add_argument(
                spec.flag, dest=spec.name, action="append", default=None,
                help=f"{help_text}; repeatable",
            )  # fmt: skip
        else:
            parser.add_argument(spec.flag, dest=spec.name, default=None, help=help_text)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def from_arguments(args: argparse.Namespace, raw: RawSettings) -> None:
    for spec in SETTINGS:
        value = getattr(args, spec.name, None) if spec.flag else None
        if value is not None:
            raw.put(spec.name, value, spec.flag or spec.name)


def _environment_and_file(config_path: str | None, environ: Mapping[str, str]) -> RawSettings:
    """The raw layers below the flags: the environment over the config file (``config_path``,
    else ``BODHI_CONFIG``)."""
    raw = RawSettings()
    config_path = config_path or environ.get("BODHI_CONFIG")
    if config_path:
        read_config_file(config_path, raw)
    from_environment(environ, raw)
    return raw


def merge(args: argparse.Namespace, environ: Mapping[str, str]) -> RawSettings:
    """The raw layers, unvalidated: flags over environment over the config file."""
    raw = _environment_and_file(args.config, environ)
    from_arguments(args, raw)
    return raw


def load_client_settings(
    config_path: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings for a client that talks to an engine itself, with no server in between
    (``--direct``, ``--rest``): the server's environment variables, ``*_FILE``
    secrets and config file (``config_path``, else ``BODHI_CONFIG``), validated as the server
    validates them, without the server's flags. Raises :class:`SettingsError`."""
    return validate(_environment_and_file(config_path, os.environ if environ is None else environ))


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse flags, read the environment and config file, validate.

    Raises :class:`SettingsError`.
    """
    args = build_parser().parse_args(argv)
    return validate(merge(args, os.environ if environ is None else environ))


__all__ = [
    "DEFAULT_URI",
    "SETTINGS",
    "Settings",
    "SettingsError",
    "load",
    "load_client_settings",
    "validate",
]
