"""Bodhi's non-streaming API: ``wyoming-bodhi-transcribe FILE --rest`` against the simulator.

The request and reply shapes (sans-I/O), the simulator's endpoint as a client meets it, and
the command as a user runs it (a separate process, credentials in its environment) against
real servers on 127.0.0.1: the simulator, and stand-ins that misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wyoming.asr import Transcribe

from wyoming_bodhi.clients.recording import open_recording
from wyoming_bodhi.clients.rest import recognize
from wyoming_bodhi.clients.transcribe import main as transcribe_main
from wyoming_bodhi.engines.base import EngineError, Hotword
from wyoming_bodhi.engines.bodhi import BodhiCredentials, BodhiError
from wyoming_bodhi.engines.bodhi.protocol import (
    TranscribeRequest,
    Transcription,
    parse_transcription,
    transcribe_url,
)
from wyoming_bodhi.engines.bodhi.rest import MAX_REPLY_BYTES, transcribe_file
from wyoming_bodhi.settings import validate
from wyoming_bodhi.simulators.bodhi import BodhiSimulator
from wyoming_bodhi.wav import WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_PCM

from .engine_fixtures import ECHO_MODEL, LEAKY_WHOLE_FILE
from .harness import (
    API_KEY,
    CUSTOMER_ID,
    clean_env,
    running_simulator,
    self_signed_certificate,
    serving,
)
from .signals import encode, utterances
from .test_transcribe_client import Run, fmt, wav

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "samples" / "batti-jalao.wav")
PROG = "wyoming-bodhi-transcribe"
TEXTS = ["batti jalao", "pankha chalao"]
SECRETS = (API_KEY, CUSTOMER_ID)
# The command's start-up (numpy, aiohttp, soxr) on a loaded machine, with room to spare:
# enough to tell a bounded wait from a hang.
STARTUP = 10.0


def pcm16(rate: int = 8000, count: int = 2) -> bytes:
    return encode(utterances(rate, count=count))


def wav_bytes(
    pcm: bytes, rate: int = 8000, *, channels: int = 1, bits: int = 16, tag: int = WAVE_FORMAT_PCM
) -> bytes:
    return wav(fmt(tag, channels, bits, rate), pcm)


# -- sans-I/O: the URL, the form, the reply -------------------------------------------------


@pytest.mark.parametrize(
    ("streaming", "rest"),
    [
        ("wss://bodhi.navana.ai", "https://bodhi.navana.ai/api/transcribe"),
        ("wss://stt.navana.ai/", "https://stt.navana.ai/api/transcribe"),
        ("ws://127.0.0.1:8765", "http://127.0.0.1:8765/api/transcribe"),
        ("WSS://proxy.example:8443/bodhi/", "https://proxy.example:8443/bodhi/api/transcribe"),
        (
            "wss://proxy.example/bodhi?tenant=7",
            "https://proxy.example/bodhi/api/transcribe?tenant=7",
        ),
    ],
)
def test_the_endpoint_is_on_the_streaming_host(streaming: str, rest: str) -> None:
    assert transcribe_url(streaming) == rest


def test_form_fields_are_sent_only_when_set() -> None:
    request = TranscribeRequest("hi-general-v2-8khz")
    assert request.fields() == {
        "transaction_id": request.transaction_id,
        "model": "hi-general-v2-8khz",
    }
    assert uuid.UUID(request.transaction_id).version == 4
    assert TranscribeRequest("m").transaction_id != request.transaction_id
    full = TranscribeRequest(
        "hi-general-v2-8khz",
        transaction_id="t",
        parse_number=True,
        hotwords=(Hotword("बत्ती"), Hotword("pankha", 2.5)),
        aux=False,
    )
    assert full.fields() == {
        "transaction_id": "t",
        "model": "hi-general-v2-8khz",
        "parse_number": "true",
        "aux": "false",
        # A JSON string; a missing score is left out, never null.
        "hotwords": '[{"phrase": "बत्ती"}, {"phrase": "pankha", "score": 2.5}]',
    }


def reply(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_a_success_reply() -> None:
    body = reply({"text": "batti jalao", "call_id": "c1", "status": "success", "extra": 1})
    assert parse_transcription(200, body) == Transcription("batti jalao", "c1")
    # Tolerant where nothing is lost: no status, no call id, an empty text.
    assert parse_transcription(200, reply({"text": ""})) == Transcription("", None)


CREDENTIALS = "check BODHI_API_KEY and BODHI_CUSTOMER_ID"

FAILURES: dict[str, tuple[int, bytes, str, str]] = {
    "400": (400, reply({"status": "error", "error": "Bad Request", "message": "model 'x' is not available"}),
            "bodhi-400", "Bodhi rejected the request (400): Bad Request: model 'x' is not available"),
    "400 without a body": (400, b"", "bodhi-400", "Bodhi rejected the request (400): no reason given"),
    "401": (401, reply({"status": "error", "error": "Unauthorized", "message": "invalid API key"}),
            "bodhi-401", f"Bodhi rejected the API key or customer id (401): {CREDENTIALS}; Bodhi said: Unauthorized: invalid API key"),
    "402": (402, reply({"status": "error", "error": "insufficient balance"}),
            "bodhi-402", "Bodhi refused the request: insufficient balance (402); top up the account on the Navana dashboard; Bodhi said: insufficient balance"),
    "403 (message only)": (403, reply({"status": "error", "message": "customer deactivated"}),
            "bodhi-403", "Bodhi refused the request: the customer account is deactivated (403); contact Navana support; Bodhi said: customer deactivated"),
    "500": (500, reply({"status": "error", "error": "Internal Server Error", "message": "internal server error"}),
            "bodhi-500", "Bodhi had an internal error (500); try again shortly; Bodhi said: Internal Server Error"),
    "503 from a proxy": (503, b"<html><body>503 Service Unavailable</body></html>",
            "bodhi-503", "Bodhi is unavailable or overloaded (503); try again shortly"),
    "404": (404, b"Not Found", "bodhi-error", "Bodhi refused the transcription request with HTTP 404"),
    "a redirect": (307, b"", "bodhi-error", "Bodhi refused the transcription request with HTTP 307"),
    "an error under 200, an unknown code": (200, reply({"status": "error", "error": "odd", "code": 1000}),
            "bodhi-error", "Bodhi reported an error (code 1000): odd"),
    "an error under 200, a code of odd digits": (200, reply({"status": "error", "error": "odd", "code": "\u00b2"}),
            "bodhi-error", "Bodhi reported an error (code '\u00b2'): odd"),
    "an error under 200, 5000 digits": (200, reply({"status": "error", "error": "odd", "code": "9" * 5000}),
            "bodhi-error", "Bodhi reported an error (code '99999...999999'): odd"),
    "an error under 200": (200, reply({"status": "error", "error": "no balance", "code": 402}),
            "bodhi-402", "Bodhi refused the request: insufficient balance (402); top up the account on the Navana dashboard; Bodhi said: no balance"),
    "an error under 200, no code": (200, reply({"status": "error", "error": "bad audio"}),
            "bodhi-400", "Bodhi rejected the request (400): bad audio"),
    "control characters": (400, reply({"status": "error", "error": "bad\nline\x1b[31m"}),
            "bodhi-400", "Bodhi rejected the request (400): bad\\x0aline\\x1b[31m"),
    "not JSON": (200, b"<html>hello</html>", "bodhi-protocol",
            "unexpected reply from Bodhi (not JSON, 18 bytes): '<html>hello</html>'"),
    "not an object": (200, b'["text"]', "bodhi-protocol",
            "unexpected reply from Bodhi (not a JSON object, 8 bytes): '[\"text\"]'"),
    "no text": (200, b'{"status": "success"}', "bodhi-protocol",
            "unexpected reply from Bodhi (no text, 21 bytes): '{\"status\": \"success\"}'"),
    "text not a string": (200, b'{"text": 5}', "bodhi-protocol",
            "unexpected reply from Bodhi (no text, 11 bytes): '{\"text\": 5}'"),
    "another status": (200, b'{"text": "", "status": "queued"}', "bodhi-protocol",
            "unexpected reply from Bodhi (status 'queued', 32 bytes): '{\"text\": \"\", \"status\": \"queued\"}'"),
}  # fmt: skip


@pytest.mark.parametrize("name", FAILURES)
def test_a_failure_reply_is_the_handshakes_error_with_what_bodhi_said(name: str) -> None:
    status, body, code, message = FAILURES[name]
    with pytest.raises(BodhiError) as caught:
        parse_transcription(status, body)
    assert (caught.value.code, str(caught.value)) == (code, message)


def test_what_the_server_says_is_bounded() -> None:
    body = reply({"status": "error", "error": "x" * 5000})
    with pytest.raises(BodhiError) as caught:
        parse_transcription(400, body)
    assert len(str(caught.value)) < 600


# -- the client against servers that misbehave ---------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[str]:
    """A raw TCP server on 127.0.0.1; yields it as a ws:// streaming URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass
    writer.close()


