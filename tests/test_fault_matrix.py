"""The fault matrix: each way Bodhi can fail, and exactly what the Wyoming client gets.

Every row is one test against the simulator. The table in docs/failure-behaviour.md is
checked against these rows, so the documentation cannot drift from the behaviour.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.abc
import pytest
from wyoming.asr import Transcribe

from wyoming_bodhi.simulators.bodhi import BodhiSimulator

from .harness import (
    HINDI,
    RunningBridge,
    free_port,
    running_bridge,
    running_simulator,
    transcribe,
)
from .signals import encode, utterances

ONE_PHRASE = encode(utterances(16000, count=1))
TWO_PHRASES = encode(utterances(16000, count=2, burst=0.6, gap=1.0))
FAILURE_DOC = Path(__file__).parent.parent / "docs" / "failure-behaviour.md"


@dataclass(frozen=True)
class Fault:
    name: str
    """As in the documented table's first column."""
    outcome: str
    """An error code, or ``transcript``."""
    simulator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    audio: bytes = ONE_PHRASE
    transcript: str = ""
    handshakes: int | None = None
    """How many upgrade requests reached the simulator (retries included)."""
    within: float = 5.0
    """Seconds from the start of the request to its final event, at most."""
    request: Transcribe = field(default_factory=lambda: HINDI)


FAULTS = [
    Fault("Handshake refused 401", "bodhi-401", {"refuse_status": 401}, handshakes=1),
    Fault("Handshake refused 402", "bodhi-402", {"refuse_status": 402}, handshakes=1),
    Fault("Handshake refused 403", "bodhi-403", {"refuse_status": 403}, handshakes=1),
    Fault(
        "Handshake 500, then accepted",
        "transcript",
        {"refuse_status": 500, "refuse_count": 2, "texts": ["batti jalao"]},
        transcript="batti jalao",
        handshakes=3,
    ),
    Fault(
        "Handshake 503, then accepted",
        "transcript",
        {"refuse_status": 503, "refuse_count": 1, "texts": ["batti jalao"]},
        transcript="batti jalao",
        handshakes=2,
    ),
    Fault("Handshake 503, every time", "bodhi-503", {"refuse_status": 503}, handshakes=3),
    Fault("Handshake 500, every time", "bodhi-500", {"refuse_status": 500}, handshakes=3),
    Fault(
        "Handshake timeout",
        "bodhi-timeout",
        {"handshake_delay": 10},
        {"connect_timeout": 0.5},
        handshakes=3,
        within=4,
    ),
    Fault(
        "Handshake timeout longer than the retry budget",
        "bodhi-timeout",
        {"handshake_delay": 10},
        {"connect_timeout": 1.0, "retry_budget": 0.5},
        handshakes=1,
        within=2,
    ),
    Fault("Connection refused", "bodhi-unreachable", within=4),
    Fault("Name resolution failure", "bodhi-unreachable", within=4),
    Fault(
        "Slow handshake (1 s)",
        "transcript",
        {"handshake_delay": 1.0, "texts": ["batti jalao"]},
        transcript="batti jalao",
        handshakes=1,
    ),
    Fault(
        "In-socket 400 (model not available)",
        "bodhi-400",
        settings={"extra_models": ["pa-general-v3-8khz"]},
        request=Transcribe(name="pa-general-v3-8khz"),
    ),
    Fault(
        "In-socket 400, the socket left open",
        "bodhi-400",
        {"leave_open_after_error": True},
        {"extra_models": ["pa-general-v3-8khz"]},
        request=Transcribe(name="pa-general-v3-8khz"),
    ),
    Fault(
        "Socket dropped before any phrase completed",
        "bodhi-connection-lost",
        {"drop_after_frames": 3},
    ),
    Fault(
        "Socket dropped after a phrase completed",
        "transcript",
        {"drop_after_frames": 18, "texts": ["batti jalao", "pankha chalao"]},
        audio=TWO_PHRASES,
        transcript="batti jalao",
    ),
    Fault(
        "In-socket error before any phrase completed",
        "bodhi-500",
        {"error_after_frames": 3},
    ),
    Fault(
        "In-socket error after a phrase completed",
        "transcript",
        {"error_after_frames": 18, "texts": ["batti jalao", "pankha chalao"]},
        audio=TWO_PHRASES,
        transcript="batti jalao",
    ),
    Fault(
        "Silent after eof",
        "bodhi-timeout",
        {"silent_after_eof": True},
        {"response_timeout": 1.0},
        within=3,
    ),
    Fault(
        "Malformed or unknown result messages",
        "transcript",
        {"malformed_results": True, "texts": ["batti jalao"]},
        transcript="batti jalao",
    ),
]


