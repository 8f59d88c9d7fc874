"""The README's promises under real clients and attack (issue 10), one section per promise.

Every request ends in a transcript or a clear error; no audio is sent to Bodhi for a client
that is gone or already answered; one client cannot hold memory, connections or sessions
for ever; the log says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import logging
import resource
import socket
import struct
import time
from collections.abc import AsyncIterator

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe

from wyoming_bodhi import wire
from wyoming_bodhi.simulators.bodhi import BodhiSimulator
from wyoming_bodhi.wav import WavHeaderStripper, WavTruncated, find_data

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    bridge_command,
    clean_env,
    free_port,
    process,
    read_until_final,
    running_bridge,
    running_simulator,
    settled,
    transcribe,
    unavailable,
    wait_for_port,
)
from .signals import encode, silence, utterances

TEXTS = ["batti jalao", "pankha chalao"]
ONE_PHRASE = encode(utterances(16000, count=1))
CHUNK_20_MS = 640


def wav_file(pcm: bytes, rate: int = 16000, channels: int = 1, bits: int = 16) -> bytes:
    """A canonical 44-byte-header WAV, as Home Assistant's STT HTTP API receives it."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )


@contextlib.asynccontextmanager
async def raw_connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def send(writer: asyncio.StreamWriter, *events: Event) -> None:
    for event in events:
        await async_write_event(event, writer)


def start_events(language: str = "hi") -> list[Event]:
    return [Transcribe(language=language).event(), AudioStart(16000, 2, 1).event()]


def chunk_events(audio: bytes, size: int = CHUNK_20_MS) -> list[Event]:
    return [
        AudioChunk(16000, 2, 1, audio[offset : offset + size]).event()
        for offset in range(0, len(audio), size)
    ]


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a FIN, as a crashed client's kernel does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def gone_within(simulator: BodhiSimulator, left_at: float) -> float:
    """Seconds from the client's leaving until its (only) Bodhi session ended."""
    (record,) = simulator.connections
    await asyncio.wait_for(record.closed.wait(), 5)
    assert record.ended_at is not None
    return record.ended_at - left_at


# -- 1. an endpointed answer ends the Bodhi session ---------------------------------------------


async def test_endpointed_answer_to_a_whole_file_stops_the_audio_at_once() -> None:
    # Home Assistant's STT HTTP API: a whole file, as fast as it can, then audio-stop, before
    # Bodhi has completed anything. 20 s of trailing silence must not be paced out to Bodhi.
    audio = encode(utterances(16000, count=1, burst=0.6)) + encode(silence(16000, 20.0))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True) as bridge,
        raw_connection(bridge.port) as (reader, writer),
    ):
        await send(writer, *start_events(), *chunk_events(audio, 4096), AudioStop().event())
        exchange = Exchange()
        while not exchange.of_type("transcript"):
            event = await asyncio.wait_for(async_read_event(reader), 5)
            assert event is not None
            exchange.events.append(event)
        answered_at = time.monotonic()
        (record,) = simulator.connections
        await asyncio.wait_for(record.closed.wait(), 2)
        assert await settled(lambda: bridge.bridge.active_utterances == 0, 1.0)
    assert exchange.transcript == "batti jalao"
    assert record.eof_received and record.ended == "eos"
    after = [frame for frame in record.frames if frame.at > answered_at]
    # At most the one frame that was already on its way.
    assert len(after) <= 1, after
    assert record.audio_bytes / 16000 < 3.0


async def test_endpointed_answer_of_a_live_stream_sends_no_more_audio() -> None:
    audio = encode(utterances(16000, count=2, burst=0.6, gap=1.5))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True, chunk_ms=50) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, audio, realtime=True)
        answered_at = time.monotonic()
        (record,) = simulator.connections
        await asyncio.wait_for(record.closed.wait(), 2)
    assert exchange.transcript == "batti jalao"
    assert len([frame for frame in record.frames if frame.at > answered_at]) <= 1


# -- 2. a client that goes away is noticed in every state --------------------------------------