async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


@contextlib.asynccontextmanager
async def http_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """An aiohttp server answering every POST with ``handler``; yields it as a ws:// URL."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    async with serving(app) as port:
        yield f"ws://127.0.0.1:{port}"


def answering(body: bytes, status: int = 200) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, status=status, content_type="application/json")

    return handler


async def post_file(url: str, credentials: BodhiCredentials | None = None) -> Transcription:
    async with aiohttp.ClientSession() as http:
        return await transcribe_file(
            http,
            transcribe_url(url),
            credentials or BodhiCredentials(API_KEY, CUSTOMER_ID),
            TranscribeRequest("hi-general-v2-8khz"),
            wav_bytes(pcm16()),
            connect_timeout=2,
            timeout=5,
        )


async def test_misbehaving_replies_are_clear_errors() -> None:
    huge = reply({"text": "x" * MAX_REPLY_BYTES, "status": "success"})
    async with http_server(answering(huge)) as url:
        with pytest.raises(
            BodhiError,
            match=r"^unexpected reply from Bodhi \(HTTP 200\): longer than 1048576 bytes, not read further$",
        ):
            await post_file(url)
    async with http_server(answering(b'{"txt": "batti"}')) as url:
        with pytest.raises(BodhiError, match=r"^unexpected reply from Bodhi \(no text, 16 bytes\)"):
            await post_file(url)
    async with tcp_server(hangs_up) as url:
        with pytest.raises(
            BodhiError,
            match=r"^the connection to Bodhi closed before the transcript was complete \(ServerDisconnectedError\)$",
        ):
            await post_file(url)


async def test_a_redirect_is_not_followed_with_the_key() -> None:
    followed: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.headers.get("x-api-key", ""))
        return web.json_response({"text": "stolen", "status": "success"})

    async with http_server(elsewhere) as other:
        target = other.replace("ws", "http", 1) + "/steal"

        async def redirect(request: web.Request) -> web.Response:
            await request.read()
            raise web.HTTPTemporaryRedirect(target)

        async with http_server(redirect) as url:
            with pytest.raises(
                BodhiError, match="^Bodhi refused the transcription request with HTTP 307$"
            ):
                await post_file(url)
    assert followed == []


async def test_a_whole_file_engine_that_quotes_its_key_does_not_get_it_shown(
    tmp_path: Path,
) -> None:
    """Not every engine blanks its own errors (Bodhi's REST client does): the core does, for
    every engine, with the secrets it declares."""
    key = "echo-key-7f3a9c21d5e8b604"
    settings = validate({"echo_api_key": key}, engines=[LEAKY_WHOLE_FILE])
    path = tmp_path / "in.wav"
    path.write_bytes(wav(fmt(1, 1, 16), bytes(32000)))
    recording = open_recording(str(path), lambda _line: None)
    with pytest.raises(EngineError) as caught:
        await recognize(settings, Transcribe(name=ECHO_MODEL.name), recording)
    assert key not in str(caught.value), caught.value
    assert "refused key …" in str(caught.value)


async def test_a_server_that_echoes_the_credentials_does_not_get_them_shown() -> None:
    async def echo(request: web.Request) -> web.Response:
        await request.read()
        said = f"key {request.headers['x-api-key']} of {request.headers['x-customer-id']}"
        return web.json_response({"status": "error", "error": said}, status=401)

    async with http_server(echo) as url:
        with pytest.raises(BodhiError) as caught:
            await post_file(url)
    assert str(caught.value).endswith("Bodhi said: key … of …")
    for text in (str(caught.value), repr(caught.value)):
        assert all(secret not in text for secret in SECRETS)


PIECE_KEY = "Q7ZX9KJV3WQ8XZJ6KQV2"
"""Random, and like nothing in a reply: any four characters of it seen are a leak."""


def key_pieces(text: str) -> list[str]:
    """The pieces of :data:`PIECE_KEY`, four characters or more, that ``text`` shows, less
    its last four (its fingerprint, shown on purpose)."""
    return [
        PIECE_KEY[start : start + 4]
        for start in range(len(PIECE_KEY) - 4 - 4 + 1)
        if PIECE_KEY[start : start + 4] in text
    ]


# Where a cut falls on what a server replies: the first 499 characters of its ``error``
# (``printable``); the first 57 and last 58 of the first 240 bytes of a reply that is not
# JSON (``quoted(…, 120)``), the last of them either where the reply ends or at byte 240.
# A refusal (401) quotes only its JSON ``error``; a success that is not JSON, its body.
REST_CUTS: dict[str, Callable[[int], tuple[int, str]]] = {
    "error-500": lambda piece: (
        401,
        json.dumps({"status": "error", "error": "e" * (499 - piece) + PIECE_KEY + " invalid"}),
    ),
    "quoted-120-head": lambda piece: (200, "A" * (57 - piece) + PIECE_KEY + "B" * 300),
    "quoted-120-tail": lambda piece: (200, "A" * 100 + PIECE_KEY + "B" * (58 - piece)),
    "bytes-240": lambda piece: (200, "A" * (240 - piece) + PIECE_KEY + "B" * 300),
}


@pytest.mark.parametrize("piece", [4, 5, 7, len(PIECE_KEY) - 1])
@pytest.mark.parametrize("cut", list(REST_CUTS))
async def test_no_piece_of_the_key_survives_a_cut_in_a_reply(cut: str, piece: int) -> None:
    """The key where a cut falls in a reply (``piece`` characters of it on the kept side):
    nothing of it but its last four reaches the error."""
    status, body = REST_CUTS[cut](piece)
    async with http_server(answering(body.encode(), status)) as url:
        with pytest.raises(BodhiError) as caught:
            await post_file(url, BodhiCredentials(PIECE_KEY, CUSTOMER_ID))
    for text in (str(caught.value), repr(caught.value)):
        assert key_pieces(text) == [], text


# -- the simulator's endpoint ---------------------------------------------------------------


def form(**fields: Any) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        if isinstance(value, bytes):
            data.add_field(name, value, filename="audio.wav", content_type="audio/wav")
        else:
            data.add_field(name, value)
    return data


def good_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "transaction_id": str(uuid.uuid4()),
        "model": "hi-general-v2-8khz",
        "audio_file": wav_bytes(pcm16()),
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


async def post(
    simulator: BodhiSimulator,
    data: Any,
    *,
    path: str = "/api/transcribe",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    url = simulator.url.replace("ws", "http", 1) + path
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url, data=data, headers={"x-api-key": API_KEY} if headers is None else headers
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


REFUSED_FORMS: dict[str, tuple[dict[str, Any], str]] = {
    "no model": (good_fields(model=None), "model '' is not available"),
    "unknown model": (good_fields(model="zz-general-v2-8khz"), "model 'zz-general-v2-8khz' is not available"),
    "no transaction id": (good_fields(transaction_id=None), "transaction_id must be a valid UUID"),
    "transaction id not a UUID": (good_fields(transaction_id="42"), "transaction_id must be a valid UUID"),
    "parse_number": (good_fields(parse_number="maybe"), "parse_number must be true or false"),
    "aux": (good_fields(aux="yes"), "aux must be true or false"),
    "hotwords not JSON": (good_fields(hotwords="batti"), 'hotwords must be a list of {"phrase": str, "score"?: number}'),
    "hotwords of the wrong shape": (good_fields(hotwords='[{"phrase": "a", "score": "high"}]'), 'hotwords must be a list of {"phrase": str, "score"?: number}'),
    "no audio file": (good_fields(audio_file=None), "audio_file is required: a WAV file"),
    "audio as text": (good_fields(audio_file="RIFF"), "audio_file is required: a WAV file"),
    "not a WAV file": (good_fields(audio_file=b"fLaC" + bytes(40)), "audio_file is not a WAV file Bodhi can read: not a WAV file: this is FLAC; convert it to WAV first"),
    "stereo": (good_fields(audio_file=wav_bytes(bytes(64), channels=2)), "audio_file must be 16-bit PCM mono, not 16-bit PCM, 8000 Hz, stereo"),
    "8-bit": (good_fields(audio_file=wav_bytes(bytes(64), bits=8)), "audio_file must be 16-bit PCM mono, not 8-bit PCM, 8000 Hz, mono"),
    "float": (good_fields(audio_file=wav_bytes(bytes(64), bits=32, tag=WAVE_FORMAT_IEEE_FLOAT)), "audio_file must be 16-bit PCM mono, not 32-bit float, 8000 Hz, mono"),
    "6 kHz": (good_fields(audio_file=wav_bytes(bytes(64), 6000)), "sample rate must be at least 8000, not 6000"),
}  # fmt: skip


async def test_the_simulator_checks_the_form_as_bodhi_would() -> None:
    async with running_simulator(texts=TEXTS) as simulator:
        for name, (fields, message) in REFUSED_FORMS.items():
            status, body = await post(simulator, form(**fields))
            assert (status, body) == (
                400,
                {"status": "error", "error": "Bad Request", "message": message},
            ), name
        status, body = await post(simulator, json.dumps(good_fields(audio_file="")))
        assert (status, body["message"]) == (400, "expected multipart/form-data")
        # Accepted: 16 kHz, the options set, a field it does not know.
        status, body = await post(
            simulator,
            form(**good_fields(
                audio_file=wav_bytes(pcm16(16000), 16000), parse_number="True", aux="0",
                hotwords='[{"phrase": "batti"}, {"phrase": "pankha", "score": 2}]', extra="x",
            )),
        )  # fmt: skip
        record = simulator.connections[-1]
    assert status == 200
    assert body == {
        "text": "batti jalao pankha chalao",
        "call_id": record.call_id,
        "status": "success",
    }
    assert record.form is not None and record.form["extra"] == "x"
    assert record.upload is not None and record.upload.format == "16-bit PCM, 16000 Hz, mono"


async def test_the_simulator_answers_with_the_scripted_texts_then_the_default() -> None:
    async with running_simulator(texts=["ek"]) as simulator:
        assert await post(simulator, form(**good_fields(audio_file=wav_bytes(pcm16(count=3))))) == (
            200, {"text": "ek simulated transcript segment 2 from the Bodhi simulator "
                  "simulated transcript segment 3 from the Bodhi simulator",
                  "call_id": simulator.connections[-1].call_id, "status": "success"},
        )  # fmt: skip
        silent = wav_bytes(bytes(16000))
        status, body = await post(simulator, form(**good_fields(audio_file=silent)))
        assert (status, body["text"]) == (200, "")
        call_ids = {record.call_id for record in simulator.connections}
    assert len(call_ids) == 2


async def test_the_simulator_authenticates_as_its_handshake_does() -> None:
    async with running_simulator(api_key=API_KEY, require_customer_id=True) as simulator:
        cases = {
            "no key": ({}, 401, "missing API key"),
            "wrong key": ({"x-api-key": "other"}, 401, "invalid API key"),
            "no customer id": ({"x-api-key": API_KEY}, 401, "missing customer id"),
            "bad customer id": ({"x-api-key": API_KEY, "x-customer-id": "c"}, 401, "invalid customer id"),
            "good": ({"x-api-key": API_KEY, "x-customer-id": CUSTOMER_ID}, 200, None),
        }  # fmt: skip
        for name, (headers, want, message) in cases.items():
            status, body = await post(simulator, form(**good_fields()), headers=headers)
            assert status == want, name
            if message:
                assert body == {"status": "error", "error": "Unauthorized", "message": message}
    assert simulator.connections[-1].auth_headers == ("x-api-key", "x-customer-id")
    assert [record.method for record in simulator.connections] == ["POST"] * 5


async def test_the_simulator_refuses_on_demand_and_elsewhere() -> None:
    async with running_simulator(refuse_status=503, refuse_count=1) as simulator:
        refused = await post(simulator, form(**good_fields()))
        served = await post(simulator, form(**good_fields()))
        elsewhere = await post(simulator, form(**good_fields()), path="/api/other")
        prefixed = await post(simulator, form(**good_fields()), path="/bodhi/api/transcribe")
    small = BodhiSimulator()
    small.max_request_bytes = 1000
    async with small:
        too_large = await post(small, form(**good_fields()))
    assert refused == (503, {"status": "error", "error": "Service Unavailable",
                             "message": "service unavailable, retry after a brief delay"})  # fmt: skip
    assert served[0] == 200
    assert elsewhere == (404, {"status": "error", "error": "Not Found",
                               "message": "no such endpoint: POST /api/other"})  # fmt: skip
    assert prefixed[0] == 200
    # Python 3.13 names 413 after RFC 9110 ("Content Too Large"); 3.11 the older phrase.
    assert too_large == (413, {"status": "error", "error": HTTPStatus(413).phrase,
                               "message": "the request is larger than 1000 bytes"})  # fmt: skip


# -- the command, as a user runs it ---------------------------------------------------------


def assert_secret_free(run: Run) -> None:
    for secret in SECRETS:
        assert secret not in run.stdout + run.stderr


def run_sync(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Run:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "wyoming_bodhi.transcribe", *args, "--rest"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


async def run(url: str, *args: str, legacy: bool = True, **env: str) -> Run:
    """The command against ``url`` (a ws:// streaming URL), credentials in its environment."""
    variables = {"BODHI_API_KEY": API_KEY, "BODHI_URL": url, **env}
    if legacy:
        variables["BODHI_CUSTOMER_ID"] = CUSTOMER_ID
    return await asyncio.to_thread(run_sync, [*args] or [SAMPLE], clean_env(**variables))


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy platform", "newer platform"])
async def test_a_file_is_transcribed_and_what_crossed_the_wire(legacy: bool) -> None:
    async with running_simulator(texts=TEXTS, record_audio=True) as simulator:
        result = await run(simulator.url, legacy=legacy)
        (record,) = simulator.connections
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "batti jalao pankha chalao\n",
        "",
    )
    assert (record.method, record.path, record.http_status) == ("POST", "/api/transcribe", 200)
    # The documented headers: the key, and the customer id on the legacy platform only.
    assert record.auth_headers == (("x-api-key", "x-customer-id") if legacy else ("x-api-key",))
    assert (record.api_key, record.customer_id) == (API_KEY, CUSTOMER_ID if legacy else None)
    # Only the fields that are set.
    assert record.form is not None and set(record.form) == {"transaction_id", "model"}
    assert record.form["model"] == "hi-general-v2-8khz"
    assert uuid.UUID(record.form["transaction_id"])
    # Converted for Bodhi: the 16 kHz sample as 8 kHz mono, all of it.
    assert record.upload is not None
    assert (record.upload.format, record.upload.filename) == (
        "16-bit PCM, 8000 Hz, mono",
        "audio.wav",
    )
    assert record.upload.seconds == pytest.approx(2.4645, abs=0.001)
    assert len(record.audio) == record.upload.size - 44
    assert_secret_free(result)


async def test_options_and_credentials_from_files_and_the_config_file(tmp_path: Path) -> None:
    key_file = tmp_path / "api_key"
    key_file.write_text(API_KEY + "\n")
    config = tmp_path / "bodhi.yaml"
    config.write_text(
        f"customer_id: {CUSTOMER_ID}\nparse_number: true\nhotwords: ['batti', 'pankha:2.5']\n"
    )
    async with running_simulator(texts=TEXTS) as simulator:
        by_language = await run(
            simulator.url, SAMPLE, "--language", "ta-IN", "--config", str(config),
            legacy=False, BODHI_API_KEY_FILE=str(key_file), BODHI_API_KEY="",
        )  # fmt: skip
        by_model = await run(
            simulator.url, SAMPLE, "--model", "bn-banking-v2-8khz",
            legacy=False, BODHI_CONFIG=str(config),
        )  # fmt: skip
        first, second = simulator.connections
    assert (by_language.returncode, by_language.stdout) == (0, "batti jalao pankha chalao\n")
    assert by_model.returncode == 0
    assert (first.api_key, first.customer_id) == (API_KEY, CUSTOMER_ID)
    assert first.form is not None and second.form is not None
    assert first.form["model"] == "ta-general-v2-8khz"
    assert second.form["model"] == "bn-banking-v2-8khz"
    assert first.form["parse_number"] == "true"
    assert json.loads(first.form["hotwords"]) == [
        {"phrase": "batti"},
        {"phrase": "pankha", "score": 2.5},
    ]


SAID = "Bodhi said"
ERROR_STATUSES: dict[int, tuple[dict[str, Any], dict[str, str], str]] = {
    400: ({}, {"BODHI_EXTRA_MODELS": "zz-general-v2-8khz", "BODHI_MODEL": "zz-general-v2-8khz"},
          "Bodhi rejected the request (400): Bad Request: model 'zz-general-v2-8khz' is not available"),
    401: ({"api_key": "another-key-entirely"}, {},
          f"Bodhi rejected the API key or customer id (401): {CREDENTIALS}; {SAID}: Unauthorized: invalid API key"),
    402: ({"refuse_status": 402}, {},
          f"Bodhi refused the request: insufficient balance (402); top up the account on the Navana dashboard; {SAID}: Payment Required: insufficient balance"),
    403: ({"refuse_status": 403}, {},
          f"Bodhi refused the request: the customer account is deactivated (403); contact Navana support; {SAID}: Forbidden"),
    500: ({"refuse_status": 500}, {},
          f"Bodhi had an internal error (500); try again shortly; {SAID}: Internal Server Error"),
    503: ({"refuse_status": 503}, {},
          f"Bodhi is unavailable or overloaded (503); try again shortly; {SAID}: Service Unavailable: service unavailable, retry after a brief delay"),
}  # fmt: skip


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_each_error_status_is_one_line_saying_what_to_do(status: int) -> None:
    options, env, line = ERROR_STATUSES[status]
    async with running_simulator(**options) as simulator:
        result = await run(simulator.url, **env)
        (record,) = simulator.connections
    assert record.http_status == status
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"{PROG}: {line}\n")
    assert_secret_free(result)


