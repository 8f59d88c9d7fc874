"""Who may ask the HTTP side anything: peers by address, requests by the host they name,
browsers by the origin of the page that sent them. Plain functions of header values.

- **Peers** (``http_allow``): compared as IPv4 when they arrive IPv4-mapped on a dual-stack
  socket (``::ffff:192.0.2.7``).
- **Host**: a page of another site whose name resolves to this server (DNS rebinding) sends
  its own name. A request must name the server by an IP address (which cannot be rebound),
  ``localhost``, or a name the operator gave (``http_hosts``); ``*`` allows any name, for a
  proxy that checks names itself. Never judged against the request itself.
- **Origin**: browsers send it with every WebSocket and every POST, and apply no CORS to
  WebSockets, so it is what keeps another site's page from reading the live feed or starting
  a paid session. A request with an Origin must come from the page's own origin: the host it
  was sent to, or (behind a proxy such as Home Assistant's ingress) ``X-Forwarded-Host``.
  ``null`` (a sandboxed frame, a file) is another site. No Origin at all is a program, not a
  browser: nothing a page of another site can make send a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..addresses import ip_of

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY_HOST = "*"


def networks(allowed: Iterable[str]) -> list[Network]:
    """``http_allow``'s addresses and networks, as networks."""
    return [ipaddress.ip_network(network) for network in allowed]


def peer_allowed(peer: str | None, networks: Iterable[Network]) -> bool:
    """Is the peer address within one of ``networks``?"""
    address = ip_of(peer or "")
    if address is None:
        return False
    return any(address in network for network in networks)


def _hostname(host: str) -> str:
    """``Name:port``, ``[::1]:port`` → ``name``, ``::1``."""
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return ""


def host_allowed(host: str | None, names: frozenset[str]) -> bool:
    """Does ``host`` (a request's ``Host``) name this server as the operator allows?"""
    if host is None or ANY_HOST in names:
        # No Host at all is not a browser (HTTP/1.0, a program).
        return True
    name = _hostname(host)
    return name == "localhost" or name in names or ip_of(name) is not None


def origin_allowed(origin: str | None, host: str | None, forwarded_host: str | None) -> bool:
    """Is ``origin`` (a request's ``Origin``) the page's own, or absent?"""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    hosts = {(host or "").lower()}
    if forwarded_host:
        hosts.add(forwarded_host.split(",")[0].strip().lower())
    return parts.netloc.lower() in hosts
