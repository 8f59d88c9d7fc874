"""The status page in a real browser (headless Chromium via Selenium): it loads and goes
live, a Wyoming request appears within a second, the engine check says a wrong key is wrong
in words, the microphone test runs end to end from Chromium's fake capture device, all of it
again under a Home Assistant ingress prefix, and the phone layout fits the screen."""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wyoming.client import AsyncTcpClient

from . import browser, signals
from .harness import (
    API_KEY,
    RunningBridge,
    running_bridge,
    running_simulator,
    running_status_page,
    transcribe,
    unavailable,
)

TEXTS = ["batti jalao", "pankha chalao"]
INGRESS_TOKEN = "Ab3xYz-ingress-token"
WAIT = 15.0
HTTP = web.AppKey("http", aiohttp.ClientSession)


@pytest.fixture(autouse=True)
def _browser_runs_here() -> None:
    found = browser.tools()
    if isinstance(found, str):
        unavailable("a real browser", found)


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    """Two spoken-like commands, for the browser's fake microphone."""
    path = tmp_path / "speech.wav"
    rate = 48000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            signals.encode(signals.utterances(rate, count=2, burst=0.8, gap=0.8, edge=0.5))
            + bytes(2 * rate * 2)
        )
    return path


def wait_for(condition: Callable[[], Any], timeout: float = WAIT, what: str = "") -> Any:
    """Poll a page condition (Selenium calls block; run via asyncio.to_thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def click(driver: Any, selector: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, selector).click()


@contextlib.asynccontextmanager
async def ingress_proxy(target: str) -> AsyncIterator[str]:
    """Home Assistant's ingress, as far as the page can tell: the add-on's pages under
    ``/api/hassio_ingress/<token>/``, WebSockets included, with the headers Home Assistant
    and the Supervisor add (X-Ingress-Path, X-Forwarded-Host/-For/-Proto) and the browser's
    own, which they pass on (Host, Origin)."""
    prefix = f"/api/hassio_ingress/{INGRESS_TOKEN}"

    def forwarded(request: web.Request) -> dict[str, str]:
        skip = {"content-length", "transfer-encoding", "accept-encoding"}
        skip |= {
            name.lower() for name in request.headers if name.lower().startswith("sec-websocket")
        }
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        headers |= {"X-Ingress-Path": prefix, "X-Forwarded-Host": request.host,
                    "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http"}  # fmt: skip
        return headers

    async def proxy(request: web.Request) -> web.StreamResponse:
        url = f"{target}/{request.match_info['path']}"
        http = request.app[HTTP]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            async with http.ws_connect(url, headers=forwarded(request)) as upstream:
                downstream = web.WebSocketResponse()
                await downstream.prepare(request)

                async def pipe(source: Any, sink: Any) -> None:
                    async for message in source:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            await sink.send_str(message.data)
                        elif message.type == aiohttp.WSMsgType.BINARY:
                            await sink.send_bytes(message.data)
                    await sink.close()

                await asyncio.wait(
                    [
                        asyncio.create_task(pipe(downstream, upstream)),
                        asyncio.create_task(pipe(upstream, downstream)),
                    ],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                return downstream
        async with http.request(
            request.method, url, headers=forwarded(request), data=await request.read()
        ) as upstream:
            body = await upstream.read()
            return web.Response(
                status=upstream.status, body=body, content_type=upstream.content_type
            )

    app = web.Application()
    app.router.add_route("*", prefix + "/{path:.*}", proxy)
    async with aiohttp.ClientSession() as http:
        app[HTTP] = http
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}{prefix}/"
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def served(**settings: Any) -> AsyncIterator[tuple[RunningBridge, str, Any]]:
    """A simulator, the bridge and its status page: (bridge, page URL, simulator)."""
    async with (
        running_simulator(texts=TEXTS, api_key=API_KEY) as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0", **settings) as running,
        running_status_page(running) as status,
    ):
        yield running, f"http://127.0.0.1:{status.port}/", simulator


@contextlib.contextmanager
def opened(url: str, **options: Any) -> Iterator[Any]:
    with browser.chromium(**options) as driver:
        driver.get(url)
        wait_for(lambda: text_of(driver, "live") == "live", what="the live badge")
        yield driver


async def wyoming_request(port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        speech = signals.encode(signals.utterances(16000, count=2, burst=0.5, gap=0.6))
        exchange = await transcribe(client, speech)
    assert exchange.transcript == " ".join(TEXTS)


async def test_the_page_loads_goes_live_and_shows_a_request_within_a_second() -> None:
    async with served() as (running, url, _simulator):
        loop = asyncio.get_running_loop()

        def watch() -> tuple[str, float, str, str, list[Any], str]:
            with opened(url) as driver:
                engines = text_of(driver, "engines")
                # A voice command, from a Wyoming client, while the page is open.
                asyncio.run_coroutine_threadsafe(wyoming_request(running.port), loop).result(30)
                finished = time.monotonic()
                wait_for(lambda: "batti jalao pankha chalao" in text_of(driver, "recent"), 5.0)
                shown_after = time.monotonic() - finished
                severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
                return (engines, shown_after, text_of(driver, "recent"),
                        text_of(driver, "results"), severe, driver.page_source)  # fmt: skip

        engines, shown_after, recent, results, severe, source = await asyncio.to_thread(watch)
    assert "Bodhi" in engines and "21 model(s)" in engines and "api key …" in engines
    assert API_KEY not in source
    assert shown_after < 1.0
    assert "127.0.0.1:" in recent and "hi · hi-general-v2-8khz" in recent
    assert "transcript: 1" in results
    assert severe == [], severe


async def test_the_engine_check_reports_a_wrong_key_in_words() -> None:
    async with (
        running_simulator(api_key="the-right-key-000") as simulator,
        running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
        running_status_page(running) as status,
    ):

        def check() -> str:
            with opened(f"http://127.0.0.1:{status.port}/") as driver:
                click(driver, "button[data-engine=bodhi]")
                return str(
                    wait_for(
                        lambda: (t := text_of(driver, "check-bodhi")) != "Checking…" and t,
                        what="the check's answer",
                    )
                )

        said = await asyncio.to_thread(check)
    assert said.startswith("Bodhi refused the connection:")
    assert "401" in said and "API key" in said


def run_microphone_test(driver: Any, language: str = "hi") -> tuple[list[str], str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "mic-language")).select_by_value(language)
    click(driver, "#mic-start")
    wait_for(lambda: text_of(driver, "mic-phrases").count("\n") >= 1, what="two phrases")
    click(driver, "#mic-stop")
    transcript = wait_for(lambda: text_of(driver, "mic-transcript"), what="the transcript")
    return text_of(driver, "mic-phrases").splitlines(), str(transcript)


async def test_the_microphone_test_runs_end_to_end_from_chromiums_fake_device(
    speech_wav: Path,
) -> None:
    async with served() as (_running, url, simulator):

        def speak() -> tuple[list[str], str, str, str]:
            with opened(url, microphone=speech_wav) as driver:
                phrases, transcript = run_microphone_test(driver, "ta")
                state = text_of(driver, "mic-state")
                recent = wait_for(lambda: "browser" in (t := text_of(driver, "recent")) and t)
                return phrases, transcript, state, recent

        phrases, transcript, state, recent = await asyncio.to_thread(speak)
        (record,) = simulator.connections

    assert phrases == TEXTS
    assert transcript == "batti jalao pankha chalao"
    assert state == "Done: the transcript is below."
    assert "browser" in recent and "ta · ta-general-v2-8khz" in recent
    # The browser's audio took the same road as a Wyoming request's: Bodhi's 8 kHz frames.
    assert record.config is not None and record.config["model"] == "ta-general-v2-8khz"
    assert {frame.size for frame in record.frames[:-1]} == {1600}


async def test_under_home_assistants_ingress_prefix(speech_wav: Path) -> None:
    # As the add-on serves it (docker/run-addon.sh): to the proxy only, under whatever name
    # the browser knows Home Assistant by.
    async with (
        served(http_hosts=["*"], http_allow=["127.0.0.1"]) as (_running, url, _sim),
        ingress_proxy(url.rstrip("/")) as ingress,
    ):
        ingress = ingress.replace("127.0.0.1", "homeassistant.local")
        # Home Assistant over HTTPS, as a microphone needs.
        secure = [ingress.split("/api/")[0]]

        def through_ingress() -> tuple[str, tuple[list[str], str]]:
            names = ["homeassistant.local"]
            with opened(ingress, microphone=speech_wav, names=names, secure=secure) as driver:
                click(driver, "button[data-engine=bodhi]")
                checked = wait_for(
                    lambda: (t := text_of(driver, "check-bodhi")) != "Checking…" and t
                )
                return str(checked), run_microphone_test(driver)

        checked, (phrases, transcript) = await asyncio.to_thread(through_ingress)
    assert checked.startswith("Bodhi accepted the credentials")
    assert phrases == TEXTS and transcript == "batti jalao pankha chalao"


async def test_a_page_of_another_site_reads_nothing_and_opens_no_session() -> None:
    async with served() as (_running, url, simulator), browser.another_site() as evil_port:

        def from_evil() -> tuple[dict[str, Any], int, dict[str, Any]]:
            with browser.chromium(names=["evil.example"]) as driver:
                driver.get(f"http://evil.example:{evil_port}/")
                seen = browser.attack(driver, url)
                # Every attempt has had its answer (the script waited for each).
                sessions = len(simulator.connections)
                # The same script on the page's own origin reads it all: the attack works.
                driver.get(url)
                return seen, sessions, browser.attack(driver, url)

        seen, sessions, control = await asyncio.to_thread(from_evil)
    assert browser.read_nothing(seen) == [], seen
    assert not seen["live"]["opened"] and not seen["microphone"]["opened"]
    assert sessions == 0
    assert control["live"]["messages"][0].startswith('{"type": "snapshot"')
    assert control["check"]["status"] == 200 and len(simulator.connections) > 0


async def test_a_dns_rebinding_page_reads_nothing_and_opens_no_session() -> None:
    # The page is bound beyond loopback (every interface, reachable only from this machine
    # here); evil.example resolves to this machine, so that page's requests are same-origin.
    async with (
        running_simulator(texts=TEXTS, api_key=API_KEY) as simulator,
        running_bridge(
            simulator.url, http_uri="tcp://0.0.0.0:0", http_allow=["127.0.0.1"]
        ) as running,
        running_status_page(running) as status,
    ):
        rebound = f"http://evil.example:{status.port}/"

        def from_rebound() -> tuple[str, dict[str, Any]]:
            with browser.chromium(names=["evil.example"]) as driver:
                driver.get(rebound)
                return str(driver.page_source), browser.attack(driver, rebound)

        page, seen = await asyncio.to_thread(from_rebound)
        assert simulator.connections == []
    assert "http_hosts" in page and "Bodhi" not in page
    assert browser.read_nothing(seen) == [], seen
    assert seen["check"]["status"] == 403 and seen["status"]["status"] == 403
    assert not seen["live"]["opened"] and not seen["microphone"]["opened"]


async def test_on_a_phone_the_page_fits_the_screen() -> None:
    async with served() as (running, url, _simulator):
        await wyoming_request(running.port)

        def measure() -> tuple[int, int]:
            with opened(url, phone=True) as driver:
                wait_for(lambda: "batti" in text_of(driver, "recent"))
                return (
                    int(driver.execute_script("return document.documentElement.scrollWidth")),
                    int(driver.execute_script("return window.innerWidth")),
                )

        scroll_width, width = await asyncio.to_thread(measure)
    assert width == browser.PHONE["width"]
    assert scroll_width <= width
