"""The vendor's own client (bodhi-sdk 1.4.0) against the simulator: proof of protocol fidelity.

The SDK streams a WAV file in real-time 20 ms frames, so the files here are short (≈3 s).
Each SDK call runs on its own event loop in a worker thread: on an in-socket error the SDK
cancels *every* task of its loop (``asyncio.all_tasks()``), which would otherwise take the
test and the simulator down with it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bodhi import BodhiClient, LiveTranscriptionEvents, TranscriptionConfig
from bodhi.utils.exceptions import AuthenticationError, BodhiAPIError

from wyoming_bodhi.simulators.bodhi import BodhiOptions, BodhiSimulator

from .harness import clean_env, free_port, process, wait_for_port

RATE = 8000
TEXTS = ["namaste duniya", "batti jalao"]
SDK_TIMEOUT = 20.0


def write_wav(path: Path, *, tail: float) -> None:
    """Two noise-and-tone 'utterances' of 0.8 s, 1 s apart, 8 kHz 16-bit mono."""
    rng = np.random.default_rng(7)

    def burst() -> np.ndarray:
        t = np.arange(int(RATE * 0.8)) / RATE
        return 0.25 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))

    def gap(seconds: float) -> np.ndarray:
        return np.zeros(int(RATE * seconds))

    signal = np.concatenate([gap(0.2), burst(), gap(1.0), burst(), gap(tail)])
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())


class Collected:
    """What the SDK's listeners saw."""

    def __init__(self) -> None:
        self.transcripts: list[Any] = []
        self.errors: list[Exception] = []
        self.raised: BaseException | None = None

    def attach(self, client: BodhiClient) -> None:
        client.on(LiveTranscriptionEvents.Transcript, self.transcripts.append)
        client.on(LiveTranscriptionEvents.Error, self.errors.append)


async def run_sdk(make: Callable[[], Awaitable[None]], collected: Collected) -> None:
    """Run an SDK coroutine on a fresh event loop in a worker thread."""

    async def guarded() -> None:
        try:
            await make()
        except (Exception, asyncio.CancelledError) as err:
            collected.raised = err

    await asyncio.wait_for(asyncio.to_thread(asyncio.run, guarded()), SDK_TIMEOUT)


async def transcribe_file(
    url: str, path: Path, model: str = "hi-general-v2-8khz", api_key: str = "any-key"
) -> Collected:
    collected = Collected()

    async def go() -> None:
        client = BodhiClient(api_key=api_key, customer_id=str(uuid.uuid4()), uri=url)
        collected.attach(client)
        try:
            await client.transcribe_local_file(str(path), config=TranscriptionConfig(model=model))
        finally:
            # The SDK leaves its HTTP session open on its error paths.
            session = client.websocket_handler.session
            if session is not None and not session.closed:
                await session.close()

    await run_sdk(go, collected)
    return collected


@pytest.mark.parametrize(
    ("final", "tail"),
    [("last-complete", 0.2), ("separate", 0.6)],
)
async def test_sdk_transcribes_two_utterances(tmp_path: Path, final: str, tail: float) -> None:
    path = tmp_path / "two.wav"
    write_wav(path, tail=tail)
    async with BodhiSimulator(BodhiOptions(texts=TEXTS, final=final)) as sim:  # type: ignore[arg-type]
        collected = await transcribe_file(sim.url, path)
        (record,) = await sim.wait_for_connections(1)
        await asyncio.wait_for(record.closed.wait(), 5.0)

    assert collected.raised is None and collected.errors == []
    responses = collected.transcripts
    completes = [r.text for r in responses if r.type == "complete" and r.text]
    assert completes == TEXTS
    assert responses[-1].eos is True
    assert sum(r.eos for r in responses) == 1
    assert any(r.type == "partial" for r in responses)
    assert {r.call_id for r in responses} == {record.call_id}

    # What the SDK put on the wire, as the simulator recorded it.
    assert record.auth_headers == ("x-api-key", "x-customer-id")
    assert record.config is not None
    assert record.config["model"] == "hi-general-v2-8khz"
    assert record.config["sample_rate"] == RATE
    uuid.UUID(record.config["transaction_id"])
    assert {f.size for f in record.frames[:-1]} == {320}  # 20 ms frames
    assert record.eof_received and json.loads(record.eof_message or "") == {"eof": 1}
    assert record.ended == "eos"


async def test_sdk_sees_unknown_model_error(tmp_path: Path) -> None:
    path = tmp_path / "two.wav"
    write_wav(path, tail=0.2)
    async with BodhiSimulator(BodhiOptions()) as sim:
        collected = await transcribe_file(sim.url, path, model="zz-banking-v2-8khz")
        (record,) = await sim.wait_for_connections(1)
        await asyncio.wait_for(record.closed.wait(), 5.0)

    api_errors = [e for e in collected.errors if isinstance(e, BodhiAPIError)]
    assert api_errors, collected.errors
    body = json.loads(str(api_errors[0]))
    assert body["error"] == "model 'zz-banking-v2-8khz' is not available"
    assert body["code"] == 400
    assert collected.transcripts == []
    assert record.ended == "error"


async def test_sdk_with_wrong_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.wav"
    write_wav(path, tail=0.2)
    async with BodhiSimulator(BodhiOptions(api_key="K")) as sim:
        collected = await transcribe_file(sim.url, path, api_key="not-K")
        (record,) = await sim.wait_for_connections(1)

    assert isinstance(collected.raised, AuthenticationError)
    assert any(isinstance(e, AuthenticationError) for e in collected.errors)
    assert json.loads(str(collected.raised))["code"] == 401
    assert (record.http_status, record.ended) == (401, "refused")
    assert collected.transcripts == []


async def test_sdk_against_the_simulator_command(tmp_path: Path) -> None:
    """The issue's acceptance check, as a user would run it: the simulator as a process."""
    path = tmp_path / "two.wav"
    write_wav(path, tail=0.2)
    port = free_port()
    args = [
        "-m",
        "wyoming_bodhi.simulators.bodhi",
        "--port",
        str(port),
        "--texts",
        json.dumps(TEXTS),
    ]
    with process(args, clean_env()) as simulator:
        await wait_for_port(port, simulator)
        collected = await transcribe_file(f"ws://127.0.0.1:{port}", path)
    assert collected.raised is None and collected.errors == []
    completes = [r for r in collected.transcripts if r.type == "complete"]
    assert [r.text for r in completes if r.text] == TEXTS
    assert collected.transcripts[-1].eos is True