class NoSuchHost(aiohttp.abc.AbstractResolver):
    """Resolves nothing, as a DNS server answering NXDOMAIN would; asks no network."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[Any]:
        raise OSError(socket.EAI_NONAME, f"Name or service not known: {host}")

    async def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def serving(
    fault: Fault, **settings: Any
) -> AsyncIterator[tuple[BodhiSimulator, RunningBridge]]:
    """The simulator misbehaving as ``fault`` says, and a bridge pointed at it (or elsewhere)."""
    settings = {"lead": 30, **fault.settings, **settings}
    async with running_simulator(**fault.simulator) as simulator:
        url, resolver = simulator.url, None
        if fault.name == "Connection refused":
            url = f"ws://127.0.0.1:{free_port()}"
        elif fault.name == "Name resolution failure":
            url, resolver = "ws://bodhi.invalid:8765", NoSuchHost()
            settings["allow_insecure"] = True
        async with running_bridge(url, resolver=resolver, **settings) as bridge:
            yield simulator, bridge


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
async def test_fault(fault: Fault) -> None:
    async with serving(fault) as (simulator, bridge), bridge.client() as client:
        started = time.monotonic()
        exchange = await transcribe(client, fault.audio, request=fault.request)
        elapsed = time.monotonic() - started
        handshakes = len(simulator.connections)
        # The server carries on: the same connection gets an answer to the next request.
        again = await transcribe(client, fault.audio, request=fault.request)
    assert elapsed <= fault.within
    final = exchange.events[-1]
    if fault.outcome == "transcript":
        assert exchange.types[-2:] == ["transcript", "transcript-stop"], exchange.types
        assert exchange.transcript == fault.transcript
    else:
        assert final.type == "error", exchange.types
        assert final.data["code"] == fault.outcome
        assert final.data["text"]
    assert again.types[-1] in ("transcript-stop", "error")
    if fault.handshakes is not None:
        assert handshakes == fault.handshakes


async def test_retries_replay_every_buffered_frame() -> None:
    """Retried handshakes lose nothing: every frame of the audio reaches Bodhi, once."""
    async with (
        running_simulator(refuse_status=503, refuse_count=2, texts=["batti jalao"]) as simulator,
        running_bridge(simulator.url, lead=30) as bridge,
        bridge.client() as client,
    ):
        exchange = await transcribe(client, TWO_PHRASES)
    accepted = [record for record in simulator.connections if record.http_status == 101]
    (record,) = accepted
    assert len(simulator.connections) == 3
    assert record.audio_bytes == -(-len(TWO_PHRASES) // 2 // 1600) * 1600
    assert exchange.transcript.startswith("batti jalao")


async def test_retries_stay_within_the_budget() -> None:
    async with (
        running_simulator(refuse_status=503) as simulator,
        running_bridge(simulator.url, retries=5, retry_budget=0.5) as bridge,
        bridge.client() as client,
    ):
        started = time.monotonic()
        exchange = await transcribe(client, ONE_PHRASE)
        elapsed = time.monotonic() - started
    # 0.25 s, then 0.5 s would pass the 0.5 s budget: one retry only.
    assert len(simulator.connections) == 2
    assert exchange.error.data["code"] == "bodhi-503"
    assert elapsed < 2


def documented_failure_table() -> dict[str, str]:
    text = FAILURE_DOC.read_text(encoding="utf-8")
    section = text[: text.index("\n## ")]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] not in ("fault", "---") and not cells[0].startswith("-"):
            rows[cells[0]] = cells[1]
    return rows


def test_documented_failure_table_matches_the_matrix() -> None:
    rows = documented_failure_table()
    for fault in FAULTS:
        assert fault.name in rows, f"docs/failure-behaviour.md has no row for {fault.name!r}"
        shown = rows[fault.name]
        if fault.outcome == "transcript":
            assert "transcript" in shown.lower(), (fault.name, shown)
        else:
            assert re.search(rf"`{re.escape(fault.outcome)}`", shown), (fault.name, shown)
