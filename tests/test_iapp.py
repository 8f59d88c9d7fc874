"""iApp ASRx end to end: its client against its simulator, and Thai through the bridge."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.info import Describe, Info

from wyoming_bodhi.engines.base import EngineError, PhraseKind
from wyoming_bodhi.engines.iapp.client import IappStream
from wyoming_bodhi.simulators.iapp import IappOptions, IappSimulator

from .harness import free_port, running_bridge, running_simulator, transcribe
from .signals import encode, utterances

THAI = ["สวัสดีครับ", "เปิดไฟห้องนอน"]
THAI_REQUEST = Transcribe(language="th-TH")
TWO_SENTENCES = encode(utterances(16000, count=2, burst=0.6, gap=1.0))
ONE_SENTENCE = encode(utterances(16000, count=1))
IAPP_KEY = "iapp-test-key-8d2c41b0"


@contextlib.asynccontextmanager
async def iapp_simulator(**options: Any) -> AsyncIterator[IappSimulator]:
    async with IappSimulator(IappOptions(**options)) as simulator:
        yield simulator


def thai_only(simulator: IappSimulator, **settings: Any) -> dict[str, Any]:
    """Bridge settings with iApp's key and no Bodhi credentials at all."""
    return {"api_key": None, "customer_id": None, "iapp_api_key": IAPP_KEY,
            "iapp_url": simulator.url, **settings}  # fmt: skip


# -- the client against the simulator ----------------------------------------------------


@pytest.mark.parametrize("end_form", ["end_of_process", "confirm", "close"])
async def test_the_client_hears_sentences_and_every_end_form(end_form: str) -> None:
    async with (
        iapp_simulator(texts=THAI, end_form=end_form) as simulator,
        aiohttp.ClientSession() as http,
    ):
        stream = await IappStream.connect(http, simulator.url, IAPP_KEY, timeout=2)
        async with stream:
            for offset in range(0, len(TWO_SENTENCES), 3200):
                await stream.send_audio(TWO_SENTENCES[offset : offset + 3200])
            await stream.send_end()
            phrases = [phrase async for phrase in stream.phrases()]
        (record,) = simulator.connections
        await asyncio.wait_for(record.closed.wait(), 3)
    completes = [p.text for p in phrases if p.kind is PhraseKind.COMPLETE]
    assert completes == THAI
    assert phrases[-1].kind is PhraseKind.END
    assert [p.segment for p in phrases if p.kind is PhraseKind.COMPLETE] == [0, 1]
    assert record.auth_headers == ("apikey",) and record.api_key == IAPP_KEY
    assert record.eof_message == '{"data": {"status": "CloseConnection"}}'
    # The client closes once it has the end (for "close", the server did).
    assert record.ended in ("eos", "client-closed")


async def test_a_wrong_key_is_refused_with_401() -> None:
    async with (
        iapp_simulator(api_key="the-right-key") as simulator,
        aiohttp.ClientSession() as http,
    ):
        with pytest.raises(EngineError) as info:
            await IappStream.connect(http, simulator.url, IAPP_KEY, timeout=2)
    assert info.value.code == "iapp-401"
    assert "check IAPP_API_KEY" in info.value.message
    assert IAPP_KEY not in info.value.message


# -- through the bridge --------------------------------------------------------------------


@pytest.mark.parametrize("end_form", ["end_of_process", "confirm", "close"])
async def test_thai_through_the_bridge_with_16_khz_on_the_wire(end_form: str) -> None:
    async with (
        iapp_simulator(texts=THAI, end_form=end_form, record_audio=True) as simulator,
        running_bridge("ws://127.0.0.1:9", **thai_only(simulator)) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, TWO_SENTENCES, request=THAI_REQUEST)
        (record,) = simulator.connections
    assert exchange.types == [
        "transcript-start", "transcript-chunk", "transcript-chunk", "transcript", "transcript-stop",
    ]  # fmt: skip
    assert exchange.chunks == ["สวัสดีครับ", " เปิดไฟห้องนอน"]
    assert exchange.transcript == "สวัสดีครับ เปิดไฟห้องนอน"
    assert exchange.of_type("transcript")[0].data["language"] == "th-TH"
    # 100 ms frames at 16 kHz s16 mono; 16 kHz input reaches iApp untouched.
    assert {frame.size for frame in record.frames} == {3200}
    assert bytes(record.audio[: len(TWO_SENTENCES)]) == TWO_SENTENCES


async def test_a_wrong_iapp_key_is_an_error_naming_401() -> None:
    async with (
        iapp_simulator(api_key="the-right-key") as simulator,
        running_bridge("ws://127.0.0.1:9", **thai_only(simulator)) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, ONE_SENTENCE, request=THAI_REQUEST)
    assert exchange.error.data["code"] == "iapp-401"
    assert "(401)" in exchange.error.data["text"] and "IAPP_API_KEY" in exchange.error.data["text"]


async def test_a_thai_only_set_up_needs_no_bodhi_credentials() -> None:
    async with (
        iapp_simulator(texts=THAI) as simulator,
        running_bridge("ws://127.0.0.1:9", **thai_only(simulator)) as bridge,
        bridge.client() as client,
    ):
        assert bridge.bridge.settings.api_key is None
        await client.write_event(Describe().event())
        info = Info.from_event(await asyncio.wait_for(_next_info(client), 2))
        # A request with no language at all goes to the default model: iApp's.
        exchange = await transcribe(client, ONE_SENTENCE, request=None)
    (program,) = info.asr
    assert [(m.name, m.languages) for m in program.models] == [("iapp-asrx", ["th", "th-TH"])]
    assert program.models[0].attribution.name == "iApp Technology"
    assert exchange.transcript == "สวัสดีครับ"