async def test_client_leaving_while_waiting_for_the_result_ends_the_session() -> None:
    async with (
        running_simulator(texts=TEXTS, silent_after_eof=True) as simulator,
        running_bridge(simulator.url, lead=30, response_timeout=30) as bridge,
        raw_connection(bridge.port) as (_reader, writer),
    ):
        await send(writer, *start_events(), *chunk_events(ONE_PHRASE), AudioStop().event())
        await simulator.wait_for_connections(1)
        (record,) = simulator.connections
        assert await settled(lambda: record.eof_received, 5)
        writer.write_eof()
        seconds = await gone_within(simulator, time.monotonic())
        assert await settled(lambda: bridge.bridge.active_utterances == 0, 1.0)
    assert seconds < 1.0


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("chunk", [CHUNK_20_MS, wire.MAX_PAYLOAD_BYTES], ids=["20ms", "largest"])
async def test_client_far_ahead_of_real_time_that_leaves_ends_the_session(
    how: str, chunk: int
) -> None:
    # 60 s of audio written as fast as the socket takes it, far more than is sent to Bodhi
    # in real time, then the client is gone, without audio-stop.
    audio = encode(utterances(16000, count=1)) * 20 + encode(silence(16000, 60.0))[: 16000 * 2 * 20]
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        raw_connection(bridge.port) as (_reader, writer),
    ):
        await send(writer, *start_events(), *chunk_events(audio, chunk))
        await simulator.wait_for_connections(1)
        left_at = time.monotonic()
        if how == "fin":
            writer.write_eof()
        else:
            reset(writer)
        seconds = await gone_within(simulator, left_at)
        assert await settled(lambda: bridge.bridge.active_utterances == 0, 1.0)
        (record,) = simulator.connections
    assert seconds < 1.0
    assert record.audio_bytes / 16000 < 5.0


async def test_sessions_of_vanished_clients_are_free_for_others_at_once() -> None:
    # 80 s each, far more than is paced out to Bodhi while the clients are there.
    audio = encode(utterances(16000, count=1)) * 100
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, max_sessions=3) as bridge,
        contextlib.AsyncExitStack() as clients,
    ):
        for _ in range(3):
            _reader, writer = await clients.enter_async_context(raw_connection(bridge.port))
            await send(writer, *start_events(), *chunk_events(audio, 65536))
            # A clean close (FIN), with the socket kept, so no reset follows.
            writer.write_eof()
        assert await settled(lambda: bridge.bridge.active_utterances == 0, 1.0)
        async with bridge.client() as client:
            exchange = await transcribe(client, ONE_PHRASE)
    assert exchange.transcript == "batti jalao"


# -- 3. never silent, whatever Bodhi sends -----------------------------------------------------


def result(text: str, **extra: object) -> str:
    """A Bodhi result as a raw text frame; ``text`` may hold JSON escapes as written."""
    fields = {
        "call_id": "00000000-0000-4000-8000-000000000000",
        "segment_id": 0,
        "eos": False,
        "type": "complete",
        "segment_meta": {"tokens": [], "timestamps": [], "start_time": 0.0},
        **extra,
    }
    head = json.dumps(fields)[:-1]
    return f'{head}, "text": "{text}"}}'


