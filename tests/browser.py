"""A real browser for tests: Debian's Chromium and chromedriver through Selenium, headless,
its microphone a WAV file (Chromium's fake capture device).

Nothing is downloaded: the driver and the browser are the system's (``.ci/run`` installs
``chromium`` and ``chromium-driver``), named explicitly so that Selenium Manager never looks
for its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
