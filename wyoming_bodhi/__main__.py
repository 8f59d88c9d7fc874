"""``wyoming-bodhi``: load settings, build the bridge, serve Wyoming."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from functools import partial

import aiohttp
from wyoming.server import AsyncServer

from . import __version__
from .bridge import Bridge
from .handler import BodhiEventHandler
from .settings import Settings, SettingsError, load

_LOGGER = logging.getLogger("wyoming_bodhi")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format=settings.log_format,
        force=True,
    )
    if settings.debug:
        # aiohttp's client debug logs can include request headers: keep them out.
        logging.getLogger("aiohttp").setLevel(logging.INFO)


async def serve(settings: Settings) -> None:
    async with aiohttp.ClientSession() as http:
        bridge = Bridge(settings, http)
        server = AsyncServer.from_uri(settings.uri)
        _LOGGER.info(
            "wyoming-bodhi %s serving %s; Bodhi at %s, default model %s, %d models, credentials %r",
            __version__,
            settings.uri,
            settings.bodhi_url,
            settings.model,
            len(bridge.catalog),
            bridge.credentials,
        )
        await server.run(partial(BodhiEventHandler, bridge=bridge))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(argv)
    except SettingsError as err:
        print(f"wyoming-bodhi: {err}", file=sys.stderr)
        return 2
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