async def test_an_old_setting_name_is_said_once(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    async with running_simulator(tls_cert=str(cert), tls_key=str(key), texts=TEXTS) as simulator:
        trusted = await run(simulator.url, BODHI_CA=str(cert))
    assert (trusted.returncode, trusted.stdout) == (0, "batti jalao pankha chalao\n")
    assert trusted.stderr == (
        f"{PROG}: bodhi_ca (BODHI_CA) is deprecated: use ca_file (--ca-file, BODHI_CA_FILE); "
        "the old names will be removed in a later release\n"
    )


async def test_tls_is_verified_and_ca_file_trusted(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    async with running_simulator(tls_cert=str(cert), tls_key=str(key), texts=TEXTS) as simulator:
        refused = await run(simulator.url)
        trusted = await run(simulator.url, BODHI_CA_FILE=str(cert))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"{PROG}: TLS certificate verification failed for 127.0.0.1:")
    assert (trusted.returncode, trusted.stdout) == (0, "batti jalao pankha chalao\n")
    # The refused attempt never got as far as an HTTP request: no key was sent.
    assert len(simulator.connections) == 1


async def test_a_server_that_never_answers_is_given_up_on_in_bounded_time(tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    short.write_bytes(wav_bytes(pcm16(count=1)))  # 0.8 s
    async with tcp_server(never_answers) as url:
        result = await run(
            url, str(short), BODHI_CONNECT_TIMEOUT="0.5", BODHI_RESPONSE_TIMEOUT="0.5"
        )
    host = url.removeprefix("ws://")
    assert (result.returncode, result.stdout) == (1, "")
    # 0.5 to connect + the audio's 0.8 s + 0.5 for the answer.
    assert result.stderr == (
        f"{PROG}: Bodhi at {host} did not answer within 1.8 s; try again later, or allow more "
        "time with BODHI_CONNECT_TIMEOUT and BODHI_RESPONSE_TIMEOUT\n"
    )
    assert result.seconds < 1.8 + STARTUP


@pytest.mark.parametrize("code", ["\u00b2", "7" * 5000])
async def test_a_reply_with_a_code_of_odd_digits_is_one_line_not_a_traceback(code: str) -> None:
    body = reply({"status": "error", "error": "odd", "code": code})
    async with http_server(answering(body)) as url:
        result = await run(url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"{PROG}: Bodhi reported an error (code '"), result.stderr
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 200, result.stderr


async def test_a_reply_that_is_not_json_is_a_clear_error() -> None:
    async with http_server(answering(b"<html>Bodhi</html>")) as url:
        result = await run(url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{PROG}: unexpected reply from Bodhi (not JSON, 18 bytes): '<html>Bodhi</html>'\n"
    )


# -- what the user gets wrong: status 2, before anything is sent ----------------------------


USAGE: dict[str, tuple[dict[str, str], list[str], str]] = {
    "no credentials": ({"BODHI_API_KEY": ""}, [], "no engine configured: set BODHI_API_KEY"),
    "Thai only": ({"BODHI_API_KEY": "", "IAPP_API_KEY": "k" * 16}, [],
                  "--rest uses Bodhi's non-streaming API: set BODHI_API_KEY"),
    "demo": ({"BODHI_DEMO": "1"}, [], "--rest talks to the engine itself, and demo mode has no engine to talk to"),
    "a bad setting": ({"BODHI_CONNECT_TIMEOUT": "soon"}, [], "invalid connect_timeout 'soon' (BODHI_CONNECT_TIMEOUT)"),
    "unknown model": ({}, ["--model", "hi-general-v9"], "unknown model 'hi-general-v9'; valid models: hi-general-v2-8khz, "),
    "no model for the language": ({}, ["--language", "th"], "no configured engine speaks 'th'; languages: bn, bn-IN, en, en-IN, gu, gu-IN, hi, hi-IN, kn, kn-IN, ml, ml-IN, mr, mr-IN, or, or-IN, ta, ta-IN, te, te-IN"),
    "an engine without whole-file recognition": ({"IAPP_API_KEY": "k" * 16}, ["--language", "th"], "--rest: iApp ASRx has no whole-file recognition; engines with it: Bodhi"),
    "too long": ({"BODHI_MAX_AUDIO": "1"}, [], f"{SAMPLE}: longer than max_audio, 1 s (raise it with BODHI_MAX_AUDIO or max_audio in the config file)"),
    "a Wyoming server's option": ({}, ["--uri", "tcp://127.0.0.1:10400"], "--uri is for a Wyoming server, and --rest talks to the engine itself (its time limits are BODHI_CONNECT_TIMEOUT and BODHI_RESPONSE_TIMEOUT)"),
    "missing config file": ({}, ["--config", "/nonexistent.yaml"], "cannot read config file /nonexistent.yaml: No such file or directory"),
}  # fmt: skip


@pytest.mark.parametrize("name", USAGE)
def test_a_usage_problem_is_one_line_with_status_2(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env, args, start = USAGE[name]
    for variable in os.environ:
        if variable.startswith(("BODHI_", "WYOMING_", "IAPP_")):
            monkeypatch.delenv(variable)
    # Nothing listens there: the problem must be found before connecting.
    variables = {"BODHI_API_KEY": API_KEY, "BODHI_URL": "ws://127.0.0.1:9", **env}
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    assert transcribe_main([SAMPLE, "--rest", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{PROG}: {start}") and err.count("\n") == 1, err
