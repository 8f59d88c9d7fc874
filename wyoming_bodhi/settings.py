"""All configuration, validated by one voluptuous schema.

Settings come in layers, the first that sets a value wins: command-line flags, then
environment variables, then a YAML or JSON file (``--config``), then built-in defaults.
Secrets (the API key and customer id) are never flags, because flags show in process
listings: they come from the environment, directly or through ``*_FILE`` (Docker and
add-on secrets), or from the config file.

The setting names (``bodhi_url``, ``chunk_ms``, …) are the names users write in files and
add-on options (the add-on's ``/data/options.json`` loads directly), so they are the
schema's keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import voluptuous as vol
import yaml

from .addresses import is_loopback, tcp_host_port
from .bodhi.protocol import Hotword
from .catalog import DEFAULT_DOMAIN, DEFAULT_MODEL, DOMAINS, BodhiModel, Catalog, UnknownModelError

DEFAULT_URI = "tcp://0.0.0.0:10300"
DEFAULT_BODHI_URL = "wss://bodhi.navana.ai"
LEGACY_HOSTS = frozenset({"bodhi.navana.ai"})
CHUNK_MS_RANGE = (50, 500)
DEFAULT_LOG_FORMAT = logging.BASIC_FORMAT

SECRETS = ("api_key", "customer_id", "hass_token")
DEMO_API_KEY = "demo-key-for-the-bundled-simulator"
MAX_HOTWORD_SCORE = 10.0


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


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it and says what is expected."""


