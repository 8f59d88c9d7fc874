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
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
import yaml

from .catalog import DEFAULT_DOMAIN, DEFAULT_MODEL, DOMAINS, BodhiModel, Catalog, UnknownModelError

DEFAULT_URI = "tcp://0.0.0.0:10300"
DEFAULT_BODHI_URL = "wss://bodhi.navana.ai"
LEGACY_HOSTS = frozenset({"bodhi.navana.ai"})
CHUNK_MS_RANGE = (50, 500)
DEFAULT_LOG_FORMAT = logging.BASIC_FORMAT

SECRETS = ("api_key", "customer_id")
DEMO_API_KEY = "demo-key-for-the-bundled-simulator"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it and says what is expected."""


@dataclass(frozen=True)
class Setting:
    """How one setting is given: its flag (if any) and its environment variable."""

    name: str
    env: str
    flag: str | None
    help: str


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
        "extra_models", "BODHI_EXTRA_MODELS", "--extra-model", "model names to add to the catalogue"
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
    ),
    Setting(
        "demo",
        "BODHI_DEMO",
        "--demo",
        "serve through the bundled Bodhi simulator: no account needed",
    ),
    Setting("debug", "WYOMING_DEBUG", "--debug", "log debug messages"),
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


def _uri(value: Any) -> str:
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
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
    return text


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
        vol.Optional("chunk_ms", default=100): vol.All(
            vol.Coerce(int), vol.Range(min=CHUNK_MS_RANGE[0], max=CHUNK_MS_RANGE[1])
        ),
        vol.Optional("lead", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0.0, max=30.0)),
        vol.Optional("connect_timeout", default=5.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=120.0)
        ),
        vol.Optional("response_timeout", default=5.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=120.0)
        ),
        vol.Optional("zeroconf", default=None): _zeroconf,
        vol.Optional("demo", default=False): _boolean,
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
    settings = Settings(**{**data, "extra_models": tuple(data["extra_models"])})
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
        if setting.name in ("debug", "demo"):
            parser.add_argument(setting.flag, action="store_true", default=None, help=help_text)
        elif setting.name == "zeroconf":
            parser.add_argument(
                setting.flag, nargs="?", const=True, default=None, metavar="NAME", help=help_text
            )
        elif setting.name == "extra_models":
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                action="append",
                default=None,
                metavar="MODEL",
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
