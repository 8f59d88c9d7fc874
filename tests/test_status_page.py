"""The HTTP side, over real sockets: /healthz, /readyz, /metrics after requests of every
outcome, the metrics listener alone, the page's API and live updates, the microphone socket
through the real pipeline, who may do what, and that no secret ever reaches any of it.
(tests/test_browser.py drives the page itself in Chromium.)"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.client import AsyncTcpClient

from wyoming_bodhi import __version__
from wyoming_bodhi.pipeline.activity import RequestRecord
from wyoming_bodhi.web.server import MetricsServer, StatusServer

from . import signals
from .harness import (
    API_KEY,
    CUSTOMER_ID,
    running_bridge,
    running_metrics_listener,
    running_simulator,
    running_status_page,
    transcribe,
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


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


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


async def test_healthz_is_ok_while_serving_and_503_once_stopping(
    http: aiohttp.ClientSession,
) -> None:
    # The page's /healthz is what balancers were pointed at before /readyz: it turns 503 at
    # the first moment of a stop (the drain), not only once requests are refused.
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        code, body = await page.get("/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        assert (await page.get("/readyz"))[0] == 200
        running.bridge.draining = True
        code, body = await page.get("/healthz")
        assert code == 503 and json.loads(body) == {"status": "stopping"}
        code, body = await page.get("/readyz")
        assert code == 503 and json.loads(body)["status"] == "draining"
        running.bridge.shutting_down = True
        code, body = await page.get("/healthz")
        assert code == 503 and json.loads(body) == {"status": "stopping"}


async def test_the_metrics_listener_serves_health_readiness_and_metrics_and_nothing_else(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, metrics_uri="tcp://127.0.0.1:0", max_sessions=7) as running,
        running_metrics_listener(running) as listener,
    ):
        probes = Page(listener, http)
        exchange = await wyoming_request(running.port)
        assert exchange.transcript == "batti jalao pankha chalao"
        alive, ready = await probes.get("/healthz"), await probes.get("/readyz")
        code, text = await probes.get("/metrics")
        # Nothing that costs money or shows a transcript: not the page, its API, the check
        # or the microphone.
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
    http: aiohttp.ClientSession,
) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, metrics_uri="tcp://127.0.0.1:0") as running,
        running_metrics_listener(running) as listener,
    ):
        probes = Page(listener, http)
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


async def test_at_max_sessions_still_ready(http: aiohttp.ClientSession) -> None:
    # At capacity one more request is answered `busy` at once; a balancer that took every
    # full replica out would leave clients with no answer at all.
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, metrics_uri="tcp://127.0.0.1:0", max_sessions=1) as running,
        running_metrics_listener(running) as listener,
        AsyncTcpClient("127.0.0.1", running.port) as holder,
    ):
        probes = Page(listener, http)
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


async def test_codes_an_engine_invents_fold_into_one_label(http: aiohttp.ClientSession) -> None:
    # Label values (and the page's counts) from a closed set: a new code per request, or a
    # code 4,000 characters long, must not become a new series each.
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        activity = running.bridge.activity
        for code in range(1000, 1400):
            activity.request_done(failed_request(f"bodhi-{code}"))
            activity.handshake_failed("bodhi", f"bodhi-{code}")
        activity.request_done(failed_request("bodhi-" + "9" * 4000))
        activity.request_done(failed_request("no-such-code"))
        activity.request_done(failed_request("bodhi-401"))
        page = Page(status, http)
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


async def test_metrics_after_requests_of_every_outcome(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator(texts=TEXTS, api_key="K" * 16) as wrong_key,
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0", max_sessions=1) as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        # Two transcripts.
        for _ in range(2):
            exchange = await wyoming_request(running.port)
            assert exchange.transcript == "batti jalao pankha chalao"
        # An unknown model.
        exchange = await wyoming_request(running.port, request=Transcribe(name="no-such-model"))
        assert exchange.error.data["code"] == "unknown-model"
        # Busy: one request holds the only session while another asks.
        async with AsyncTcpClient("127.0.0.1", running.port) as holder:
            slow = asyncio.create_task(transcribe(holder, SPEECH, realtime=True))
            await asyncio.sleep(0.3)
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
    assert metric(text, "wyoming_bodhi_requests_total", result="unknown-model") == 1
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


async def test_a_request_is_on_the_live_feed_within_a_second(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        async with http.ws_connect(f"{page.base}/api/live") as live:
            snapshot = await live.receive_json(timeout=5)
            assert snapshot["type"] == "snapshot" and snapshot["recent"] == []
            assert [engine["name"] for engine in snapshot["engines"]] == ["bodhi"]
            await wyoming_request(running.port)
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


async def test_the_microphone_socket_runs_the_real_pipeline(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
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
        (record,) = simulator.connections

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


async def test_a_page_that_leaves_mid_test_closes_the_engine_session(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        async with page.microphone() as ws:
            await ws.send_json({"language": "hi", "model": None, "rate": 16000})
            await ws.receive_json(timeout=5)
            await ws.send_bytes(SPEECH[:16000])
            (record,) = await simulator.wait_for_connections(1)
        await asyncio.wait_for(record.closed.wait(), 2.0)
        assert running.bridge.active_utterances == 0


@pytest.mark.parametrize(
    ("start", "error"),
    [
        ("not json", "the first message must be JSON"),
        ('["a"]', "the first message must be a JSON object"),
        ('{"rate": 4000}', "rate must be a whole number of Hz from 8000 to 48000"),
        ('{"rate": 16000, "language": 7}', "language must be a short string or null"),
    ],
)
async def test_a_bad_start_message_is_refused(
    http: aiohttp.ClientSession, start: str, error: str
) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        async with Page(status, http).microphone() as ws:
            await ws.send_str(start)
            assert await ws.receive_json(timeout=5) == {
                "type": "error",
                "code": "protocol",
                "text": error,
            }
        assert simulator.connections == []


async def test_the_microphone_counts_against_max_sessions(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0", max_sessions=1) as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        async with page.microphone() as first, page.microphone() as second:
            await first.send_json({"language": "hi", "model": None, "rate": 16000})
            assert (await first.receive_json(timeout=5))["type"] == "started"
            await second.send_json({"language": "hi", "model": None, "rate": 16000})
            refused = await second.receive_json(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "busy"


async def test_the_engine_check_says_what_happened(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator(api_key="another-key-0000") as wrong_key,
        running_simulator(api_key=API_KEY) as simulator,
        running_bridge(wrong_key.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        code, refused = await page.check("bodhi")
        assert code == 200
        running.bridge.engines[0].url = simulator.url  # type: ignore[misc]
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


@pytest.mark.parametrize("origin", [None, "http://evil.example", "null"])
async def test_actions_only_from_the_pages_own_origin(
    http: aiohttp.ClientSession, origin: str | None
) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        code, body = await page.check("bodhi", origin=origin)
        assert code == 403 and "Origin" in body["error"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with page.microphone(origin=origin):
                pass
        assert refused.value.status == 403
        # Reading is for anyone who may connect: a monitoring system sends no Origin.
        assert (await page.get("/metrics"))[0] == 200
        assert simulator.connections == []


async def test_behind_ingress_the_forwarded_host_is_the_pages_origin(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://0.0.0.0:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        headers = {"Origin": "http://homeassistant.local:8123",
                   "X-Forwarded-Host": "homeassistant.local:8123"}  # fmt: skip
        async with http.post(f"{page.base}/api/check/bodhi", headers=headers) as response:
            assert response.status == 200 and (await response.json())["ok"] is True


async def test_http_allow_turns_others_away(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(
            simulator.url, http_uri="tcp://127.0.0.1:0", http_allow=["10.0.0.0/8"]
        ) as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        for path in ("/", "/metrics", "/healthz", "/api/status"):
            assert (await page.get(path))[0] == 403


async def test_on_loopback_only_loopback_names_dns_rebinding(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        assert (await page.get("/", headers={"Host": f"localhost:{status.port}"}))[0] == 200
        code, body = await page.get("/", headers={"Host": f"attacker.example:{status.port}"})
        assert code == 403 and "localhost" in body


async def test_no_secret_reaches_the_page_its_api_or_metrics(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator(texts=TEXTS) as simulator,
        running_bridge(
            simulator.url,
            http_uri="tcp://127.0.0.1:0",
            iapp_api_key=IAPP_KEY,
            iapp_url=simulator.url,
            hass_url="http://127.0.0.1:9",
            hass_token=HASS_TOKEN,
        ) as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
        await wyoming_request(running.port)
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
    http: aiohttp.ClientSession,
) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):
        page = Page(status, http)
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


async def test_a_port_without_a_host_is_this_machine_only(http: aiohttp.ClientSession) -> None:
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url, http_uri="tcp://:0") as running,
        running_status_page(running) as status,
    ):
        assert status.host == "127.0.0.1"
        assert (await Page(status, http).get("/healthz"))[0] == 200