@dataclass(frozen=True)
class Setting:
    """How one setting is given: its flag (if any) and its environment variable."""

    name: str
    env: str
    flag: str | None
    help: str
    kind: str = "value"
    """How the flag is given: ``value``, ``switch`` (no value), ``list`` (repeatable) or
    ``optional`` (a value may follow)."""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "uri",
        "WYOMING_URI",
        "--uri",
        "where to serve Wyoming: tcp://HOST:PORT, unix://PATH or stdio://",
    ),
    Setting("bodhi_url", "BODHI_URL", "--bodhi-url", "Bodhi streaming endpoint (ws:// or wss://)"),
    Setting("api_key", "BODHI_API_KEY", None, "Bodhi API key"),
    Setting(
        "customer_id", "BODHI_CUSTOMER_ID", None, "Bodhi customer id (a UUID; legacy platform)"
    ),
    Setting("model", "BODHI_MODEL", "--model", "default Bodhi model"),
    Setting(
        "domain", "BODHI_DOMAIN", "--domain", "model domain used when a language picks the model"
    ),
    Setting(
        "extra_models",
        "BODHI_EXTRA_MODELS",
        "--extra-model",
        "model names to add to the catalogue",
        "list",
    ),
    Setting("chunk_ms", "BODHI_CHUNK_MS", "--chunk-ms", "audio frame length sent to Bodhi, in ms"),
    Setting("lead", "BODHI_LEAD", "--lead", "seconds the audio may run ahead of real time"),
    Setting(
        "connect_timeout",
        "BODHI_CONNECT_TIMEOUT",
        "--connect-timeout",
        "seconds to connect to Bodhi",
    ),
    Setting(
        "response_timeout",
        "BODHI_RESPONSE_TIMEOUT",
        "--response-timeout",
        "seconds to wait for Bodhi's final result after the audio ends",
    ),
    Setting(
        "zeroconf",
        "WYOMING_ZEROCONF",
        "--zeroconf",
        "advertise over mDNS for Home Assistant discovery, optionally under NAME",
        "optional",
    ),
    Setting(
        "demo",
        "BODHI_DEMO",
        "--demo",
        "serve through the bundled Bodhi simulator: no account needed",
        "switch",
    ),
    Setting(
        "endpointing",
        "BODHI_ENDPOINTING",
        "--endpointing",
        "let Bodhi end the voice command (Home Assistant then runs no VAD of its own)",
        "switch",
    ),
    Setting(
        "endpoint_silence",
        "BODHI_ENDPOINT_SILENCE",
        "--endpoint-silence",
        "seconds of trailing silence that end a phrase, 0.44-1.2 (Bodhi's default: 0.44)",
    ),
    Setting(
        "no_speech_timeout",
        "BODHI_NO_SPEECH_TIMEOUT",
        "--no-speech-timeout",
        "with --endpointing: seconds without any recognised text before an empty transcript",
    ),
    Setting(
        "max_command",
        "BODHI_MAX_COMMAND",
        "--max-command",
        "longest voice command in seconds (with --endpointing), and longest pause in the audio",
    ),
    Setting(
        "hotwords",
        "BODHI_HOTWORDS",
        "--hotword",
        "PHRASE[:SCORE] to bias recognition towards (repeatable; ';'-separated in the env)",
        "list",
    ),
    Setting(
        "parse_number",
        "BODHI_PARSE_NUMBER",
        "--parse-number",
        "spoken numbers as digits",
        "switch",
    ),
    Setting(
        "language_id",
        "BODHI_LANGUAGE_ID",
        "--language-id",
        "identify the spoken language; the transcript reports it",
        "switch",
    ),
    Setting(
        "transliterate",
        "BODHI_TRANSLITERATE",
        "--transliterate",
        "ask Bodhi for transliterated text",
        "switch",
    ),
    Setting(
        "min_confidence",
        "BODHI_MIN_CONFIDENCE",
        "--min-confidence",
        "leave out completed phrases below this confidence, 0-1 (off by default)",
    ),
    Setting(
        "hass_url",
        "HASS_URL",
        "--hass-url",
        "Home Assistant URL: its exposed entity, area and floor names become hotwords",
    ),
    Setting("hass_token", "HASS_TOKEN", None, "Home Assistant long-lived access token"),
    Setting(
        "hass_names",
        "BODHI_HASS_NAMES",
        "--hass-names",
        "use Home Assistant's names as hotwords (in an add-on: through the Supervisor)",
        "switch",
    ),
    Setting(
        "retries",
        "BODHI_RETRIES",
        "--retries",
        "retries of a failed connection to Bodhi (500, 503, refused, unresolved, timed out)",
    ),
    Setting(
        "retry_budget",
        "BODHI_RETRY_BUDGET",
        "--retry-budget",
        "seconds from the first attempt after which no retry starts",
    ),
    Setting(
        "max_sessions",
        "BODHI_MAX_SESSIONS",
        "--max-sessions",
        "concurrent utterances; more are refused with an error",
    ),
    Setting(
        "max_connections",
        "WYOMING_MAX_CONNECTIONS",
        "--max-connections",
        "concurrent client connections; more are told the server is busy and closed",
    ),
    Setting(
        "idle_timeout",
        "WYOMING_IDLE_TIMEOUT",
        "--idle-timeout",
        "seconds a connection with no request in progress may stay silent before it is closed",
    ),
    Setting(
        "max_audio",
        "BODHI_MAX_AUDIO",
        "--max-audio",
        "longest audio of one request, in seconds; longer ends in an error",
    ),
    Setting(
        "shutdown_timeout",
        "BODHI_SHUTDOWN_TIMEOUT",
        "--shutdown-timeout",
        "on SIGTERM, seconds in-flight utterances get to finish",
    ),
    Setting(
        "bodhi_ca",
        "BODHI_CA",
        "--bodhi-ca",
        "a PEM file of CA certificates to trust for Bodhi's TLS, on top of the system's",
    ),
    Setting(
        "allow_insecure",
        "BODHI_ALLOW_INSECURE",
        "--allow-insecure",
        "allow an unencrypted ws:// Bodhi URL to a host other than this machine",
        "switch",
    ),
    Setting("debug", "WYOMING_DEBUG", "--debug", "log debug messages", "switch"),
    Setting("log_format", "WYOMING_LOG_FORMAT", "--log-format", "Python logging format"),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _describe(name: str) -> str:
    setting = _BY_NAME.get(name)
    if setting is None:
        return name
    where = [setting.flag] if setting.flag else []
    where.append(setting.env)
    return f"{name} ({' / '.join(where)})"


