"""The Bodhi simulator: the shared server shell with Bodhi's handshake and session."""

from __future__ import annotations

import logging

from aiohttp import web

from ...engines.bodhi.catalog import Catalog
from ..messages import SimulatedSession
from ..options import SimulatorOptions
from ..record import ConnectionRecord
from ..server import SimulatorServer
from .session import BodhiSession, is_uuid

_LOGGER = logging.getLogger(__name__)


class BodhiSimulator(SimulatorServer):
    """A Bodhi-compatible streaming ASR server: ``x-api-key`` (and ``x-customer-id``) or a
    bearer token, a config message first, results per segment, eos."""

    vendor = "Bodhi"

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        super().__init__(options)
        self.catalog = Catalog(self.options.extra_models)

    def new_session(self) -> SimulatedSession:
        return BodhiSession(self.options, self.catalog)

    def _authenticate(
        self, request: web.Request, record: ConnectionRecord
    ) -> tuple[int, str] | None:
        headers = request.headers
        header_key = headers.get("x-api-key")
        authorization = headers.get("authorization")
        customer_id = headers.get("x-customer-id")
        record.auth_headers = tuple(
            name
            for name, value in (
                ("x-api-key", header_key),
                ("authorization", authorization),
                ("x-customer-id", customer_id),
            )
            if value is not None
        )
        # Names only: the values are secrets and must never reach a log.
        _LOGGER.info(
            "connection %d: handshake on %r with headers %s",
            record.index,
            request.path,
            ", ".join(record.auth_headers) or "(no auth headers)",
        )
        bearer = None
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        keys = [key for key in (header_key, bearer) if key]
        record.api_key = keys[0] if keys else None
        if header_key and bearer:
            record.auth_scheme = "both"
        elif header_key or bearer:
            record.auth_scheme = "x-api-key" if header_key else "bearer"
        record.customer_id = customer_id
        if not keys:
            return 401, "missing API key"
        expected = self.options.api_key
        if expected is not None and any(key != expected for key in keys):
            return 401, "invalid API key"
        if customer_id is None:
            if self.options.require_customer_id:
                return 401, "missing customer id"
        elif not is_uuid(customer_id):
            return 401, "invalid customer id"
        return None


__all__ = ["BodhiSimulator"]
