"""The Bodhi simulator: the shared server shell with Bodhi's handshake and session, and its
non-streaming API (``POST /api/transcribe``)."""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web

from ...engines.bodhi.catalog import Catalog
from ...engines.bodhi.protocol import TRANSCRIBE_PATH
from ..messages import Message, SimulatedSession
from ..options import SimulatorOptions
from ..record import ENDED_ANSWERED, ENDED_ERROR, ConnectionRecord, UploadRecord
from ..server import SimulatorServer
from .options import BodhiOptions
from .rest import AUDIO_FIELD, failure, read_wav, transcribe
from .session import BodhiSession, is_uuid

FORM_URLENCODED = "application/x-www-form-urlencoded"

_LOGGER = logging.getLogger(__name__)


class BodhiSimulator(SimulatorServer):
    """A Bodhi-compatible streaming ASR server: ``x-api-key`` (and ``x-customer-id``) or a
    bearer token, a config message first, results per segment, eos."""

    vendor = "Bodhi"
    max_request_bytes = 32 * 1024 * 1024
    """The largest file the non-streaming API takes: 17 minutes of 16 kHz 16-bit mono."""

    options_type = BodhiOptions
    options: BodhiOptions

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        super().__init__(options)
        self.catalog = Catalog(self.options.extra_models)

    def new_session(self) -> SimulatedSession:
        return BodhiSession(self.options, self.catalog)

    def add_routes(self, app: web.Application) -> None:
        # Under any path prefix, as the WebSocket takes any path.
        app.router.add_post("/{tail:.*}", self._handle_transcribe)

    async def _handle_transcribe(self, request: web.Request) -> web.Response:
        """One request to the non-streaming API: the handshake's authentication and
        refusals, then the form, then the whole file transcribed at once."""
        record = await self._open_record(request)
        try:
            if not request.path.endswith(TRANSCRIBE_PATH):
                return _answer(record, 404, f"no such endpoint: POST {request.path}")
            refusal = await self._admission(request, record)
            if refusal is not None:
                status, reason = refusal
                return web.json_response(failure(status, reason), status=status)
            # A form without a file comes urlencoded: then the file is what is missing.
            if request.content_type not in ("multipart/form-data", FORM_URLENCODED):
                return _answer(record, 400, "expected multipart/form-data")
            try:
                posted = await request.post()
            except web.HTTPRequestEntityTooLarge:
                limit = self.max_request_bytes
                return _answer(record, 413, f"the request is larger than {limit} bytes")
            except ValueError as err:
                return _answer(record, 400, f"malformed multipart/form-data: {err}")
            record.form = {}
            for name, value in posted.items():
                if isinstance(value, str):
                    record.form.setdefault(name, value)
            upload = posted.get(AUDIO_FIELD)
            data = None
            if isinstance(upload, web.FileField):
                data = upload.file.read()
                record.upload = _upload_record(upload, data)
            record.call_id = str(uuid.uuid4())
            status, body, audio = transcribe(
                record.form, data, self.options, self.catalog, record.call_id
            )
            if audio is not None and self.options.record_audio:
                record.audio.extend(audio.pcm)
            return _reply(record, status, body)
        finally:
            self._close_record(record)

    def authenticate(
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
            "connection %d: %s %r with headers %s",
            record.index,
            request.method,
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


def _upload_record(upload: web.FileField, data: bytes) -> UploadRecord:
    try:
        header = read_wav(data)
    except ValueError:
        return UploadRecord(len(data), upload.filename, upload.content_type, None, None)
    fmt = header.format
    frames = header.frames(len(data))
    seconds = None if frames is None else frames / fmt.rate
    return UploadRecord(len(data), upload.filename, upload.content_type, fmt.describe(), seconds)


def _reply(record: ConnectionRecord, status: int, body: Message) -> web.Response:
    record.http_status = status
    record.sent.append(body)
    outcome = ENDED_ANSWERED if status == 200 else ENDED_ERROR
    record.end(outcome, time.monotonic(), None, None if status == 200 else body["message"])
    return web.json_response(body, status=status)


def _answer(record: ConnectionRecord, status: int, message: str) -> web.Response:
    """A failure reply, recorded."""
    return _reply(record, status, failure(status, message))


__all__ = ["BodhiSimulator"]
