"""What a server address means: a TCP host and port, every interface, or this machine."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
"""Hosts a server binds to listen on every interface; no client can connect to them."""


def tcp_host_port(uri: str) -> tuple[str, int] | None:
    """``tcp://HOST:PORT`` → (HOST, PORT), HOST "" when left out (every interface); None for
    another scheme or without a valid port."""
    parts = urlsplit(uri)
    if parts.scheme != "tcp":
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return None if port is None else (parts.hostname or "", port)


def is_loopback(host: str) -> bool:
    """True for this machine: ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
