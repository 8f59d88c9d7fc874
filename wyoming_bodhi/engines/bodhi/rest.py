"""Bodhi's non-streaming API over aiohttp: one WAV file posted, its transcript back.

``POST <host>/api/transcribe`` as ``multipart/form-data``: the fields of a
:class:`~.protocol.TranscribeRequest` and the file as ``audio_file``, authenticated by
``x-api-key`` (and ``x-customer-id`` on the legacy platform). What the fields and the reply
mean is in :mod:`.protocol`; only the HTTP lives here. That shape comes from public material
outside the vendor documents we hold and has not been checked against the live service.

Every failure is a :class:`BodhiError` whose message never holds a credential: aiohttp's
exceptions (which carry the request, headers included) are re-raised ``from None``, and the
key and customer id are blanked out of anything the server said.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from typing import Final

import aiohttp

from ..base import SAMPLE_WIDTH, redact
from ..websocket import connection_failures, host_of
from .client import BodhiCredentials
from .errors import (
    ERRORS,
    BodhiConnectionLostError,
    BodhiError,
    BodhiProtocolError,
    BodhiTimeoutError,
)
from .protocol import TranscribeRequest, Transcription, parse_transcription

MAX_REPLY_BYTES: Final = 1 << 20
"""A transcript is text: an hour of speech is well under 100 kB. Anything longer than this
is not a reply worth reading to the end."""

_READ_PIECE: Final = 64 * 1024


async def transcribe_file(
    http: aiohttp.ClientSession,
    url: str,
    credentials: BodhiCredentials,
    request: TranscribeRequest,
    wav: bytes,
    *,
    connect_timeout: float,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> Transcription:
    """Post ``wav`` (a whole WAV file) to ``url`` and return its transcript.

    ``connect_timeout`` bounds name resolution, TCP and TLS; ``timeout`` everything, from
    connecting to the last byte of the reply. Certificates are always verified
    (``ssl_context`` only adds trust, e.g. a private CA). Redirects are not followed: they
    would carry the key to wherever they point. Raises :class:`BodhiError`.
    """
    form = aiohttp.FormData()
    for name, value in request.fields().items():
        form.add_field(name, value)
    form.add_field("audio_file", wav, filename="audio.wav", content_type="audio/wav")
    host = host_of(url)
    try:
        with connection_failures(url, ERRORS):
            try:
                async with (
                    asyncio.timeout(timeout),
                    http.post(
                        url,
                        data=form,
                        headers=credentials.transcribe_headers(),
                        ssl=ssl_context if ssl_context is not None else True,
                        allow_redirects=False,
                        # No read timeout of aiohttp's own: the deadline above is the bound.
                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
                    ) as response,
                ):
                    status = response.status
                    body = await _read_reply(response)
            # Only the connect timeout is aiohttp's (ConnectionTimeoutError from 3.10 on).
            except aiohttp.ServerTimeoutError:
                raise BodhiTimeoutError(
                    f"Bodhi at {host} did not accept the connection within {connect_timeout:g} s"
                ) from None
            except TimeoutError:
                raise BodhiTimeoutError(
                    f"Bodhi at {host} did not answer within {timeout:g} s"
                ) from None
            except aiohttp.ClientConnectorError:
                raise  # connection_failures names it
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as err:
                raise BodhiConnectionLostError(err.__class__.__name__) from None
            except aiohttp.ClientOSError as err:
                raise BodhiConnectionLostError(err.strerror or err.__class__.__name__) from None
        return parse_transcription(status, body)
    except BodhiError as err:
        raise redact(err, (credentials.api_key, credentials.customer_id)) from None


def wav_file(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM in a WAV file: what the API takes."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE",
        b"fmt ", 16, 1, 1, rate, rate * SAMPLE_WIDTH, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH,
        b"data", len(pcm),
    )  # fmt: skip
    return header + pcm


async def _read_reply(response: aiohttp.ClientResponse) -> bytes:
    """The reply's body, or :class:`BodhiProtocolError` once it passes `MAX_REPLY_BYTES`."""
    body = bytearray()
    async for piece in response.content.iter_chunked(_READ_PIECE):
        body += piece
        if len(body) > MAX_REPLY_BYTES:
            raise BodhiProtocolError(
                f"unexpected reply from Bodhi (HTTP {response.status}): longer than "
                f"{MAX_REPLY_BYTES} bytes, not read further"
            )
    return bytes(body)


__all__ = ["MAX_REPLY_BYTES", "transcribe_file", "wav_file"]
