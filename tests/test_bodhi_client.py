"""Our Bodhi client against the simulator, over real loopback sockets."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from wyoming_bodhi.engines.bodhi import (
    BodhiAuthenticationError,
    BodhiBadRequestError,
    BodhiConfig,
    BodhiConnectionError,
    BodhiConnectionLostError,
    BodhiCredentials,
    BodhiError,
    BodhiInactiveCustomerError,
    BodhiInsufficientBalanceError,
    BodhiResult,
    BodhiServerError,
    BodhiStream,
    BodhiTimeoutError,
    BodhiTLSError,
    BodhiUnavailableError,
)

from .harness import API_KEY, CUSTOMER_ID, SelfSigned, running_simulator
from .signals import encode, utterances

LEGACY = BodhiCredentials(API_KEY, CUSTOMER_ID)
KEY_ONLY = BodhiCredentials(API_KEY)
CONFIG = BodhiConfig(model="hi-general-v2-8khz")


def frames(audio: bytes, size: int = 1600) -> list[bytes]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


async def stream_all(stream: BodhiStream, audio: bytes) -> list[BodhiResult]:
    for frame in frames(audio):
        await stream.send_audio(frame)
    await stream.send_eof()
    return [result async for result in stream.results()]


async def test_happy_path_legacy_headers(http: aiohttp.ClientSession) -> None:
    async with running_simulator(texts=["namaste duniya", "batti jalao"]) as simulator:
        stream = await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG)
        async with stream:
            results = await stream_all(stream, encode(utterances(8000)))
        (record,) = simulator.connections
    completes = [r.text for r in results if r.is_complete and r.text]
    assert completes == ["namaste duniya", "batti jalao"]
    assert results[-1].eos and stream.ended
    assert [r for r in results if r.eos] == [results[-1]]
    assert stream.call_id == record.call_id
    assert set(record.auth_headers) == {"x-api-key", "x-customer-id"}
    assert record.api_key == API_KEY and record.customer_id == CUSTOMER_ID
    assert record.config == CONFIG.to_dict()
    assert record.eof_received


async def test_key_only_platform_sends_key_and_bearer(http: aiohttp.ClientSession) -> None:
    async with running_simulator(texts=["ek"], final="separate") as simulator:
        async with await BodhiStream.connect(http, simulator.url, KEY_ONLY, CONFIG) as stream:
            results = await stream_all(stream, encode(utterances(8000, count=1)))
        (record,) = simulator.connections
    assert set(record.auth_headers) == {"x-api-key", "authorization"}
    assert record.api_key == API_KEY
    # The separate final form: an empty complete with eos after the real one.
    assert results[-1].eos and results[-1].text == ""
    assert [r.text for r in results if r.is_complete] == ["ek", ""]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, BodhiAuthenticationError),
        (402, BodhiInsufficientBalanceError),
        (403, BodhiInactiveCustomerError),
        (500, BodhiServerError),
        (503, BodhiUnavailableError),
    ],
)
async def test_handshake_refusals_map_to_typed_errors(
    http: aiohttp.ClientSession, status: int, error_type: type[BodhiError]
) -> None:
    async with running_simulator(refuse_status=status) as simulator:
        with pytest.raises(error_type) as info:
            await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG)
    assert info.value.code == f"bodhi-{status}"
    assert info.value.retryable is (status >= 500)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert API_KEY not in str(info.value) and CUSTOMER_ID not in str(info.value)


async def test_wrong_key_is_refused(http: aiohttp.ClientSession) -> None:
    async with running_simulator(api_key="the-right-key-0000") as simulator:
        with pytest.raises(BodhiAuthenticationError, match="BODHI_API_KEY and BODHI_CUSTOMER_ID"):
            await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG)


async def test_in_socket_400_for_unknown_model(http: aiohttp.ClientSession) -> None:
    async with running_simulator() as simulator:
        config = BodhiConfig(model="zz-banking-v2-8khz")
        async with await BodhiStream.connect(http, simulator.url, LEGACY, config) as stream:
            with pytest.raises(
                BodhiBadRequestError, match="model 'zz-banking-v2-8khz' is not available"
            ):
                await stream.receive()


async def test_close_before_end_of_stream_is_an_error(http: aiohttp.ClientSession) -> None:
    async with running_simulator(drop_after_frames=2) as simulator:
        async with await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG) as stream:
            with pytest.raises(BodhiConnectionLostError):
                await stream_all(stream, encode(utterances(8000)))


async def test_in_socket_server_error_mid_stream(http: aiohttp.ClientSession) -> None:
    async with running_simulator(error_after_frames=2) as simulator:
        async with await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG) as stream:
            with pytest.raises(BodhiServerError, match="internal error"):
                await stream_all(stream, encode(utterances(8000)))


async def test_idle_close_is_detected(http: aiohttp.ClientSession) -> None:
    async with running_simulator(idle_timeout=0.2) as simulator:
        async with await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG) as stream:
            with pytest.raises(BodhiConnectionLostError, match="closed before the transcript"):
                await asyncio.wait_for(stream.receive(), 3)


async def test_malformed_messages_are_skipped(http: aiohttp.ClientSession) -> None:
    async with running_simulator(texts=["ek"], malformed_results=True) as simulator:
        async with await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG) as stream:
            results = await stream_all(stream, encode(utterances(8000, count=1)))
    assert [r.text for r in results if r.is_complete and r.text] == ["ek"]


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    with pytest.raises(BodhiConnectionError, match="cannot connect to Bodhi at 127.0.0.1:9"):
        await BodhiStream.connect(http, "ws://127.0.0.1:9", LEGACY, CONFIG)


async def test_handshake_timeout(http: aiohttp.ClientSession) -> None:
    async with running_simulator(handshake_delay=5) as simulator:
        with pytest.raises(BodhiTimeoutError, match="within 0.3 s"):
            await BodhiStream.connect(http, simulator.url, LEGACY, CONFIG, timeout=0.3)


async def test_tls_certificates_are_verified(
    http: aiohttp.ClientSession, self_signed: SelfSigned
) -> None:
    server_context = self_signed.server_context()
    handshakes: list[bool] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handshakes.append(True)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(BodhiTLSError, match="certificate verification failed"):
            await BodhiStream.connect(http, f"wss://127.0.0.1:{port}", LEGACY, CONFIG)
    # The TLS handshake itself failed: no request, and so no key, was ever sent.
    assert not handshakes


def test_credentials_repr_hides_secrets() -> None:
    text = repr(LEGACY) + str(LEGACY)
    assert API_KEY not in text and CUSTOMER_ID not in text
    assert LEGACY.fingerprint == "…" + API_KEY[-4:]