@pytest.mark.parametrize(
    ("raw", "settings", "expected"),
    [
        pytest.param(["[" * 100_000 + "]" * 100_000], {}, "batti jalao", id="deeply-nested"),
        pytest.param(
            [result("batti \\ud800 jalao")], {}, "batti \ufffd jalao", id="surrogate-text"
        ),
        pytest.param(
            # Without language_id the simulator's own results carry no language_code, so this
            # one's is the transcript's language.
            [result("batti jalao", language_code="hi\udfff")],
            {},
            "batti jalao",
            id="surrogate-language",
        ),
    ],
)
async def test_hostile_results_still_end_in_an_answer(
    raw: list[str], settings: dict[str, object], expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    # json.dumps above escapes the surrogate in language_code as \udfff: valid JSON.
    async with (
        running_simulator(texts=TEXTS, raw_before_results=raw) as simulator,
        running_bridge(simulator.url, **settings) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await transcribe(client, ONE_PHRASE)
        elapsed = time.monotonic() - started
    assert exchange.types[-2:] == ["transcript", "transcript-stop"]
    assert exchange.transcript == expected
    assert "\ud800" not in str(exchange.of_type("transcript")[0].data)
    assert "\udfff" not in str(exchange.of_type("transcript")[0].data)
    assert elapsed < 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_flood_of_garbage_from_bodhi_is_one_summarised_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    garbage = "x" * 1024
    async with (
        running_simulator(texts=TEXTS, raw_before_results=[garbage], raw_repeat=5000) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, ONE_PHRASE)
    assert exchange.transcript == "batti jalao"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("Skipping a message from Bodhi: unexpected message")
    assert warnings[1] == "Skipped 5000 messages from Bodhi that were not results"


# -- 4. an in-socket error with the socket left open --------------------------------------------


@pytest.mark.parametrize(
    ("simulator_options", "settings", "request_", "code", "text"),
    [
        pytest.param(
            {},
            {"extra_models": ["pa-general-v3-8khz"]},
            Transcribe(name="pa-general-v3-8khz"),
            "bodhi-400",
            "model 'pa-general-v3-8khz' is not available",
            id="400-model",
        ),
        pytest.param(
            {"error_after_frames": 2},
            {},
            Transcribe(language="hi"),
            "bodhi-500",
            "internal error",
            id="500-mid-stream",
        ),
    ],
)
async def test_in_socket_error_left_open_is_reported_as_what_bodhi_said(
    simulator_options: dict[str, object],
    settings: dict[str, object],
    request_: Transcribe,
    code: str,
    text: str,
) -> None:
    async with (
        running_simulator(leave_open_after_error=True, **simulator_options) as simulator,
        running_bridge(simulator.url, **settings) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, ONE_PHRASE, request=request_, realtime=True)
    assert exchange.error.data["code"] == code
    assert text in exchange.error.data["text"]


# -- 5 and 6. bounded formats, events, connections ---------------------------------------------


async def test_an_event_over_the_payload_cap_closes_only_that_connection() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        raw_connection(bridge.port) as (reader, writer),
    ):
        # Larger than any real client sends (Home Assistant: 320 bytes, or 4 KiB).
        header = {"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1},
                  "payload_length": 256 * 1024 + 1}  # fmt: skip
        writer.write(json.dumps(header).encode() + b"\n")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        async with bridge.client() as client:
            assert (await transcribe(client, ONE_PHRASE)).transcript == "batti jalao"


async def test_an_event_body_that_stalls_is_dropped_after_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire, "BODY_TIMEOUT", 0.3)
    async with (
        running_bridge("ws://127.0.0.1:9") as bridge,
        raw_connection(bridge.port) as (
            reader,
            writer,
        ),
    ):
        header = {"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1},
                  "payload_length": 1000}  # fmt: skip
        writer.write(json.dumps(header).encode() + b"\n" + bytes(999))
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 2) == b""
    assert 0.25 < time.monotonic() - started < 1.5
    assert await settled(lambda: bridge.server.connections == 0)


async def test_one_connection_too_many_is_told_busy_and_closed() -> None:
    async with running_bridge("ws://127.0.0.1:9", max_connections=2) as bridge:
        async with raw_connection(bridge.port), raw_connection(bridge.port):
            assert await settled(lambda: bridge.server.connections == 2)
            async with raw_connection(bridge.port) as (reader, _writer):
                event = await asyncio.wait_for(async_read_event(reader), 2)
                assert event is not None and event.type == "error"
                assert event.data["code"] == "busy"
                assert "max_connections" in event.data["text"]
                assert await asyncio.wait_for(reader.read(), 2) == b""
        assert await settled(lambda: bridge.server.connections == 0)
        async with bridge.client() as client:
            await client.write_event(Describe().event())
            answer = await asyncio.wait_for(client.read_event(), 2)
        assert answer is not None and answer.type == "info"


