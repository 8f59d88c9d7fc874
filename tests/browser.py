"""A real browser for tests: Debian's Chromium and chromedriver through Selenium, headless,
its microphone a WAV file (Chromium's fake capture device).

Nothing is downloaded: the driver and the browser are the system's (``.ci/run`` installs
``chromium`` and ``chromium-driver``), named explicitly so that Selenium Manager never looks
for its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
PHONE = {"width": 390, "height": 844, "pixelRatio": 2.0}


def tools() -> tuple[str, str] | str:
    """(browser, driver) paths, or what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    missing = [
        name for name, path in (("chromium", browser), ("chromium-driver", driver)) if not path
    ]
    if missing:
        return f"apt-get install {' '.join(missing)}"
    assert browser is not None and driver is not None
    return browser, driver


@contextmanager
def chromium(
    *,
    microphone: Path | None = None,
    phone: bool = False,
    size: tuple[int, int] = (1280, 1000),
    names: Sequence[str] = (),
    secure: Sequence[str] = (),
) -> Iterator[Any]:
    """A headless Chromium; ``microphone`` a WAV file its fake capture device plays (once);
    ``names`` host names it resolves to 127.0.0.1 (another site, or one rebound to us);
    ``secure`` plain-HTTP origins it trusts as if HTTPS (the microphone needs that)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = tools()
    assert not isinstance(found, str), found
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--use-fake-ui-for-media-stream",  # grants the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    if names:
        rules = ", ".join(f"MAP {name} 127.0.0.1" for name in names)
        options.add_argument(f"--host-resolver-rules={rules}")
    if secure:
        options.add_argument(f"--unsafely-treat-insecure-origin-as-secure={','.join(secure)}")
    if microphone is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={microphone}%noloop")
    if phone:
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Selenium Manager must not go looking for drivers or browsers on the internet.
    os.environ.setdefault("SE_OFFLINE", "true")
    service = Service(executable_path=driver)
    session = webdriver.Chrome(service=service, options=options)
    try:
        yield session
    finally:
        session.quit()


# What a page of another site tries, run in that page: the live feed, the microphone, the
# engine check (readable, and blind), and the status; whatever it could read, it returns.
ATTACK = """
const base = arguments[0], done = arguments[arguments.length - 1];
function tryWebSocket(path, onOpen) {
  return new Promise((resolve) => {
    const seen = { opened: false, messages: [], lengths: [] };
    const ws = new WebSocket(base.replace(/^http/, "ws") + path);
    ws.onopen = () => { seen.opened = true; if (onOpen) onOpen(ws); };
    ws.onmessage = (m) => {
      seen.messages.push(String(m.data).slice(0, 300));
      seen.lengths.push(String(m.data).length);
    };
    ws.onclose = () => resolve(seen);
    setTimeout(() => { ws.close(); resolve(seen); }, 3000);
  });
}
async function tryFetch(path, init) {
  try {
    const response = await fetch(base + path, init);
    const body = await response.text();
    return { status: response.status, body: body.slice(0, 300), length: body.length };
  } catch (error) {
    return { error: String(error) };
  }
}
(async () => {
  const speech = new Int16Array(8000).fill(3000);
  const start = JSON.stringify({ language: "hi", model: null, rate: 16000 });
  done({
    live: await tryWebSocket("api/live"),
    microphone: await tryWebSocket("api/microphone", (ws) => {
      ws.send(start); ws.send(speech.buffer); ws.send(JSON.stringify({ type: "stop" }));
    }),
    check: await tryFetch("api/check/bodhi", { method: "POST" }),
    blind_check: await tryFetch("api/check/bodhi", { method: "POST", mode: "no-cors" }),
    status: await tryFetch("api/status"),
  });
})();
"""


def attack(driver: Any, target: str) -> dict[str, Any]:
    driver.set_script_timeout(30)
    return dict(driver.execute_async_script(ATTACK, target))


def _read(seen: dict[str, Any]) -> list[tuple[str, int]]:
    """(The start of, the length of) each thing the page got to read, refusals left out."""
    read = [
        (text, length)
        for name in ("live", "microphone")
        for text, length in zip(seen[name]["messages"], seen[name]["lengths"], strict=True)
    ]
    read += [(seen[n].get("body", ""), seen[n].get("length", 0)) for n in FETCHES]
    return [(text, length) for text, length in read if text and not _refusal(text)]


def _refusal(text: str) -> bool:
    return "Origin does not match" in text or "http_hosts" in text


FETCHES = ("check", "blind_check", "status")


def read_nothing(seen: dict[str, Any]) -> list[str]:
    """What of the server's data the attacking page got to read (nothing, or a refusal)."""
    return [text for text, _length in _read(seen)]


def characters_read(seen: dict[str, Any]) -> int:
    """How much of the server's data the attacking page got to read, in characters."""
    return sum(length for _text, length in _read(seen))


@contextlib.asynccontextmanager
async def another_site() -> AsyncIterator[int]:
    """A site of its own on a loopback port (the browser knows it as evil.example)."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>another site</title>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