async def _next_info(client: Any) -> Any:
    while (event := await client.read_event()) is not None:
        if event.type == "info":
            return event
    raise ConnectionError("closed before info")


async def test_hindi_and_thai_side_by_side_on_one_server() -> None:
    async with (
        running_simulator(texts=["batti jalao"], record_audio=True) as bodhi,
        iapp_simulator(texts=THAI, record_audio=True) as iapp,
        running_bridge(bodhi.url, iapp_api_key=IAPP_KEY, iapp_url=iapp.url) as bridge,
        bridge.client() as hindi_client,
        bridge.client() as thai_client,
    ):
        hindi, thai = await asyncio.gather(
            transcribe(
                hindi_client, ONE_SENTENCE, request=Transcribe(language="hi"), realtime=True
            ),
            transcribe(thai_client, ONE_SENTENCE, request=THAI_REQUEST, realtime=True),
        )
        await hindi_client.write_event(Describe().event())
        info = Info.from_event(await asyncio.wait_for(_next_info(hindi_client), 2))
        (bodhi_record,) = bodhi.connections
        (iapp_record,) = iapp.connections
    assert hindi.transcript == "batti jalao"
    assert thai.transcript == "สวัสดีครับ"
    # Each engine gets its own format: Bodhi 8 kHz (1600-byte frames), iApp 16 kHz (3200).
    assert {frame.size for frame in bodhi_record.frames} == {1600}
    assert {frame.size for frame in iapp_record.frames} == {3200}
    assert bodhi_record.config is not None and bodhi_record.config["sample_rate"] == 8000
    names = [model.name for model in info.asr[0].models]
    assert names[0] == "hi-general-v2-8khz" and names[-1] == "iapp-asrx" and len(names) == 22
    assert "th-TH" in info.asr[0].models[-1].languages


# -- the fault matrix rows that apply to iApp ------------------------------------------------


@dataclass(frozen=True)
class IappFault:
    name: str
    outcome: str
    simulator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    audio: bytes = ONE_SENTENCE
    transcript: str = ""
    handshakes: int | None = None
    within: float = 5.0


IAPP_FAULTS = [
    IappFault("Handshake refused 401", "iapp-401", {"refuse_status": 401}, handshakes=1),
    IappFault("Handshake refused 403", "iapp-403", {"refuse_status": 403}, handshakes=1),
    IappFault(
        "Handshake 503, then accepted",
        "transcript",
        {"refuse_status": 503, "refuse_count": 1, "texts": THAI},
        transcript="สวัสดีครับ",
        handshakes=2,
    ),
    IappFault("Handshake 503, every time", "iapp-503", {"refuse_status": 503}, handshakes=3),
    IappFault(
        "Handshake timeout",
        "iapp-timeout",
        {"handshake_delay": 10},
        {"connect_timeout": 0.5},
        handshakes=3,
        within=4,
    ),
    IappFault("Connection refused", "iapp-unreachable", within=4),
    IappFault(
        "Socket dropped before any sentence completed",
        "iapp-connection-lost",
        {"drop_after_frames": 3},
    ),
    IappFault(
        # The second sentence starts at 1.7 s (frame 18), completing the first.
        "Socket dropped after a sentence completed",
        "transcript",
        {"drop_after_frames": 20, "texts": THAI},
        audio=TWO_SENTENCES,
        transcript="สวัสดีครับ",
    ),
    IappFault("In-socket error", "iapp-500", {"error_after_frames": 3}),
    IappFault(
        "Silent after the end",
        "iapp-timeout",
        {"silent_after_eof": True},
        {"response_timeout": 1.0},
        within=3,
    ),
    IappFault(
        "Malformed or unknown result messages",
        "transcript",
        {"malformed_results": True, "texts": THAI},
        transcript="สวัสดีครับ",
    ),
]


@pytest.mark.parametrize("fault", IAPP_FAULTS, ids=[fault.name for fault in IAPP_FAULTS])
async def test_iapp_fault(fault: IappFault) -> None:
    async with iapp_simulator(**fault.simulator) as simulator:
        settings = thai_only(simulator, lead=30, **fault.settings)
        if fault.name == "Connection refused":
            settings["iapp_url"] = f"ws://127.0.0.1:{free_port()}"
        async with running_bridge("ws://127.0.0.1:9", **settings) as bridge:
            async with bridge.client() as client:
                started = time.monotonic()
                exchange = await transcribe(client, fault.audio, request=THAI_REQUEST)
                elapsed = time.monotonic() - started
                handshakes = simulator.connection_count
                # The server carries on: the same connection is answered again.
                again = await transcribe(client, fault.audio, request=THAI_REQUEST)
    assert elapsed <= fault.within
    if fault.outcome == "transcript":
        assert exchange.types[-2:] == ["transcript", "transcript-stop"], exchange.types
        assert exchange.transcript == fault.transcript
    else:
        assert exchange.events[-1].type == "error", exchange.types
        assert exchange.events[-1].data["code"] == fault.outcome
    assert again.types[-1] in ("transcript-stop", "error")
    if fault.handshakes is not None:
        assert handshakes == fault.handshakes
