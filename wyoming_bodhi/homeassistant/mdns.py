"""``--zeroconf``: advertise ``_wyoming._tcp.local.`` so Home Assistant discovers the server."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from ..addresses import WILDCARD_HOSTS, tcp_host_port

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
DEFAULT_NAME = "bodhi"
_MDNS_GROUP = "224.0.0.251"


def lan_address() -> str:
    """The address other machines reach this one on: the route towards the mDNS group.

    Connecting a UDP socket sends nothing; it only asks the kernel which local address
    it would use, which is the interface mDNS itself answers on.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((_MDNS_GROUP, 5353))
        return str(probe.getsockname()[0])


def advertised_address(uri: str) -> tuple[str, int]:
    """Address and port to publish for a ``tcp://`` server URI."""
    host_port = tcp_host_port(uri)
    if host_port is None:
        raise ValueError(f"zeroconf needs a tcp:// server URI, not {uri}")
    host, port = host_port
    # Bound to every interface: publish the LAN address, never 0.0.0.0.
    return (lan_address() if host in WILDCARD_HOSTS else socket.gethostbyname(host)), port


class Advertisement:
    """A registered mDNS service; :meth:`close` withdraws it."""

    def __init__(self, zeroconf: Any, info: Any) -> None:
        self._zeroconf = zeroconf
        self.info = info

    async def close(self) -> None:
        await self._zeroconf.async_unregister_service(self.info)
        await self._zeroconf.async_close()


async def advertise(
    uri: str, name: str | None, interfaces: Sequence[str] | None = None
) -> Advertisement:
    """Register the server; needs the optional ``zeroconf`` extra."""
    try:
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf
    except ImportError:
        raise RuntimeError(
            "--zeroconf needs the zeroconf package: pip install zeroconf (in a clone: "
            "pip install '.[zeroconf]')"
        ) from None
    host, port = advertised_address(uri)
    service_name = name or DEFAULT_NAME
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"{service_name}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(host)],
        port=port,
        server=f"{socket.gethostname()}.local.",
    )
    zeroconf = AsyncZeroconf(
        interfaces=list(interfaces) if interfaces else InterfaceChoice.All,
        ip_version=IPVersion.V4Only,
    )
    # allow_name_change: a second server on the network gets "bodhi (2)", not a crash.
    await zeroconf.async_register_service(info, allow_name_change=True)
    _LOGGER.info("Advertising %s at %s:%d over zeroconf", info.name, host, port)
    return Advertisement(zeroconf, info)