async def test_idle_connections_are_closed_but_requests_in_progress_are_not() -> None:
    audio = encode(utterances(16000, count=1))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, idle_timeout=1.0, lead=30) as bridge,
        raw_connection(bridge.port) as (idle_reader, _idle_writer),
        raw_connection(bridge.port) as (reader, writer),
    ):
        started = time.monotonic()
        # A request whose client pauses longer than the idle timeout mid-way is kept.
        await send(writer, *start_events(), *chunk_events(audio[: len(audio) // 2]))
        assert await asyncio.wait_for(idle_reader.read(), 3) == b""
        idle_for = time.monotonic() - started
        await asyncio.sleep(1.5 - (time.monotonic() - started))
        await send(writer, *chunk_events(audio[len(audio) // 2 :]), AudioStop().event())
        events = [await asyncio.wait_for(async_read_event(reader), 5) for _ in range(4)]
    assert 0.9 < idle_for < 2.5
    assert [event.type for event in events if event] == [
        "transcript-start", "transcript-chunk", "transcript", "transcript-stop",
    ]  # fmt: skip


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_out_of_file_descriptors_is_one_warning_and_the_server_recovers(
    event_loop: str,
) -> None:
    # A real server process with a small open-file limit it cannot raise, and more clients
    # than it can take: asyncio's accept loop hits EMFILE over and over.
    if event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        unavailable("uvloop", "not installed (pip install -e '.[test]' installs it)")
    port = free_port()
    env = clean_env(
        BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, WYOMING_EVENT_LOOP=event_loop
    )

    def small_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    command = bridge_command(port, "ws://127.0.0.1:9", "--max-connections", "1000")
    with process(command, env, preexec_fn=small_limit) as server:
        await wait_for_port(port, server)
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(80)]
        await asyncio.sleep(2.5)  # several turns of asyncio's one-second accept retry
        for _reader, writer in clients:
            writer.close()
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(OSError, TimeoutError):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    await async_write_event(Describe().event(), writer)
                    answer = await asyncio.wait_for(async_read_event(reader), 1)
                    writer.close()
                    if answer is not None and answer.type == "info":
                        break
                await asyncio.sleep(0.2)
        server.terminate()
        assert server.stdout is not None
        output = server.stdout.read()
    assert "Traceback" not in output, output
    assert "max_connections 1000 and max_sessions 20 need about 1084 open files" in output
    warnings = output.count("Cannot accept connections: [Errno 24] Too many open files")
    # asyncio pauses accepting for a second and says so (once); libuv, under uvloop, accepts
    # and at once closes what it has no descriptor for, and reports nothing: the start-up
    # warning above is then the only word of it.
    assert warnings == (1 if event_loop == "asyncio" else 0), output


# -- 7. trickling -----------------------------------------------------------------------------


async def test_audio_falling_behind_real_time_ends_the_request_like_audio_stop() -> None:
    # 10 ms every 0.25 s: never a long pause, and never anywhere near real time.
    speech = encode(utterances(16000, count=1, burst=0.4, edge=0.0))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, max_command=1.0) as bridge,
        bridge.client() as client,
    ):
        exchange = Exchange()
        reader = asyncio.create_task(read_until_final(client, exchange))
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        await client.write_event(AudioChunk(16000, 2, 1, speech).event())
        started = time.monotonic()
        while not reader.done() and time.monotonic() - started < 6:
            await client.write_event(AudioChunk(16000, 2, 1, bytes(320)).event())
            await asyncio.sleep(0.25)
        await asyncio.wait_for(reader, 1)
        elapsed = time.monotonic() - started
        (record,) = simulator.connections
    assert exchange.transcript == "batti jalao"
    assert record.eof_received
    assert elapsed < 3.5


# -- 8. a WAV header is not audio ----------------------------------------------------------


def test_wav_header_is_found_and_stripped_across_chunk_boundaries() -> None:
    pcm = bytes(range(256)) * 4
    data = wav_file(pcm)
    header = find_data(io.BytesIO(data).read)
    assert (header.data_offset, header.data_size, len(header.fmt or b"")) == (44, len(pcm), 16)
    for split in (1, 4, 11, 12, 20, 43, 44, 45, 300):
        stripper = WavHeaderStripper()
        out = stripper.feed(data[:split]) + stripper.feed(data[split:])
        assert out == pcm, split
        assert stripper.header == header
    plain = WavHeaderStripper()
    assert plain.feed(b"RIF") + plain.feed(b"X") + plain.feed(pcm) == b"RIFX" + pcm
    assert plain.header is None
    # Metadata before the samples is skipped too; an odd-sized chunk is padded.
    listed = data[:12] + b"LIST" + struct.pack("<I", 3) + b"abc\x00" + data[12:]
    stripper = WavHeaderStripper()
    assert stripper.feed(listed) == pcm
    # Metadata still streaming past is skipped, not held, however large; none of it is audio.
    endless = data[:12] + b"LIST" + struct.pack("<I", 1 << 20) + bytes(70_000)
    with pytest.raises(WavTruncated):
        find_data(io.BytesIO(endless).read)
    stripper = WavHeaderStripper()
    assert stripper.feed(endless) == b""
    assert stripper.feed(bytes(1 << 20)) == b""


@pytest.mark.parametrize("endpointing", [False, True])
async def test_a_wav_header_at_the_start_of_the_audio_never_reaches_bodhi(
    endpointing: bool,
) -> None:
    # Home Assistant's STT HTTP API forwards the uploaded file, header and all, in 4 KiB chunks.
    pcm = encode(silence(16000, 0.5)) + ONE_PHRASE
    async with (
        running_simulator(texts=TEXTS, record_audio=True) as simulator,
        running_bridge(simulator.url, endpointing=endpointing, chunk_ms=50) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, wav_file(pcm), chunk_seconds=4096 / 32000)
        (record,) = simulator.connections
    assert exchange.transcript == "batti jalao"
    # The header alone is a click loud enough to be a phrase; it must not be one.
    assert len(record.completes) == 1
    # 0.5 s of silence at the start: the first 50 ms frame is silent (no click).
    first_frame = record.audio[:800]
    assert max(abs(v) for v in struct.unpack(f"<{len(first_frame) // 2}h", first_frame)) < 50


# -- 9. input and log hygiene -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"language": 5}, "language must be a string, not int"),
        ({"name": ["hi-general-v2-8khz"]}, "name must be a string, not list"),
        ({"transcript_names": [1, 2]}, "transcript_names must be a list of strings"),
        ({"transcript_terms": {"a": 1}}, "transcript_terms must be a list of strings"),
        ({"context": "x"}, "context must be an object, not str"),
        ({"language": "hi\ud800"}, "language is not valid Unicode"),
        ({"language": "x" * 65}, "language is longer than 64 characters"),
    ],
)
async def test_fields_of_the_wrong_type_are_a_protocol_error(
    data: dict[str, object], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        raw_connection(bridge.port) as (reader, writer),
    ):
        # Escaped JSON, as a client may send it: wyoming's own writer cannot encode a surrogate.
        writer.write(json.dumps({"type": "transcribe", "data": data}).encode() + b"\n")
        await send(writer, AudioStart(16000, 2, 1).event(), AudioChunk(16000, 2, 1, ONE_PHRASE).event(),
                   AudioStop().event())  # fmt: skip
        exchange = Exchange()
        while not exchange.of_type("error"):
            event = await asyncio.wait_for(async_read_event(reader), 3)
            assert event is not None
            exchange.events.append(event)
        async with bridge.client() as client:
            again = await transcribe(client, ONE_PHRASE)
    assert exchange.error.data["code"] == "protocol"
    assert message in exchange.error.data["text"]
    assert again.transcript == "batti jalao"
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_single_name_is_one_hotword_not_one_per_character() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        await client.write_event(Event("transcribe", {"language": "hi",
                                                     "transcript_names": "Rasoi ki batti"}))  # fmt: skip
        await transcribe(client, ONE_PHRASE, request=None)
        (record,) = simulator.connections
    assert record.config is not None
    assert [h["phrase"] for h in record.config["hotwords"]] == ["Rasoi ki batti"]


async def test_client_strings_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    forged = "hi\nERROR:wyoming_bodhi:forged line"
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        await transcribe(client, ONE_PHRASE, request=Transcribe(language=forged))
        await transcribe(
            client, ONE_PHRASE, request=Transcribe(name="zz\nERROR forged", language="hi")
        )
        await client.write_event(Event("not-a-type\nERROR forged", {}))
        await client.write_event(Describe().event())
        await asyncio.wait_for(client.read_event(), 2)
    messages = [record.getMessage() for record in caplog.records]
    # Each string reached the log, escaped (had none reached it, none could be forged).
    for escaped in (r"hi\nERROR:wyoming_bodhi:forged", r"zz\nERROR", r"not-a-type\nERROR"):
        assert any(escaped in message for message in messages), (escaped, messages)
    assert not [message for message in messages if "\n" in message], messages


# -- 10. bounded simulator history -----------------------------------------------------------


async def test_the_simulator_keeps_a_bounded_history() -> None:
    async with (
        running_simulator(texts=TEXTS, history=3) as simulator,
        running_bridge(simulator.url) as bridge,
        bridge.client() as client,
    ):
        for _ in range(5):
            await transcribe(client, ONE_PHRASE)
        await simulator.wait_for_connections(5)
    assert simulator.connection_count == 5
    assert [record.index for record in simulator.connections] == [2, 3, 4]


# -- 11. say what happened --------------------------------------------------------------------


async def test_an_endpointed_answer_says_why_it_ended(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    audio = encode(utterances(16000, count=2, burst=0.6, gap=1.5))
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True) as bridge,
        bridge.client() as client,
    ):
        await transcribe(client, audio, realtime=True)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Transcript")]
    assert "after audio-stop" not in line
    assert line.endswith("Bodhi ended the command, before any audio-stop")


async def test_home_assistant_hanging_up_after_the_transcript_is_not_news(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, endpointing=True) as bridge,
    ):
        client = AsyncTcpClient("127.0.0.1", bridge.port)
        await client.connect()
        exchange = Exchange()
        await client.write_event(Transcribe(language="hi").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        for event in chunk_events(ONE_PHRASE + encode(silence(16000, 2.0)), 320):
            await client.write_event(event)
        while not exchange.of_type("transcript"):
            event = await asyncio.wait_for(client.read_event(), 5)
            assert event is not None
            exchange.events.append(event)
        # As Home Assistant does: hang up at once, without audio-stop.
        await client.disconnect()
        assert await settled(lambda: bridge.bridge.active_utterances == 0)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "went away" in m or "mid-utterance" in m], messages
    assert [m for m in messages if "left after its transcript" in m]