# -- validators -------------------------------------------------------------------------------


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


def _websocket_url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise vol.Invalid("is not a ws:// or wss:// URL")
    if "@" in parts.netloc or "\\" in text or any(c.isspace() or not c.isprintable() for c in text):
        # Parsers disagree on such URLs (which host is it?), and credentials belong in
        # BODHI_API_KEY, never in a URL that is logged.
        raise vol.Invalid("must be a plain ws[s]://HOST[:PORT][/PATH] URL, with no user part")
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


def _non_empty(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise vol.Invalid("is empty")
    return text


def _customer_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        uuid.UUID(text)
    except ValueError:
        # Never echo the value: it is a credential.
        raise vol.Invalid("is not a UUID (expected 8-4-4-4-12 hexadecimal digits)") from None
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("", "0", "false", "no", "off"):
        return False
    return vol.Boolean()(value)  # type: ignore[no-any-return]


def _zeroconf(value: Any) -> str | None:
    """Off (None), on under the default name (""), or on under a given name."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    text = str(value).strip()
    if text.lower() in ("false", "no", "off", "0"):
        return None
    if text.lower() in ("true", "yes", "on", "1"):
        return ""
    return text


def _hotwords(value: Any) -> list[Hotword]:
    """``PHRASE[:SCORE]`` strings (or ``{phrase, score}`` mappings in a file)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.replace("\n", ";").split(";") if part.strip()]
    if not isinstance(value, list):
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
    return hotwords


def _optional_score(value: Any) -> float | None:
    if value is None or value == "":
        return None
    score = float(value)
    if not 0 < score <= MAX_HOTWORD_SCORE:
        raise ValueError(f"score must be above 0 and at most {MAX_HOTWORD_SCORE:g}")
    return score


def _ranged(kind: type[int] | type[float], low: float, high: float) -> Any:
    """A number of ``kind`` (strings from the environment are converted) within [low, high]."""
    return vol.All(vol.Coerce(kind), vol.Range(min=low, max=high))


def _optional_float(low: float, high: float) -> Any:
    def validator(value: Any) -> float | None:
        if value is None or value == "":
            return None
        return float(_ranged(float, low, high)(value))

    return validator


def _model_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    names = [vol.Coerce(str)(item).strip() for item in vol.Schema([vol.Coerce(str)])(value)]
    for name in names:
        try:
            BodhiModel.from_name(name)
        except UnknownModelError as err:
            raise vol.Invalid(str(err)) from None
    return names


SCHEMA = vol.Schema(
    {
        vol.Optional("uri", default=DEFAULT_URI): _uri,
        vol.Optional("bodhi_url", default=DEFAULT_BODHI_URL): _websocket_url,
        vol.Required("api_key"): _non_empty,
        vol.Optional("customer_id", default=None): _customer_id,
        vol.Optional("model", default=DEFAULT_MODEL): _non_empty,
        vol.Optional("domain", default=DEFAULT_DOMAIN): vol.In(DOMAINS),
        vol.Optional("extra_models", default=list): _model_names,
        vol.Optional("chunk_ms", default=100): _ranged(int, CHUNK_MS_RANGE[0], CHUNK_MS_RANGE[1]),
        vol.Optional("lead", default=1.0): _ranged(float, 0.0, 30.0),
        vol.Optional("connect_timeout", default=5.0): _ranged(float, 0.1, 120.0),
        vol.Optional("response_timeout", default=5.0): _ranged(float, 0.1, 120.0),
        vol.Optional("zeroconf", default=None): _zeroconf,
        vol.Optional("demo", default=False): _boolean,
        vol.Optional("endpointing", default=False): _boolean,
        vol.Optional("endpoint_silence", default=None): _optional_float(0.44, 1.2),
        vol.Optional("no_speech_timeout", default=8.0): _ranged(float, 1.0, 60.0),
        vol.Optional("max_command", default=15.0): _ranged(float, 1.0, 300.0),
        vol.Optional("hotwords", default=list): _hotwords,
        vol.Optional("parse_number", default=False): _boolean,
        vol.Optional("language_id", default=False): _boolean,
        vol.Optional("transliterate", default=False): _boolean,
        vol.Optional("min_confidence", default=None): _optional_float(0.0, 1.0),
        vol.Optional("hass_url", default=None): _http_url,
        vol.Optional("hass_token", default=None): vol.Any(None, _non_empty),
        vol.Optional("hass_names", default=False): _boolean,
        vol.Optional("retries", default=2): _ranged(int, 0, 10),
        vol.Optional("retry_budget", default=3.0): _ranged(float, 0.0, 60.0),
        vol.Optional("max_sessions", default=20): _ranged(int, 1, 10_000),
        vol.Optional("max_connections", default=100): _ranged(int, 1, 100_000),
        vol.Optional("idle_timeout", default=120.0): _ranged(float, 1.0, 86_400.0),
        vol.Optional("max_audio", default=300.0): _ranged(float, 1.0, 3600.0),
        vol.Optional("shutdown_timeout", default=10.0): _ranged(float, 0.0, 300.0),
        vol.Optional("bodhi_ca", default=None): _ca_file,
        vol.Optional("allow_insecure", default=False): _boolean,
        vol.Optional("debug", default=False): _boolean,
        vol.Optional("log_format", default=DEFAULT_LOG_FORMAT): vol.Coerce(str),
    }
)


