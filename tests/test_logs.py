"""Throttled warnings, with plain function calls and a clock of our own."""

from __future__ import annotations

import logging

import pytest

from wyoming_bodhi import logs
from wyoming_bodhi.logs import Throttled

LOGGER = logging.getLogger("wyoming_bodhi.test")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    return now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_kind_is_said_once_per_interval_with_how_many_were_left_out(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    throttled = Throttled(interval=10)
    for n in range(5):
        throttled.warning(LOGGER, "bad event %d", n)
    throttled.warning(LOGGER, "another kind")
    clock[0] += 10
    throttled.warning(LOGGER, "bad event %d", 5)
    assert lines(caplog) == [
        "bad event 0",
        "another kind",
        "bad event 5 (and 4 more like it in the last 10 s)",
    ]


def test_a_burst_lets_that_many_through_per_interval(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    throttled = Throttled(interval=10)
    for n in range(5):
        throttled.log(LOGGER, logging.INFO, "transcript %d", n, burst=3)
    clock[0] += 10
    throttled.log(LOGGER, logging.INFO, "transcript %d", 5, burst=3)
    assert lines(caplog) == [
        "transcript 0",
        "transcript 1",
        "transcript 2",
        "transcript 5 (and 2 more like it in the last 10 s)",
    ]


def test_a_key_keeps_kinds_of_one_message_apart(caplog: pytest.LogCaptureFixture) -> None:
    throttled = Throttled()
    for code in ("bodhi-401", "bodhi-503", "bodhi-401"):
        throttled.warning(LOGGER, "failed: %s", code, key=code)
    assert lines(caplog) == ["failed: bodhi-401", "failed: bodhi-503"]


def test_per_request_the_first_is_said_and_flush_says_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttled = Throttled(interval=None)
    assert throttled.warning(LOGGER, "repeated segment %s", 7)
    for n in range(1, 4):
        assert not throttled.warning(LOGGER, "repeated segment %s", 7 + n)
    assert throttled.left_out == 3
    throttled.flush()
    throttled.flush()
    assert lines(caplog) == [
        "repeated segment 7",
        "repeated segment 10 (the last of 3 like it left out of the log)",
    ]
    assert throttled.left_out == 0


def test_lines_are_attributed_to_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    Throttled().warning(LOGGER, "here")
    (record,) = caplog.records
    assert record.filename == "test_logs.py"
