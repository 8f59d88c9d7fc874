"""Wyoming clients that no one here wrote, sending exactly what they send.

- wyoming-openai-gateway (an OpenAI-style ``/v1/audio/transcriptions`` in front of any
  Wyoming server): ``transcribe`` with its default model name ``whisper-1``, ``audio-start``,
  the whole recording at once in 8192-byte chunks, ``audio-stop``; then it reads until a
  ``transcript`` and ignores every other event, errors included.
- Clients on wyoming 1.0–1.3, which spell the request ``transcibe`` and frame each event as
  a header line with ``data_length``, then the data, then the payload.
- Rhasspy 3 (its ``wyoming-v1`` branch) through its ``client_tcp_socket.py``: no
  ``transcribe`` at all; ``audio-start``, ``audio-chunk`` and ``audio-stop`` with timestamps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import wave
from pathlib import Path
from typing import Any

import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop

from .harness import running_bridge, running_simulator

SAMPLE = Path(__file__).parent.parent / "samples" / "batti-jalao.wav"
TEXTS = ["batti jalao", "pankha chalao"]
ANSWER_WITHIN = 10.0
"""Seconds a client waits for its transcript here: the 2.5 s sample is paced to the
simulator at the speed of speech, then answered; the gateway itself would wait 120 s."""


def sample() -> tuple[bytes, int, int, int]:
    with wave.open(str(SAMPLE), "rb") as wav:
        audio = wav.readframes(wav.getnframes())
        return audio, wav.getframerate(), wav.getsampwidth(), wav.getnchannels()


# -- wyoming-openai-gateway ---------------------------------------------------------------------


async def gateway_transcribe(port: int, model_name: str = "whisper-1") -> str:
    """``WyomingStreamClient.transcribe`` of wyoming-openai-gateway 0.2.1, step by step, with
    what its HTTP handler passes for a request that names no model or language."""
    from wyoming.client import AsyncTcpClient

    audio, rate, width, channels = sample()
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(name=model_name, language=None).event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        for offset in range(0, len(audio), 8192):
            chunk = AudioChunk(
                rate=rate, width=width, channels=channels, audio=audio[offset : offset + 8192]
            )
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while True:
            event = await client.read_event()
            if event is None:
                raise ConnectionError("closed without returning a transcript")
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text


async def test_the_openai_gateways_default_request_gets_the_default_models_transcript(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_bodhi")
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        text = await asyncio.wait_for(gateway_transcribe(bridge.port), ANSWER_WITHIN)
    assert text == "batti jalao pankha chalao"
    # No model of that name here, and no language: the default model, as the reference
    # server (wyoming-faster-whisper) ignores a name it does not have.
    assert simulator.connections[0].config["model"] == "hi-general-v2-8khz"  # type: ignore[index]
    said = [r for r in caplog.records if "whisper-1" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO, [r.getMessage() for r in said]


async def test_an_unknown_model_name_is_said_once_per_connection_and_routed_by_language(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_bodhi")
    audio, rate, width, channels = sample()
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        async with bridge.client() as client:
            for language in ("ta", "kn"):
                await client.write_event(Transcribe(name="whisper-1", language=language).event())
                await client.write_event(AudioStart(rate, width, channels).event())
                await client.write_event(AudioChunk(rate, width, channels, audio).event())
                await client.write_event(AudioStop().event())
                while True:
                    event = await asyncio.wait_for(client.read_event(), ANSWER_WITHIN)
                    assert event is not None and event.type != "error", event
                    if Transcript.is_type(event.type):
                        break
        # A new connection is told again.
        await asyncio.wait_for(gateway_transcribe(bridge.port), ANSWER_WITHIN)
    models = [record.config["model"] for record in simulator.connections]  # type: ignore[index]
    assert models == ["ta-general-v2-8khz", "kn-general-v2-8khz", "hi-general-v2-8khz"]
    said = [r.getMessage() for r in caplog.records if "whisper-1" in r.getMessage()]
    assert len(said) == 2, said


# -- wyoming 1.0–1.3 ----------------------------------------------------------------------------


def wyoming_1_3_frame(
    event_type: str, data: dict[str, Any], payload: bytes = b"", version: str = "1.2"
) -> bytes:
    """An event as wyoming 1.3's ``async_write_event`` writes it: the header line (with the
    protocol version 1.3 sends, "1.2"; Rhasspy 3's copy of 1.1 sends "1.1"), the data as
    separate bytes, then the payload."""
    header: dict[str, Any] = {"type": event_type, "version": version}
    body = json.dumps(data, ensure_ascii=False).encode() if data else b""
    if body:
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header, ensure_ascii=False).encode() + b"\n" + body + payload


async def read_as_wyoming_1_3(reader: asyncio.StreamReader) -> tuple[str, dict[str, Any]] | None:
    """An event as wyoming 1.3's ``async_read_event`` reads it (the payload is skipped)."""
    line = await reader.readline()
    if not line:
        return None
    header = json.loads(line)
    data = header.get("data") or {}
    if header.get("data_length"):
        data.update(json.loads(await reader.readexactly(header["data_length"])))
    if header.get("payload_length"):
        await reader.readexactly(header["payload_length"])
    return header["type"], data


