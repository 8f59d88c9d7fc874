"""The clients' sans-I/O parts: the speech detector, the level meter and the status line."""

from __future__ import annotations

import io

import numpy as np
import pytest

from wyoming_bodhi.clients.console import StatusLine, display_width, say, tail_to_width
from wyoming_bodhi.clients.speech import Activity, SpeechDetector, meter

RATE = 16000


def noise(seconds: float, dbfs: float, seed: int = 1) -> bytes:
    """White noise at an RMS level."""
    rng = np.random.default_rng(seed)
    samples = rng.standard_normal(round(RATE * seconds)) * 32768 * 10 ** (dbfs / 20)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def timeline(
    detector: SpeechDetector, audio: bytes, step: int = 640
) -> list[tuple[float, Activity]]:
    """(seconds of audio fed, activity) for each change."""
    seen = []
    for start in range(0, len(audio), step):
        for activity in detector.feed(audio[start : start + step]):
            seen.append((round(detector.seconds, 3), activity))
    return seen


def test_speech_starts_above_the_room_and_ends_after_the_quiet_asked_for() -> None:
    room = noise(1.0, -60)
    audio = room + noise(1.0, -25, seed=2) + noise(2.0, -60, seed=3)
    detector = SpeechDetector(RATE, end_after=0.8)
    seen = timeline(detector, audio)
    assert [activity for _, activity in seen] == [Activity.SPEECH_STARTED, Activity.SPEECH_ENDED]
    (started, _), (ended, _) = seen
    # 60 ms of loud audio starts speech; 0.8 s of quiet after it ends the command. Time is
    # the audio's: the same however fast it is fed.
    assert started == pytest.approx(1.06, abs=0.021)
    assert ended == pytest.approx(2.0 + 0.8, abs=0.021)
    assert detector.heard_speech and not detector.in_speech


def test_the_same_whatever_the_chunking() -> None:
    audio = noise(0.5, -60) + noise(0.7, -20, seed=2) + noise(1.5, -60, seed=3)
    expected = [Activity.SPEECH_STARTED, Activity.SPEECH_ENDED]
    assert SpeechDetector(RATE, end_after=0.5).feed(audio) == expected
    chunks = timeline(SpeechDetector(RATE, end_after=0.5), audio, step=640)
    odd = timeline(SpeechDetector(RATE, end_after=0.5), audio, step=37)
    assert [activity for _, activity in chunks] == [activity for _, activity in odd] == expected
    # Found at the same sample: the times differ only by where the feeds happened to end.
    for (at_chunks, _), (at_odd, _) in zip(chunks, odd, strict=True):
        assert abs(at_chunks - at_odd) < 0.021


def test_a_click_is_not_speech_and_no_end_is_found_without_one_asked() -> None:
    click = noise(0.02, -10, seed=2)
    detector = SpeechDetector(RATE, end_after=None)
    assert timeline(detector, noise(1.0, -60) + click + noise(1.0, -60)) == []
    seen = timeline(detector, noise(0.5, -20, seed=4) + noise(3.0, -60, seed=5))
    assert [a for _, a in seen] == [Activity.SPEECH_STARTED]  # never ended: the server ends it


def test_a_quiet_room_needs_real_speech_and_a_noisy_one_is_learnt() -> None:
    # Digital silence has no floor: the quietest speech is still -55 dBFS.
    detector = SpeechDetector(RATE, end_after=0.5)
    assert timeline(detector, bytes(RATE * 2) + noise(0.5, -70, seed=2)) == []
    # A fan switched on is speech at first, but the floor catches up within seconds.
    fan = SpeechDetector(RATE, end_after=0.5)
    seen = timeline(fan, noise(1.0, -65) + noise(20.0, -35, seed=2))
    assert [a for _, a in seen] == [Activity.SPEECH_STARTED, Activity.SPEECH_ENDED]
    assert seen[1][0] < 1.0 + 15.0
    assert fan.floor_dbfs is not None and fan.floor_dbfs > -48


def test_meter() -> None:
    assert meter(-96.0) == "▕" + " " * 10 + "▏"
    assert meter(0.0) == "▕" + "█" * 10 + "▏"
    assert meter(-30.0) == "▕█████     ▏"
    assert len(meter(-41.3)) == 12


def test_display_width_of_indic_and_thai_text() -> None:
    assert display_width("batti") == 5
    assert display_width("बत्ती") == 4  # the virama takes no column
    assert display_width("ไม่") == 2  # nor does the tone mark
    assert display_width("漢字") == 4


def test_tail_to_width_keeps_the_newest_words_and_whole_clusters() -> None:
    assert tail_to_width("batti jalao", 20) == "batti jalao"
    assert tail_to_width("batti jalao abhi", 10) == "…alao abhi"
    cut = tail_to_width("बत्ती जलाओ", 4)
    assert cut.startswith("…") and display_width(cut) <= 4
    assert display_width(cut[1]) > 0  # never a combining mark with nothing to sit on


def test_status_line_draws_only_on_a_terminal() -> None:
    piped = io.StringIO()
    line = StatusLine(piped)
    line.show("… batti")
    line.message("batti jalao")
    line.clear()
    assert piped.getvalue() == "batti jalao\n"

    screen = io.StringIO()
    live = StatusLine(screen, live=True)
    live.show("… batti jalao abhi")
    live.show("… batti\njalao")  # a newline never breaks the line
    live.message("batti jalao")
    live.clear()
    text = screen.getvalue()
    assert text.startswith("\r… batti jalao abhi")
    assert "\r… batti jalao     \r… batti jalao" in text
    assert "batti jalao\n" in text and text.endswith("\r")


class WriteCalls(io.StringIO):
    """A stream that remembers each write() call: each is one write(2) on a real pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_a_line_is_one_write_so_a_server_logging_to_the_same_terminal_cannot_split_it() -> None:
    # Seen in the README's Try it (server and client in one terminal): a server log line
    # landed between a streamed phrase and its newline.
    stream = WriteCalls()
    say(stream, "… simulated transcript segment 2 from the Bodhi simulator")
    say(stream, "बत्ती\x1b[31m")
    assert stream.calls == [
        "… simulated transcript segment 2 from the Bodhi simulator\n",
        "बत्ती\\x1b[31m\n",
    ]


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.mark.parametrize("control", list(BIDI))
def test_bidirectional_controls_are_shown_escaped_not_obeyed(control: str) -> None:
    # U+202E would show "lanigiro" for "original" on the terminal: a transcript that reads
    # backwards, or a path that is not what it looks.
    stream = io.StringIO()
    say(stream, f"abc{control}def")
    assert stream.getvalue() == f"abc\\u{ord(control):04x}def\n"


def test_joiners_that_indian_scripts_need_are_kept() -> None:
    # ZWNJ and ZWJ choose between conjunct forms in Devanagari, Malayalam and others.
    stream = io.StringIO()
    say(stream, "क्\u200dष क्\u200cष")
    assert stream.getvalue() == "क्\u200dष क्\u200cष\n"
