"""The HTTP side, over real sockets: /healthz, /readyz, /metrics after requests of every
outcome, the metrics listener alone, the page's API and live updates, the microphone socket
through the real pipeline, who may do what, and that no secret ever reaches any of it.
(tests/test_browser.py drives the page itself in Chromium.)"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import logging
import os
import re
import resource
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe, TranscriptChunk
from wyoming.client import AsyncTcpClient
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe

from wyoming_bodhi import __version__
from wyoming_bodhi.engines.base import Phrase, PhraseKind
from wyoming_bodhi.pipeline.activity import RequestRecord
from wyoming_bodhi.pipeline.utterance import ClientGone
from wyoming_bodhi.simulators.bodhi import BodhiSimulator
from wyoming_bodhi.web import browser_mic
from wyoming_bodhi.web import server as web_server
from wyoming_bodhi.web.browser_mic import SocketSink
from wyoming_bodhi.web.check import CheckRate
from wyoming_bodhi.web.metrics import Metrics
from wyoming_bodhi.web.server import MetricsServer, StatusServer

from . import signals
from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Rig,
    RunningBridge,
    bridge_command,
    clean_env,
    free_port,
    process,
    settled,
    transcribe,
    unavailable,
    wait_for_port,
)

TEXTS = ["batti jalao", "pankha chalao"]
SPEECH = signals.encode(signals.utterances(16000, count=2, burst=0.5, gap=0.6))
IAPP_KEY = "iapp-sentinel-key-7d3f0a9c"
HASS_TOKEN = "hass-sentinel-token-51c2e8b4"


class Page:
    """The status page's HTTP server, as a browser on the same machine reaches it (or the
    metrics listener, as a load balancer or Prometheus does)."""

    def __init__(self, status: StatusServer | MetricsServer, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{status.port}"
        self.origin = self.base
        self.status = status
        self.http = http

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.http.get(self.base + path, **kwargs) as response:
            return response.status, await response.text()

    async def check(self, engine: str, origin: str | None = "") -> tuple[int, dict[str, Any]]:
        headers = {"Origin": self.origin if origin == "" else origin} if origin is not None else {}
        async with self.http.post(f"{self.base}/api/check/{engine}", headers=headers) as response:
            return response.status, await response.json()

    def microphone(self, origin: str | None = "") -> Any:
        headers = {"Origin": self.origin if origin == "" else origin} if origin is not None else {}
        return self.http.ws_connect(f"{self.base}/api/microphone", headers=headers)


class ServedPage(Page):
    """The status page of a bridge the test runs (``serve``), with the bridge and its
    simulator."""

    def __init__(
        self,
        status: StatusServer,
        http: aiohttp.ClientSession,
        running: RunningBridge,
        simulator: BodhiSimulator,
    ) -> None:
        super().__init__(status, http)
        self.running = running
        self.simulator = simulator


Serve = Callable[..., Awaitable[ServedPage]]


@pytest.fixture
def serve(rig: Rig, http: aiohttp.ClientSession) -> Serve:
    """``await serve(simulator={...}, **settings)``: a simulator, the bridge against it with
    ``settings`` and its status page (on 127.0.0.1 unless ``http_uri`` says), and the page."""

    async def serve(simulator: dict[str, Any] | None = None, **settings: Any) -> ServedPage:
        engine = await rig.simulator(**(simulator or {}))
        running = await rig.bridge(engine.url, **{"http_uri": "tcp://127.0.0.1:0", **settings})
        return ServedPage(await rig.status_page(running), http, running, engine)

    return serve


async def wyoming_request(port: int, audio: bytes = SPEECH, **transcribe_args: Any) -> Any:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        return await transcribe(client, audio, **transcribe_args)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name:
            found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if found == wanted:
                return float(match[3])
    return 0.0


async def test_healthz_is_ok_while_serving_and_503_once_stopping(serve: Serve) -> None:
    # The page's /healthz is what balancers were pointed at before /readyz: it turns 503 at
    # the first moment of a stop (the drain), not only once requests are refused.
    page = await serve()
    code, body = await page.get("/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"
    assert (await page.get("/readyz"))[0] == 200
    page.running.bridge.draining = True
    code, body = await page.get("/healthz")
    assert code == 503 and json.loads(body) == {"status": "stopping"}
    code, body = await page.get("/readyz")
    assert code == 503 and json.loads(body)["status"] == "draining"
    page.running.bridge.shutting_down = True
    code, body = await page.get("/healthz")
    assert code == 503 and json.loads(body) == {"status": "stopping"}


async def test_the_metrics_listener_serves_health_readiness_and_metrics_and_nothing_else(
    http: aiohttp.ClientSession, rig: Rig
) -> None:
    simulator = await rig.simulator(texts=TEXTS)
    running = await rig.bridge(simulator.url, metrics_uri="tcp://127.0.0.1:0", max_sessions=7)
    probes = Page(await rig.metrics_listener(running), http)
    exchange = await wyoming_request(running.port)
    assert exchange.transcript == "batti jalao pankha chalao"
    alive, ready = await probes.get("/healthz"), await probes.get("/readyz")
    code, text = await probes.get("/metrics")
    # Nothing that costs money or shows a transcript: not the page, its API, the check or
    # the microphone.
    for path in ("/", "/app.js", "/api/status", "/api/live", "/api/microphone"):
        assert (await probes.get(path))[0] == 404, path
    async with http.post(
        f"{probes.base}/api/check/bodhi", headers={"Origin": probes.origin}
    ) as response:
        code_check = response.status
    assert simulator.connections[1:] == []  # the request's own session only

    assert alive == (200, json.dumps({"status": "ok", "version": __version__}))
    assert ready[0] == 200
    assert json.loads(ready[1]) == {"status": "ready", "sessions": 0, "max_sessions": 7}
    assert code == 200 and code_check == 404
    assert metric(text, "wyoming_bodhi_requests_total", result="transcript") == 1
    assert metric(text, "wyoming_bodhi_sessions_limit") == 7
    assert metric(text, "wyoming_bodhi_draining") == 0
    assert metric(text, "wyoming_bodhi_build_info", version=__version__) == 1
    # prometheus-client's process metrics, which its default registry would have had.
    assert metric(text, "process_resident_memory_bytes") > 10_000_000
    assert metric(text, "process_open_fds") > 3
    assert metric(text, "process_cpu_seconds_total") > 0
    assert "python_info{" in text


async def test_while_draining_alive_but_not_ready_and_the_gauge_says_so(
    http: aiohttp.ClientSession, rig: Rig
) -> None:
    simulator = await rig.simulator()
    running = await rig.bridge(simulator.url, metrics_uri="tcp://127.0.0.1:0")
    probes = Page(await rig.metrics_listener(running), http)
    running.bridge.draining = True
    draining = [await probes.get(path) for path in ("/healthz", "/readyz", "/metrics")]
    running.bridge.shutting_down = True
    stopping = [await probes.get(path) for path in ("/healthz", "/readyz")]

    (alive, _), (ready, ready_body), (_, text) = draining
    # A liveness probe must never kill a server that is finishing its requests.
    assert alive == 200 and ready == 503
    assert json.loads(ready_body)["status"] == "draining"
    assert metric(text, "wyoming_bodhi_draining") == 1
    assert [code for code, _ in stopping] == [200, 503]
    assert [json.loads(body)["status"] for _, body in stopping] == ["stopping", "stopping"]


async def test_at_max_sessions_still_ready(http: aiohttp.ClientSession, rig: Rig) -> None:
    # At capacity one more request is answered `busy` at once; a balancer that took every
    # full replica out would leave clients with no answer at all.
    simulator = await rig.simulator(texts=TEXTS)
    running = await rig.bridge(simulator.url, metrics_uri="tcp://127.0.0.1:0", max_sessions=1)
    probes = Page(await rig.metrics_listener(running), http)
    async with AsyncTcpClient("127.0.0.1", running.port) as holder:
        holding = asyncio.create_task(transcribe(holder, SPEECH, realtime=True))
        await simulator.wait_for_connections(1)
        code, body = await probes.get("/readyz")
        _code, text = await probes.get("/metrics")
        await holding
    assert code == 200
    assert json.loads(body) == {"status": "ready", "sessions": 1, "max_sessions": 1}
    assert metric(text, "wyoming_bodhi_active_sessions") == 1
    assert metric(text, "wyoming_bodhi_sessions_limit") == 1


def failed_request(result: str) -> RequestRecord:
    return RequestRecord(
        started_at=0.0, client="192.0.2.7:51234", engine="bodhi", model="hi-general-v2-8khz",
        language="hi", audio_seconds=1.0, billed_seconds=1.0, latency=None, result=result,
        text="Bodhi rejected the request",
    )  # fmt: skip


async def test_codes_an_engine_invents_fold_into_one_label(serve: Serve) -> None:
    # Label values (and the page's counts) from a closed set: a new code per request, or a
    # code 4,000 characters long, must not become a new series each.
    page = await serve()
    activity = page.running.bridge.activity
    for code in range(1000, 1400):
        activity.request_done(failed_request(f"bodhi-{code}"))
        activity.handshake_failed("bodhi", f"bodhi-{code}")
    activity.request_done(failed_request("bodhi-" + "9" * 4000))
    activity.request_done(failed_request("no-such-code"))
    activity.request_done(failed_request("bodhi-401"))
    _code, text = await page.get("/metrics")
    _code, body = await page.get("/api/status")

    series = [line for line in text.splitlines() if line.startswith("wyoming_bodhi_")]
    assert len(series) < 60, len(series)
    assert len(text) < 20_000
    assert metric(text, "wyoming_bodhi_requests_total", result="bodhi-error") == 401
    assert metric(text, "wyoming_bodhi_requests_total", result="error") == 1
    assert metric(text, "wyoming_bodhi_requests_total", result="bodhi-401") == 1
    assert (
        metric(
            text, "wyoming_bodhi_engine_handshake_failures_total", engine="bodhi", status="error"
        )
        == 400
    )
    counts = json.loads(body)["counts"]
    assert counts["results"] == {"bodhi-error": 401, "error": 1, "bodhi-401": 1}
    assert counts["handshake_failures"] == {"bodhi error": 400}


async def test_metrics_after_requests_of_every_outcome(rig: Rig, serve: Serve) -> None:
    wrong_key = await rig.simulator(texts=TEXTS, api_key="K" * 16)
    page = await serve(simulator={"texts": TEXTS}, max_sessions=1)
    running = page.running
    # Two transcripts.
    for _ in range(2):
        exchange = await wyoming_request(running.port)
        assert exchange.transcript == "batti jalao pankha chalao"
    # A client's mistake: a language tag longer than any.
    exchange = await wyoming_request(running.port, request=Transcribe(language="x" * 65))
    assert exchange.error.data["code"] == "protocol"
    # Busy: one request holds the only session while another asks.
    async with AsyncTcpClient("127.0.0.1", running.port) as holder:
        slow = asyncio.create_task(transcribe(holder, SPEECH, realtime=True))
        await page.simulator.wait_for_connections(1)
        exchange = await wyoming_request(running.port)
        assert exchange.error.data["code"] == "busy"
        await slow
    # A wrong key: the engine refuses the handshake (no retry: 401 will not change).
    for engine in running.bridge.engines:
        engine.url = wrong_key.url  # type: ignore[misc]
    exchange = await wyoming_request(running.port)
    assert exchange.error.data["code"] == "bodhi-401"

    code, text = await page.get("/metrics")
    assert code == 200
    assert metric(text, "wyoming_bodhi_requests_total", result="transcript") == 3
    assert metric(text, "wyoming_bodhi_requests_total", result="protocol") == 1
    assert metric(text, "wyoming_bodhi_requests_total", result="busy") == 1
    assert metric(text, "wyoming_bodhi_requests_total", result="bodhi-401") == 1
    assert (
        metric(text, "wyoming_bodhi_engine_handshake_failures_total", engine="bodhi", status="401")
        == 1
    )
    assert metric(text, "wyoming_bodhi_latency_seconds_count") == 3
    # Three requests of 1.8 s of audio, in whole 100 ms frames, were billed.
    billed = metric(text, "wyoming_bodhi_engine_audio_seconds_total", engine="bodhi")
    assert billed == pytest.approx(3 * 1.8, abs=0.35)
    assert "# TYPE wyoming_bodhi_active_sessions gauge" in text
    assert metric(text, "wyoming_bodhi_active_sessions") == 0
    assert "# TYPE wyoming_bodhi_active_connections gauge" in text


async def test_a_request_is_on_the_live_feed_within_a_second(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    page = await serve(simulator={"texts": TEXTS})
    async with http.ws_connect(f"{page.base}/api/live") as live:
        snapshot = await live.receive_json(timeout=5)
        assert snapshot["type"] == "snapshot" and snapshot["recent"] == []
        assert [engine["name"] for engine in snapshot["engines"]] == ["bodhi"]
        await wyoming_request(page.running.port)
        done = asyncio.get_running_loop().time()
        update = await live.receive_json(timeout=5)
        assert asyncio.get_running_loop().time() - done < 1.0
    _code, body = await page.get("/api/status")

    assert update["type"] == "request"
    request = update["request"]
    assert request["result"] == "transcript" and request["text"] == "batti jalao pankha chalao"
    assert request["client"].startswith("127.0.0.1:")
    assert (request["engine"], request["model"], request["language"]) == (
        "bodhi",
        "hi-general-v2-8khz",
        "hi",
    )
    assert request["audio_seconds"] == pytest.approx(len(SPEECH) / 32000)
    assert request["latency"] is not None and request["latency"] >= 0
    assert update["counts"]["results"] == {"transcript": 1}
    assert json.loads(body)["recent"] == [request]


async def test_the_microphone_socket_runs_the_real_pipeline(serve: Serve) -> None:
    page = await serve(simulator={"texts": TEXTS})
    async with page.microphone() as ws:
        await ws.send_json({"language": "ta", "model": None, "rate": 16000})
        started = await ws.receive_json(timeout=5)
        for start in range(0, len(SPEECH), 640):
            await ws.send_bytes(SPEECH[start : start + 640])
            await asyncio.sleep(0.02)
        await ws.send_json({"type": "stop"})
        messages = [started]
        while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
            messages.append(json.loads(message.data))
    (record,) = page.simulator.connections

    assert started == {
        "type": "started",
        "engine": "Bodhi",
        "model": "ta-general-v2-8khz",
        "language": "ta",
    }
    kinds = [message["type"] for message in messages]
    assert "partial" in kinds
    assert [m["text"] for m in messages if m["type"] == "phrase"] == TEXTS
    assert messages[-1] == {"type": "transcript", "text": "batti jalao pankha chalao"}
    # Exactly what a Wyoming request gets: 8 kHz to Bodhi in 100 ms frames.
    assert record.config is not None and record.config["model"] == "ta-general-v2-8khz"
    assert {frame.size for frame in record.frames[:-1]} == {1600}


async def test_a_page_that_leaves_mid_test_closes_the_engine_session(serve: Serve) -> None:
    page = await serve(simulator={"texts": TEXTS})
    async with page.microphone() as ws:
        await ws.send_json({"language": "hi", "model": None, "rate": 16000})
        await ws.receive_json(timeout=5)
        await ws.send_bytes(SPEECH[:16000])
        (record,) = await page.simulator.wait_for_connections(1)
    await asyncio.wait_for(record.closed.wait(), 2.0)
    assert page.running.bridge.active_utterances == 0


async def test_the_microphone_queue_keeps_one_partial_and_cuts_off_a_page_not_reading() -> None:
    cut_off: list[str] = []
    sink = SocketSink(max_queued=5000, on_cut_off=cut_off.append)
    for n in range(100_000):  # an engine flooding partials: only the newest waits
        sink.on_phrase(Phrase(PhraseKind.PARTIAL, f"batti {n}"))
    sink.put(TranscriptChunk(text="batti jalao").event())
    sink.on_phrase(Phrase(PhraseKind.PARTIAL, "pankha"))
    sink.on_phrase(Phrase(PhraseKind.PARTIAL, "pankha chalao"))
    assert [json.loads(m) for m in sink.waiting()] == [
        {"type": "partial", "text": "batti 99999"},
        {"type": "phrase", "text": "batti jalao"},
        {"type": "partial", "text": "pankha chalao"},
    ]
    # Past the bound the partials go first; then the request ends, the page cut off.
    sink.on_phrase(Phrase(PhraseKind.PARTIAL, "p" * 3000))
    sink.put(TranscriptChunk(text="x" * 2000).event())
    assert [json.loads(m)["type"] for m in sink.waiting()] == ["phrase", "phrase"]
    assert cut_off == []
    with pytest.raises(ClientGone):
        sink.put(TranscriptChunk(text="x" * 3000).event())
    assert cut_off == ["over 5000 bytes wait for it"]
    assert sink.waiting() == []
    sink.on_phrase(Phrase(PhraseKind.PARTIAL, "more"))
    assert sink.waiting() == [] and await sink.get() is None


async def test_a_page_that_stops_reading_while_the_engine_floods_is_cut_off(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser_mic, "WRITE_TIMEOUT", 1.0)
    partial = json.dumps(
        {"call_id": "c", "segment_id": 0, "eos": False, "type": "partial", "text": "batti " * 10000}
    )
    page = await serve(
        simulator={"texts": TEXTS, "raw_before_results": [partial], "raw_repeat": 2000}
    )
    async with page.microphone() as ws:
        # The page sends its audio in real time and never reads a thing.
        await ws.send_json({"language": "hi", "model": None, "rate": 16000})
        (record,) = await page.simulator.wait_for_connections(1)
        started = asyncio.get_running_loop().time()
        for start in itertools.cycle(range(0, len(SPEECH), 3200)):
            if record.closed.is_set() or asyncio.get_running_loop().time() - started > 10:
                break
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(SPEECH[start : start + 3200])
            await asyncio.sleep(0.1)
        took = asyncio.get_running_loop().time() - started
        assert await settled(lambda: page.running.bridge.active_utterances == 0)
        counts = page.status.monitor.counts()
    # The flood fills the socket's buffers in a second or two; then a second without progress.
    assert record.closed.is_set(), took
    assert counts["results"] == {"client-gone": 1}


@pytest.mark.parametrize(
    ("start", "error"),
    [
        ("not json", "the first message must be JSON"),
        ("[" * 60_000, "the first message must be JSON"),
        ('["a"]', "the first message must be a JSON object"),
        ('{"rate": 4000}', "rate must be a whole number of Hz from 8000 to 48000"),
        ('{"rate": 16000, "language": 7}', "language must be a short string or null"),
    ],
)
async def test_a_bad_start_message_is_refused(
    start: str, error: str, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    page = await serve()
    async with page.microphone() as ws:
        await ws.send_str(start)
        assert await ws.receive_json(timeout=5) == {
            "type": "error",
            "code": "protocol",
            "text": error,
        }
        assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
    assert page.simulator.connections == []
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_the_microphone_counts_against_max_sessions(serve: Serve) -> None:
    page = await serve(max_sessions=1)
    async with page.microphone() as first, page.microphone() as second:
        await first.send_json({"language": "hi", "model": None, "rate": 16000})
        assert (await first.receive_json(timeout=5))["type"] == "started"
        await second.send_json({"language": "hi", "model": None, "rate": 16000})
        refused = await second.receive_json(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "busy"


async def test_the_engine_check_says_what_happened(rig: Rig, serve: Serve) -> None:
    simulator = await rig.simulator(api_key=API_KEY)
    page = await serve(simulator={"api_key": "another-key-0000"})
    code, refused = await page.check("bodhi")
    assert code == 200
    page.running.bridge.engines[0].url = simulator.url  # type: ignore[misc]
    code, accepted = await page.check("bodhi")
    code_missing, missing = await page.check("iapp")
    (session,) = simulator.connections

    assert refused["ok"] is False and refused["code"] == "bodhi-401"
    assert refused["summary"].startswith("Bodhi refused the connection: ")
    assert "API key" in refused["summary"]
    assert accepted["ok"] is True
    assert re.fullmatch(
        r"Bodhi accepted the credentials and opened a session in \d+ ms", accepted["summary"]
    )
    assert code_missing == 404 and missing == {"error": "no engine 'iapp' is configured"}
    # The session was opened and closed with no audio: nothing, or next to nothing, billed.
    assert session.frames == [] and session.ended in ("eos", "client closed")


async def http_get(port: int, path: str = "/healthz") -> bytes:
    """One request on a connection of its own; the whole answer, the server having closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_the_page_serves_at_most_its_connections_live_pages_included(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    page = await serve(http_max_connections=3)
    status = page.status
    async with (
        http.ws_connect(f"{page.base}/api/live") as live,
        http.ws_connect(f"{page.base}/api/live"),
    ):
        await live.receive_json(timeout=5)
        _reader, idle = await asyncio.open_connection("127.0.0.1", status.port)
        turned_away = await http_get(status.port)
        idle.close()
        # Its place is free as soon as the server sees it close.
        assert await settled(lambda: status.connections == 2)
        answer = await http_get(status.port)
    head, _, body = turned_away.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"Retry-After: " in head
    assert (
        body
        == b"the status page has 3 connections open (http_max_connections); try again shortly\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 ")


async def test_a_connection_that_sends_nothing_or_rests_is_closed_soon(
    monkeypatch: pytest.MonkeyPatch, serve: Serve
) -> None:
    monkeypatch.setattr(web_server, "KEEPALIVE_TIMEOUT", 0.5)
    page = await serve()
    silent_reader, silent = await asyncio.open_connection("127.0.0.1", page.status.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", page.status.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    started = asyncio.get_running_loop().time()
    answer = await asyncio.wait_for(reader.read(), 3)
    assert await asyncio.wait_for(silent_reader.read(), 3) == b""
    took = asyncio.get_running_loop().time() - started
    silent.close()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"status": "ok"' in answer
    assert 0.3 < took < 2


@contextlib.asynccontextmanager
async def server_under_a_file_limit(
    event_loop: str, files: int
) -> AsyncIterator[tuple[subprocess.Popen[str], int, int]]:
    """The server as its own process, on ``event_loop``, its status page on, under an
    open-file limit of ``files`` it cannot raise: (the process, its port, the page's)."""
    if event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        unavailable("uvloop", "not installed (pip install -e '.[test]' installs it)")
    port, http_port = free_port(), free_port()
    env = clean_env(
        BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, WYOMING_EVENT_LOOP=event_loop
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    command = bridge_command(port, "ws://127.0.0.1:9", "--http-uri", f"tcp://127.0.0.1:{http_port}")
    with process(command, env, preexec_fn=limit) as server:
        await wait_for_port(port, server)
        await wait_for_port(http_port, server)
        yield server, port, http_port


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_nothing_done_to_the_page_takes_the_wyoming_sides_open_files(
    event_loop: str,
) -> None:
    # An open-file limit of 200, too few for both sides' defaults: hundreds of page
    # connections, live sockets and connections that never send, then every Wyoming
    # connection the server offers (max_connections, 100) at once.
    held: list[Any] = []
    async with (
        server_under_a_file_limit(event_loop, 200) as (server, port, http_port),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        live = refused = 0
        for _ in range(100):
            try:
                held.append(await http.ws_connect(f"http://127.0.0.1:{http_port}/api/live"))
                live += 1
            except aiohttp.WSServerHandshakeError as err:
                assert err.status == 503
                refused += 1
        # Beyond what is served and being turned away, they wait in the kernel's queue.
        opening = [
            asyncio.create_task(asyncio.open_connection("127.0.0.1", http_port)) for _ in range(300)
        ]
        opened, waiting = await asyncio.wait(opening, timeout=1.0)
        for task in waiting:
            task.cancel()
        idle = [task.result()[1] for task in opened if not task.exception()]
        wyoming = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        for _reader, writer in wyoming:
            await async_write_event(Describe().event(), writer)
        answers = [await asyncio.wait_for(async_read_event(reader), 5) for reader, _ in wyoming]
        for ws in held:
            await ws.close()
        for writer in [*idle, *(writer for _reader, writer in wyoming)]:
            writer.close()
        server.terminate()
        assert server.stdout is not None
        output = server.stdout.read()
    assert [answer.type if answer else None for answer in answers] == ["info"] * 100, output
    # The Wyoming side comes first: 100 + 20 sessions + 64 spare; the page gets the rest.
    assert "need about 184 open files and the status page 36 more" in output
    assert "The status page serves 12 connections at once, not 32" in output
    # One address holds at most three quarters of them (9); the rest wait for others.
    assert live == 9 and refused == 91
    assert len(idle) >= 128  # every idle connection the kernel took (its queue is 128)
    assert "Traceback" not in output, output
    assert output.count("Turning away a page connection") == 1, output


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_out_of_descriptors_a_page_connection_waits_and_is_then_served(
    event_loop: str,
) -> None:
    # An open-file limit far below the budget, and Wyoming clients taking every descriptor:
    # a page request meanwhile waits in the kernel's queue (on uvloop too), then is answered.
    async with server_under_a_file_limit(event_loop, 64) as (server, port, http_port):
        wyoming = [await asyncio.open_connection("127.0.0.1", port) for _ in range(80)]
        descriptors = f"/proc/{server.pid}/fd"
        # Every one of the 64 taken: with one still free (a loaded machine, the Wyoming side
        # not through its accepts yet), the page would rightly take it and answer at once.
        assert await settled(lambda: len(os.listdir(descriptors)) >= 64, within=5)
        page = asyncio.create_task(http_get(http_port))
        done, _ = await asyncio.wait({page}, timeout=1.5)
        assert not done, page.result()  # waiting, not refused or dropped
        for _reader, writer in wyoming:
            writer.close()
        answer = await asyncio.wait_for(page, 5)
        if answer.startswith(b"HTTP/1.1 503 "):
            # Its one place still taken as the descriptors come back (a loaded machine): told
            # to try again shortly, an answer too; and the next try is served.
            await asyncio.sleep(0.5)
            answer = await asyncio.wait_for(http_get(http_port), 5)
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_the_check_rate_is_a_few_at_once_then_one_every_twenty_seconds() -> None:
    now = [0.0]
    rate = CheckRate(clock=lambda: now[0])
    assert [rate.take() for _ in range(4)] == [0.0, 0.0, 0.0, 20.0]
    now[0] = 15.0
    assert rate.take() == pytest.approx(5.0)
    now[0] = 20.0
    assert rate.take() == 0.0 and rate.take() == pytest.approx(20.0)
    now[0] = 1000.0  # never more than the three at once, however long it rested
    assert [rate.take() for _ in range(4)] == [0.0, 0.0, 0.0, 20.0]


async def test_engine_checks_past_the_rate_are_answered_429_with_when(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    # Each check is an authenticated upstream session: a loop calling it must not become
    # hundreds of paid handshakes a second.
    page = await serve()
    answers = []
    for _ in range(5):
        async with http.post(
            f"{page.base}/api/check/bodhi", headers={"Origin": page.origin}
        ) as response:
            answers.append((response.status, response.headers, await response.json()))
    sessions = len(page.simulator.connections)
    assert [code for code, _headers, _body in answers] == [200, 200, 200, 429, 429]
    assert sessions == 3
    _code, headers, body = answers[3]
    wait = int(headers["Retry-After"])
    assert 15 <= wait <= 20
    assert body["error"] == (
        "Bodhi has been checked 3 times in a short while (3 at once, then one every 20 s): "
        f"try again in {wait} s"
    )


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9"])
async def test_a_page_of_another_site_is_refused_before_any_data(
    http: aiohttp.ClientSession, origin: str, serve: Serve
) -> None:
    # Browsers apply no CORS to WebSockets: without a check, any site open in the same
    # browser could read the live feed (transcripts, addresses, configuration).
    page = await serve()
    code, body = await page.check("bodhi", origin=origin)
    assert code == 403 and "Origin" in body["error"]
    for path in ("/api/live", "/api/microphone"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with http.ws_connect(page.base + path, headers={"Origin": origin}):
                pass
        assert refused.value.status == 403, path
    code, text = await page.get("/api/status", headers={"Origin": origin})
    assert code == 403 and "recent" not in text
    assert page.simulator.connections == []


async def test_a_program_that_sends_no_origin_may_read_and_act(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    # Every browser sends Origin with a WebSocket and a POST: a request without one is a
    # program (monitoring, curl, a script), which no other site can drive.
    page = await serve()
    code, body = await page.check("bodhi", origin=None)
    assert code == 200 and body["ok"] is True
    async with http.ws_connect(f"{page.base}/api/live") as live:
        assert (await live.receive_json(timeout=5))["type"] == "snapshot"
    assert (await page.get("/metrics"))[0] == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("evil.example", False),  # DNS rebinding: another site's name, this machine's address
        ("bodhi.lan.evil.example", False),
        ("bodhi.lan", True),  # named in http_hosts
        ("BODHI.LAN", True),
        ("127.0.0.1", True),  # an address cannot be rebound
        ("[::1]", True),
        ("localhost", True),
    ],
)
async def test_beyond_loopback_a_request_must_name_an_address_or_a_configured_host(
    http: aiohttp.ClientSession, serve: Serve, host: str, allowed: bool
) -> None:
    page = await serve(
        http_uri="tcp://0.0.0.0:0", http_allow=["127.0.0.1"], http_hosts=["bodhi.lan"]
    )
    named = f"{host}:{page.status.port}"
    # What a page served under that name sends: its own origin, as a same-origin page.
    page.origin = f"http://{named}"
    headers = {"Host": named}
    expected = 200 if allowed else 403
    for path in ("/", "/api/status", "/metrics"):
        code, text = await page.get(path, headers=headers)
        assert code == expected, (path, text)
    if not allowed:
        assert "http_hosts" in text and "--http-host" in text
    async with http.post(
        f"{page.base}/api/check/bodhi", headers={**headers, "Origin": page.origin}
    ) as response:
        assert response.status == expected
    live = http.ws_connect(f"{page.base}/api/live", headers={**headers, "Origin": page.origin})
    if allowed:
        async with live as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with live:
                pass
        assert refused.value.status == 403
        assert page.simulator.connections == []


async def test_any_host_when_the_operator_says_so(serve: Serve) -> None:
    # For a proxy that checks names itself (Home Assistant's ingress forwards whatever name
    # the browser used for Home Assistant); the Origin check still holds.
    page = await serve(http_uri="tcp://0.0.0.0:0", http_hosts=["*"])
    named = f"anything.example:{page.status.port}"
    assert (await page.get("/api/status", headers={"Host": named}))[0] == 200
    headers = {"Host": named, "Origin": "http://elsewhere.example"}
    assert (await page.get("/api/status", headers=headers))[0] == 403


async def test_behind_ingress_the_forwarded_host_is_the_pages_origin(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    # Home Assistant's ingress forwards the browser's Host and Origin, and adds
    # X-Forwarded-Host; the add-on's start script passes --http-host '*'.
    page = await serve(http_uri="tcp://0.0.0.0:0", http_hosts=["*"])
    for forwarded in ({"Host": "homeassistant.local:8123"}, {}):
        headers = {"Origin": "http://homeassistant.local:8123",
                   "X-Forwarded-Host": "homeassistant.local:8123", **forwarded}  # fmt: skip
        async with http.post(f"{page.base}/api/check/bodhi", headers=headers) as response:
            assert response.status == 200 and (await response.json())["ok"] is True


@pytest.mark.parametrize(
    ("where", "allow", "warned"),
    [("tcp://0.0.0.0:0", [], True), ("tcp://0.0.0.0:0", ["192.168.1.0/24"], False),
     ("tcp://127.0.0.1:0", [], False), ("tcp://:0", [], False)],
)  # fmt: skip
async def test_a_page_open_to_the_network_without_http_allow_is_warned_of(
    serve: Serve, caplog: pytest.LogCaptureFixture, where: str, allow: list[str], warned: bool
) -> None:
    # No login of its own: bound beyond loopback with nobody turned away, transcripts are
    # anyone's on the network, and the operator hears of it once at start.
    with caplog.at_level(logging.WARNING, logger="wyoming_bodhi.web.server"):
        await serve(http_uri=where, http_allow=allow, http_hosts=["*"])
    said = [r.getMessage() for r in caplog.records if "open to every peer" in r.getMessage()]
    assert len(said) == (1 if warned else 0), said
    if warned:
        assert "--http-allow" in said[0] and "0.0.0.0" in said[0]


async def test_http_allow_turns_others_away(serve: Serve) -> None:
    page = await serve(http_allow=["10.0.0.0/8"])
    for path in ("/", "/metrics", "/healthz", "/api/status"):
        assert (await page.get(path))[0] == 403


async def test_on_both_stacks_an_ipv4_peer_is_compared_as_ipv4(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    # Bound to [::], IPv4 peers arrive as ::ffff:127.0.0.1.
    page = await serve(http_uri="tcp://[::]:0", http_allow=["127.0.0.1"])
    assert (await page.get("/healthz"))[0] == 200
    async with http.get(f"http://[::1]:{page.status.port}/healthz") as response:
        assert response.status == 403


async def test_on_loopback_only_loopback_names_dns_rebinding(serve: Serve) -> None:
    page = await serve()
    assert (await page.get("/", headers={"Host": f"localhost:{page.status.port}"}))[0] == 200
    code, body = await page.get("/", headers={"Host": f"attacker.example:{page.status.port}"})
    assert code == 403 and "localhost" in body


async def test_no_secret_reaches_the_page_its_api_or_metrics(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    page = await serve(
        simulator={"texts": TEXTS},
        iapp_api_key=IAPP_KEY,
        iapp_url="ws://127.0.0.1:9",
        hass_url="http://127.0.0.1:9",
        hass_token=HASS_TOKEN,
    )
    await wyoming_request(page.running.port)
    await page.check("bodhi")
    seen = []
    async with http.ws_connect(f"{page.base}/api/live") as live:
        seen.append(await live.receive_str(timeout=5))
    for path in ("/", "/app.js", "/api/status", "/metrics", "/healthz"):
        seen.append((await page.get(path))[1])
    _code, check = await page.check("bodhi")
    seen.append(json.dumps(check))
    configuration = json.loads(seen[0])["configuration"]

    everything = "\n".join(seen)
    for secret in (API_KEY, CUSTOMER_ID, IAPP_KEY, HASS_TOKEN):
        assert secret not in everything
    assert configuration["api_key"] == "set" and configuration["iapp_api_key"] == "set"
    assert configuration["hass_token"] == "set" and configuration["customer_id"] == "set"
    # chunk_ms unset: the page says what each engine is sent instead of a blank.
    assert configuration["chunk_ms"] == "unset: 100 ms (Bodhi), 100 ms (iApp ASRx)"


async def test_the_page_and_its_files_are_served_with_a_strict_policy(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    page = await serve()
    sizes = {}
    for path, kind in [("/", "text/html"), ("/app.js", "text/javascript"),
                       ("/worklet.js", "text/javascript"), ("/style.css", "text/css")]:  # fmt: skip
        async with http.get(page.base + path) as response:
            assert response.status == 200 and response.content_type == kind
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            sizes[path] = len(await response.read())
    # Every URL the page uses is relative: it works under ingress's prefix.
    html = (await page.get("/"))[1]
    assert not re.search(r'(?:src|href)="/', html)
    assert sum(sizes.values()) < 40_000


async def test_a_port_without_a_host_is_this_machine_only(serve: Serve) -> None:
    page = await serve(http_uri="tcp://:0")
    assert page.status.host == "127.0.0.1"
    assert (await page.get("/healthz"))[0] == 200


# -- stopping within the Wyoming side's bound -------------------------------------------------


async def test_a_stop_closes_a_live_page_that_never_answers_the_close_within_half_a_second(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    # A page that stops reading never answers the close frame; aiohttp would wait 10 s for it
    # (its own shutdown bound, counted twice, made it 2 s): the stop would outlast the
    # Wyoming side's 1.75 s and push `docker stop` towards the kill.
    engine = await rig.simulator()
    running = await rig.bridge(engine.url, http_uri="tcp://127.0.0.1:0")
    status = StatusServer(running.bridge, lambda: running.server.connections)
    await status.start()
    base = f"http://127.0.0.1:{status.port}"
    async with (
        http.ws_connect(f"{base}/api/live") as deaf,
        http.ws_connect(f"{base}/api/live") as reading,
    ):
        await deaf.receive_json(timeout=5)
        await reading.receive_json(timeout=5)
        ending = asyncio.create_task(reading.receive(timeout=5))
        loop = asyncio.get_running_loop()
        begin = loop.time()
        await status.stop()
        stopped_after = loop.time() - begin
        ended = await ending

    assert ended.type == aiohttp.WSMsgType.CLOSE and ended.data == 1000  # it answered: clean
    assert browser_mic.CLOSE_TIMEOUT <= stopped_after < browser_mic.CLOSE_TIMEOUT + 0.5
    assert status.connections == 0


async def test_a_stop_cuts_off_a_scrape_whose_body_trickles_in(rig: Rig) -> None:
    # aiohttp answers a GET at once, then reads its body on for up to 10 s (its lingering
    # time) while bytes keep coming. The listener's stop does not wait for that.
    engine = await rig.simulator()
    running = await rig.bridge(engine.url, metrics_uri="tcp://127.0.0.1:0")
    listener = MetricsServer(
        running.bridge, Metrics.observing(running.bridge, lambda: running.server.connections)
    )
    await listener.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await asyncio.sleep(0.2)  # the client's pace, not synchronisation
                writer.write(b"x")
                await writer.drain()

    trickling = asyncio.create_task(trickle())
    try:
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
        loop = asyncio.get_running_loop()
        begin = loop.time()
        await listener.stop()
        stopped_after = loop.time() - begin
        # Its connection is closed: what is left of the answer, then the end.
        await asyncio.wait_for(reader.read(), 5)
    finally:
        trickling.cancel()
        writer.close()

    assert stopped_after < web_server.STOP_TIME + 0.25, stopped_after
    assert listener.connections == 0
