"""Speech-to-text engines: one package per vendor behind the interface in :mod:`.base`.

:func:`configured_engines` builds the engines the settings configure. Each vendor's package
is imported only when it is configured.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import aiohttp

from .base import Engine

if TYPE_CHECKING:
    from ..settings import Settings


def configured_engines(
    settings: Settings, http: aiohttp.ClientSession, ssl_context: ssl.SSLContext | None
) -> list[Engine]:
    """The engines with credentials, in the order routing tries them (Bodhi first)."""
    engines: list[Engine] = []
    if settings.api_key:
        from .bodhi.client import BodhiCredentials
        from .bodhi.engine import BodhiEngine

        engines.append(
            BodhiEngine(
                http,
                settings.bodhi_url,
                BodhiCredentials(settings.api_key, settings.customer_id),
                catalog=settings.catalog,
                default_model=settings.model,
                domain=settings.domain,
                parse_number=settings.parse_number,
                language_id=settings.language_id,
                transliterate=settings.transliterate,
                ssl_context=ssl_context,
            )
        )
    if settings.iapp_api_key:
        from .iapp.engine import IappEngine

        engines.append(
            IappEngine(http, settings.iapp_url, settings.iapp_api_key, ssl_context=ssl_context)
        )
    return engines
