"""The vendor's newer SDK (bodhi-api-sdk 1.3.1, the ``wss://stt.navana.ai`` platform) against
the simulator: API key only, no customer id.

It and the legacy ``bodhi-sdk`` (tests/test_sdk_conformance.py) both install a top-level
``bodhi`` package, so it has its own environment, ``.cache/bodhi-api-sdk``, which ``.ci/run``
makes before the tests (a test never downloads anything). The SDK runs there as a process,
``tests/api_sdk_client.py``, against a simulator served here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from wyoming_bodhi.simulators.bodhi import BodhiOptions, BodhiSimulator

from .harness import unavailable
from .test_sdk_conformance import RATE, TEXTS, write_wav

ROOT = Path(__file__).resolve().parent.parent
SDK_ENV = Path(os.environ.get("BODHI_API_SDK_ENV", ROOT / ".cache" / "bodhi-api-sdk"))
SDK_PYTHON = SDK_ENV / "bin" / "python"
CLIENT = Path(__file__).with_name("api_sdk_client.py")
SDK_TIMEOUT = 30.0
MODEL = "hi-general-v2-8khz"


def sdk_version() -> str | None:
    if not SDK_PYTHON.exists():
        return None
    found = subprocess.run(
        [SDK_PYTHON, "-c", "import bodhi; print(bodhi.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else None


@pytest.fixture(scope="module")
def sdk() -> Path:
    version = sdk_version()
    if version != "1.3.1":
        unavailable(
            "bodhi-api-sdk 1.3.1",
            f"{SDK_ENV} has {version or 'no bodhi-api-sdk'}; make it as .ci/run does: "
            f"python3 -m venv {SDK_ENV} && {SDK_ENV}/bin/pip install bodhi-api-sdk==1.3.1",
        )
    return SDK_PYTHON


async def run_sdk(
    python: Path, mode: str, url: str, wav: Path, *, api_key: str = "any-key", model: str = MODEL
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        python,
        CLIENT,
        mode,
        url,
        str(wav),
        model,
        api_key,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own environment only: nothing of ours on its path.
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), SDK_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    seen: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    return seen


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "two.wav"
    write_wav(path, tail=0.2)
    return path


@pytest.mark.parametrize("mode", ["file", "stream"])
async def test_api_sdk_transcribes_with_the_key_alone(sdk: Path, wav: Path, mode: str) -> None:
    async with BodhiSimulator(BodhiOptions(texts=TEXTS)) as sim:
        seen = await run_sdk(sdk, mode, sim.url, wav)
        (record,) = await sim.wait_for_connections(1)
        await asyncio.wait_for(record.closed.wait(), 5.0)

    assert seen["raised"] is None and seen["errors"] == [], seen
    responses = seen["transcripts"]
    assert [r["text"] for r in responses if r["type"] == "complete" and r["text"]] == TEXTS
    assert responses[-1]["eos"] is True and sum(r["eos"] for r in responses) == 1
    assert any(r["type"] == "partial" for r in responses)
    assert {r["call_id"] for r in responses} == {record.call_id}

    # The newer platform's handshake and config, as the simulator recorded them.
    assert record.auth_headers == ("x-api-key",)
    assert record.customer_id is None
    assert record.config is not None
    assert record.config["model"] == MODEL and record.config["sample_rate"] == RATE
    assert record.config["at_start_lid"] is False and record.config["transliterate"] is False
    if mode == "file":
        assert {f.size for f in record.frames[:-1]} == {320}  # its 20 ms frames
    else:
        assert {f.size for f in record.frames[:-1]} == {1600}  # our 100 ms sends
    assert record.eof_received and json.loads(record.eof_message or "") == {"eof": 1}
    assert record.ended == "eos"


async def test_api_sdk_with_wrong_key_is_refused_with_401(sdk: Path, wav: Path) -> None:
    async with BodhiSimulator(BodhiOptions(api_key="K")) as sim:
        seen = await run_sdk(sdk, "file", sim.url, wav, api_key="not-K")
        (record,) = await sim.wait_for_connections(1)

    assert seen["transcripts"] == []
    name, text = seen["raised"]
    assert name == "AuthenticationError" and json.loads(text)["code"] == 401
    assert (record.http_status, record.ended) == (401, "refused")


async def test_api_sdk_sees_unknown_model_error(sdk: Path, wav: Path) -> None:
    async with BodhiSimulator(BodhiOptions()) as sim:
        seen = await run_sdk(sdk, "file", sim.url, wav, model="zz-banking-v2-8khz")
        (record,) = await sim.wait_for_connections(1)
        await asyncio.wait_for(record.closed.wait(), 5.0)

    assert seen["transcripts"] == []
    api_errors = [text for name, text in seen["errors"] if name == "BodhiAPIError"]
    assert api_errors, seen
    body = json.loads(api_errors[0])
    assert body["error"] == "model 'zz-banking-v2-8khz' is not available"
    assert body["code"] == 400
    assert record.ended == "error"


async def test_legacy_platform_simulation_refuses_a_key_without_customer_id(
    sdk: Path, wav: Path
) -> None:
    """``--require-customer-id`` plays the legacy platform, which the newer SDK cannot use."""
    async with BodhiSimulator(BodhiOptions(require_customer_id=True)) as sim:
        seen = await run_sdk(sdk, "file", sim.url, wav)
        (record,) = await sim.wait_for_connections(1)

    assert seen["transcripts"] == []
    assert seen["raised"][0] == "AuthenticationError"
    assert (record.http_status, record.ended) == (401, "refused")