@dataclass(frozen=True)
class Settings:
    uri: str
    bodhi_url: str
    api_key: str = field(repr=False)
    customer_id: str | None = field(repr=False)
    model: str
    domain: str
    extra_models: tuple[str, ...]
    chunk_ms: int
    lead: float
    connect_timeout: float
    response_timeout: float
    zeroconf: str | None
    demo: bool
    endpointing: bool
    endpoint_silence: float | None
    no_speech_timeout: float
    max_command: float
    hotwords: tuple[Hotword, ...]
    parse_number: bool
    language_id: bool
    transliterate: bool
    min_confidence: float | None
    hass_url: str | None
    hass_token: str | None = field(repr=False)
    hass_names: bool
    retries: int
    retry_budget: float
    max_sessions: int
    max_connections: int
    idle_timeout: float
    max_audio: float
    shutdown_timeout: float
    bodhi_ca: str | None
    allow_insecure: bool
    debug: bool
    log_format: str

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.extra_models)

    @property
    def is_legacy_platform(self) -> bool:
        return urlsplit(self.bodhi_url).hostname in LEGACY_HOSTS


def validate(raw: Mapping[str, Any]) -> Settings:
    """Validate merged raw settings; raises :class:`SettingsError` naming the first problem."""
    raw = dict(raw)
    if raw.get("demo") not in (None, "") and _boolean(raw["demo"]):
        # The demo talks to the bundled simulator, which takes any key.
        raw.setdefault("api_key", DEMO_API_KEY)
    try:
        data = SCHEMA(raw)
    except vol.MultipleInvalid as err:
        first = err.errors[0]
        name = str(first.path[0]) if first.path else "settings"
        if first.error_message == "required key not provided" and name == "api_key":
            raise SettingsError(
                f"missing {_describe(name)}: set it, or BODHI_API_KEY_FILE to a file holding it"
            ) from None
        if first.error_message == "extra keys not allowed":
            raise SettingsError(f"unknown setting '{name}'") from None
        value = "" if name in SECRETS else _shown_value(raw.get(name))
        raise SettingsError(f"invalid {_describe(name)}{value}: {first.error_message}") from None

    catalog = Catalog(data["extra_models"])
    if data["model"] not in catalog:
        raise SettingsError(
            f"invalid {_describe('model')}: unknown Bodhi model '{data['model']}'; "
            f"valid models: {', '.join(catalog.names)} (add others with --extra-model)"
        )
    settings = Settings(
        **{**data, "extra_models": tuple(data["extra_models"]), "hotwords": tuple(data["hotwords"])}
    )
    if (
        urlsplit(settings.bodhi_url).scheme == "ws"
        and not is_loopback(urlsplit(settings.bodhi_url).hostname or "")
        and not settings.allow_insecure
    ):
        raise SettingsError(
            f"refusing {_describe('bodhi_url')} {settings.bodhi_url}: ws:// would send the API "
            "key and your audio unencrypted over the network; use wss://, or set "
            "allow_insecure (--allow-insecure) if you really mean it"
        )
    if bool(settings.hass_url) != bool(settings.hass_token):
        missing = "hass_token" if settings.hass_url else "hass_url"
        raise SettingsError(
            f"missing {_describe(missing)}: Home Assistant's names need both hass_url "
            "and hass_token (a long-lived access token, also HASS_TOKEN_FILE)"
        )
    if settings.zeroconf is not None and not settings.uri.startswith("tcp://"):
        raise SettingsError(
            f"invalid {_describe('zeroconf')}: zeroconf advertises a TCP port, "
            f"but {_describe('uri')} is {settings.uri}"
        )
    if settings.is_legacy_platform and not settings.customer_id and not settings.demo:
        raise SettingsError(
            f"missing {_describe('customer_id')}: {settings.bodhi_url} needs the customer id "
            "as well as the API key (or BODHI_CUSTOMER_ID_FILE)"
        )
    return settings


