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


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` is written as (None for a name), an IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``, how a dual-stack socket sees IPv4 peers) as the IPv4 address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    """True for this machine: ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    address = ip_of(host)
    return address is not None and address.is_loopback
