"""The iApp ASRx simulator: the shared server shell with iApp's handshake and session."""

from __future__ import annotations

import logging

from aiohttp import web

from ..messages import SimulatedSession
from ..record import ConnectionRecord
from ..server import SimulatorServer
from .options import IappOptions
from .session import IappSession

_LOGGER = logging.getLogger(__name__)


class IappSimulator(SimulatorServer):
    """An iApp ASRx-compatible streaming ASR server: the key in an ``apikey`` header, raw
    16 kHz audio, sentence results, CloseConnection."""

    vendor = "iApp"
    options_type = IappOptions
    options: IappOptions

    def new_session(self) -> SimulatedSession:
        return IappSession(self.options)

    def authenticate(
        self, request: web.Request, record: ConnectionRecord
    ) -> tuple[int, str] | None:
        key = request.headers.get("apikey")
        record.auth_headers = ("apikey",) if key is not None else ()
        # The name only: the value is a secret and must never reach a log.
        _LOGGER.info(
            "connection %d: handshake on %r with headers %s",
            record.index,
            request.path,
            ", ".join(record.auth_headers) or "(no auth headers)",
        )
        record.api_key = key
        record.auth_scheme = "apikey" if key else None
        if not key:
            return 401, "missing apikey"
        if self.options.api_key is not None and key != self.options.api_key:
            return 401, "invalid apikey"
        return None


__all__ = ["IappSimulator"]