def _shown_value(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A URL's user part may be a password: never echo it.
    text = re.sub(r"(//)[^/@]*@", r"\1…@", text)
    return f" '{text[:60]}'"


# -- sources -------------------------------------------------------------------------------


def _read_secret_file(env_name: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise SettingsError(f"cannot read {env_name}={path}: {err.strerror}") from None


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings given by environment variables (``*_FILE`` for the secrets)."""
    raw: dict[str, Any] = {}
    for setting in SETTINGS:
        file_env = f"{setting.env}_FILE"
        if setting.name in SECRETS and environ.get(file_env):
            if environ.get(setting.env):
                raise SettingsError(f"set {setting.env} or {file_env}, not both")
            raw[setting.name] = _read_secret_file(file_env, environ[file_env])
        elif environ.get(setting.env, "") != "":
            raw[setting.name] = environ[setting.env]
    return raw


def read_config_file(path: str) -> dict[str, Any]:
    """Settings from a YAML or JSON file (JSON is YAML, so one parser serves both)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}"
        elif isinstance(err, json.JSONDecodeError):
            where = f" at line {err.lineno}"
        raise SettingsError(f"config file {path} is not valid YAML or JSON{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping of setting: value")
    unknown = sorted(str(key) for key in data if key not in _BY_NAME)
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown setting '{unknown[0]}'; "
            f"known settings: {', '.join(setting.name for setting in SETTINGS)}"
        )
    # Add-on options leave optional strings empty rather than absent.
    return {key: value for key, value in data.items() if value != ""}


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        help_text = f"{setting.help} (env {setting.env})"
        if setting.kind == "switch":
            parser.add_argument(setting.flag, action="store_true", default=None, help=help_text)
        elif setting.kind == "optional":
            parser.add_argument(
                setting.flag, nargs="?", const=True, default=None, metavar="NAME", help=help_text
            )
        elif setting.kind == "list":
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                action="append",
                default=None,
                help=f"{help_text}; repeatable",
            )
        else:
            parser.add_argument(setting.flag, dest=setting.name, default=None, help=help_text)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def from_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        setting.name: getattr(args, setting.name)
        for setting in SETTINGS
        if setting.flag is not None and getattr(args, setting.name, None) is not None
    }


def merge(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The raw layers, unvalidated: flags over environment over the config file."""
    config_path = args.config or environ.get("BODHI_CONFIG")
    raw = read_config_file(config_path) if config_path else {}
    raw.update(from_environment(environ))
    raw.update(from_arguments(args))
    return raw


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse flags, read the environment and config file, validate.

    Raises :class:`SettingsError`.
    """
    args = build_parser().parse_args(argv)
    return validate(merge(args, os.environ if environ is None else environ))
