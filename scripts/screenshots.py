"""Draw docs/status-page.png and docs/status-page-phone.png: the status page after a few
requests (a transcript, an unsupported audio format) and a microphone test, in headless
Chromium, at desktop and phone width. Everything runs on 127.0.0.1 with the simulators.

    .venv/bin/python -m scripts.screenshots   # needs chromium, chromium-driver, fonts-lohit-deva
"""

from __future__ import annotations

import asyncio
import tempfile
import wave
from pathlib import Path

from wyoming.asr import Transcribe
from wyoming.client import AsyncTcpClient

from tests import browser, signals
from tests.harness import running_bridge, running_simulator, running_status_page, transcribe
from tests.test_browser import run_microphone_test, text_of, wait_for

DOCS = Path(__file__).resolve().parent.parent / "docs"
TEXTS = ["बत्ती जलाओ", "पंखा चलाओ"]


def speech_wav(folder: Path) -> Path:
    path = folder / "speech.wav"
    rate = 48000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        audio = signals.utterances(rate, count=2, burst=0.8, gap=0.8, edge=0.5)
        out.writeframes(signals.encode(audio) + bytes(2 * rate * 2))
    return path


async def requests(port: int) -> None:
    speech = signals.encode(signals.utterances(16000, count=2, burst=0.5, gap=0.6))
    for rate in (16000, 4000):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await transcribe(client, speech, rate=rate, request=Transcribe(language="hi"))


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        microphone = speech_wav(Path(tmp))
        async with (
            running_simulator(texts=TEXTS) as simulator,
            running_bridge(simulator.url, http_uri="tcp://127.0.0.1:0") as running,
            running_status_page(running) as status,
        ):
            await requests(running.port)
            url = f"http://127.0.0.1:{status.port}/"

            def shoot() -> None:
                with browser.chromium(microphone=microphone, size=(1280, 1700)) as driver:
                    driver.get(url)
                    wait_for(lambda: text_of(driver, "live") == "live")
                    driver.find_element("css selector", "button[data-engine=bodhi]").click()
                    wait_for(lambda: "accepted" in text_of(driver, "check-bodhi"))
                    run_microphone_test(driver, "hi")
                    driver.save_screenshot(str(DOCS / "status-page.png"))
                with browser.chromium(phone=True, size=(390, 1400)) as driver:
                    driver.get(url)
                    wait_for(lambda: "browser" in text_of(driver, "recent"))
                    driver.save_screenshot(str(DOCS / "status-page-phone.png"))

            await asyncio.to_thread(shoot)
    print(f"wrote {DOCS / 'status-page.png'} and {DOCS / 'status-page-phone.png'}")


if __name__ == "__main__":
    asyncio.run(main())
