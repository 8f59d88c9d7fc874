"""Validators for settings: each takes what a user wrote (a string from the environment or a
flag, or a YAML/JSON value from a file) and returns the value, or raises ``vol.Invalid``
with words that finish the sentence "invalid <name> …: ".

A secret's validator never puts its value in a message.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Callable, Collection
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

import voluptuous as vol

from ..addresses import tcp_host_port

CREDENTIALS_HELP: Final = "see 'Getting credentials' in the README"


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


def port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise vol.Invalid("has a port out of range: use 1-65535") from None


def uri(value: Any) -> str:
    """Where to serve Wyoming: ``tcp://HOST:PORT``, ``unix://PATH`` or ``stdio://``."""
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme == "tcp":
        port(parts)
        host_port = tcp_host_port(text)
        if host_port is None or not host_port[0]:
            raise vol.Invalid("needs a host and a port, e.g. tcp://0.0.0.0:10300")
    elif parts.scheme == "unix":
        if not parts.path:
            raise vol.Invalid("needs a socket path, e.g. unix:///run/wyoming-bodhi.sock")
    elif text != "stdio://":
        raise vol.Invalid("is not tcp://HOST:PORT, unix://PATH or stdio://")
    return text


def http_uri(value: Any) -> str | None:
    """Where to serve HTTP: ``tcp://HOST:PORT``, or unset."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme != "tcp":
        raise vol.Invalid("is not tcp://HOST:PORT, e.g. tcp://127.0.0.1:10301")
    port(parts)
    host_port = tcp_host_port(text)
    if host_port is None:
        raise vol.Invalid("needs a port, e.g. tcp://127.0.0.1:10301")
    return text


def items(value: Any) -> list[Any] | tuple[Any, ...]:
    """A list as given in a file, or as a comma- or space-separated string (a variable)."""
    return value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()


def networks(value: Any) -> tuple[str, ...]:
    found = []
    for item in items(value):
        try:
            found.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise vol.Invalid(f"{item!r} is not an IP address or network") from None
    return tuple(found)


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]{0,252})")


def host_names(value: Any) -> tuple[str, ...]:
    """Host names as a browser sends them in ``Host`` (no scheme, no port), or ``*``."""
    names = []
    for item in items(value):
        name = str(item).strip().lower()
        if name != "*" and not _HOST_NAME.fullmatch(name):
            raise vol.Invalid(
                f"{str(item)[:60]!r} is not a host name: give a name alone, without a scheme "
                "or port (e.g. stt.lan), or * for any"
            )
        names.append(name)
    return tuple(names)


def websocket_url(value: Any) -> str:
    """An engine's ``ws://`` or ``wss://`` URL, plain: no user part, no fragment."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise vol.Invalid("is not a ws:// or wss:// URL")
    unprintable = any(c.isspace() or not c.isprintable() for c in text)
    if "@" in parts.netloc or "\\" in text or "#" in text or unprintable:
        # Parsers disagree on such URLs (which host is it?), and credentials belong in a
        # secret setting, never in a URL that is logged.
        raise vol.Invalid(
            "must be a plain ws[s]://HOST[:PORT][/PATH] URL, with no user part or fragment"
        )
    if port(parts) == 0:
        raise vol.Invalid("has a port out of range: use 1-65535")
    return text


def http_url(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise vol.Invalid("is not an http:// or https:// URL")
    port(parts)
    return text.rstrip("/")


def ca_file(value: Any) -> str | None:
    """A PEM file of CA certificates that loads, or unset."""
    path = "" if value is None else str(value).strip()
    if not path:
        return None
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as err:
        reason = getattr(err, "strerror", None) or err.__class__.__name__
        raise vol.Invalid(f"cannot load CA certificates from it ({reason})") from None
    return path


def secret(placeholders: Collection[str] = ()) -> Callable[[Any], str | None]:
    """A credential: stripped, empty is unset, and refused when it is ``placeholders``' (what
    an example file holds in its place) or holds a character no credential does. Its value
    is never in a message, nor where in it the character is."""

    def validate(value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip()
        if any(not c.isprintable() for c in text):
            # A control character (a pasted ^A, a CR mid-value) cannot go in an HTTP header:
            # accepted, it would fail every request with a traceback instead of here, once.
            message = "holds a control character or other invisible character"
            raise vol.Invalid(f"{message}: copy it again, without it")
        if text in placeholders:
            raise vol.Invalid(
                f"is the example's placeholder, not a real credential; {CREDENTIALS_HELP}"
            )
        return text or None

    return validate


def non_empty(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise vol.Invalid("is empty")
    return text


TRUE: Final = frozenset({"1", "true", "yes", "on"})
FALSE: Final = frozenset({"", "0", "false", "no", "off"})


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise vol.Invalid("expected true or false (also yes/no, on/off, 1/0)")


def zeroconf(value: Any) -> str | None:
    """Off (None), on under the default name (""), or on under a given name."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    text = str(value).strip()
    if text.lower() in FALSE:
        return None
    if text.lower() in TRUE:
        return ""
    return text


def text(value: Any) -> str:
    return str(value)