async def wyoming_1_3_request(port: int, transcribe: dict[str, Any] | None) -> str:
    """What a wyoming 1.3 client sends for one recording: ``transcibe`` (if it asks for a
    model or language), then the audio with 1.3's fields (``timestamp`` among them)."""
    audio, rate, width, channels = sample()
    fmt = {"rate": rate, "width": width, "channels": channels}
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if transcribe is not None:
            writer.write(wyoming_1_3_frame("transcibe", transcribe))
        writer.write(wyoming_1_3_frame("audio-start", {**fmt, "timestamp": 0}))
        step, sent_ms = 1024 * width * channels, 0
        for offset in range(0, len(audio), step):
            piece = audio[offset : offset + step]
            writer.write(wyoming_1_3_frame("audio-chunk", {**fmt, "timestamp": sent_ms}, piece))
            sent_ms += len(piece) * 1000 // (rate * width * channels)
        writer.write(wyoming_1_3_frame("audio-stop", {"timestamp": sent_ms}))
        await writer.drain()
        while True:
            got = await read_as_wyoming_1_3(reader)
            if got is None:
                raise ConnectionError("closed without returning a transcript")
            event_type, data = got
            assert event_type != "error", data
            if event_type == "transcript":
                return str(data["text"])
    finally:
        writer.close()


async def test_a_wyoming_1_3_clients_transcibe_is_a_transcribe() -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url) as bridge,
    ):
        text = await asyncio.wait_for(
            wyoming_1_3_request(bridge.port, {"language": "ta"}), ANSWER_WITHIN
        )
        named = await asyncio.wait_for(
            wyoming_1_3_request(bridge.port, {"name": "kn-general-v2-8khz"}), ANSWER_WITHIN
        )
    assert text == named == "batti jalao pankha chalao"
    models = [record.config["model"] for record in simulator.connections]  # type: ignore[index]
    assert models == ["ta-general-v2-8khz", "kn-general-v2-8khz"]


async def test_rhasspy_3_sends_no_transcribe_and_gets_the_default_model() -> None:
    """Rhasspy 3's asr pipeline writes audio-start, audio-chunks of 1024 samples and
    audio-stop, with timestamps, and no transcribe; client_tcp_socket.py passes them on."""
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, model="ta-general-v2-8khz") as bridge,
    ):
        text = await asyncio.wait_for(wyoming_1_3_request(bridge.port, None), ANSWER_WITHIN)
    assert text == "batti jalao pankha chalao"
    assert simulator.connections[0].config["model"] == "ta-general-v2-8khz"  # type: ignore[index]
