"""iApp ASRx messages → phrases, with plain function calls."""

from __future__ import annotations

import json

import pytest

from wyoming_bodhi.engines.base import PROTOCOL, REJECTED, EngineError, Phrase, PhraseKind
from wyoming_bodhi.engines.iapp.errors import refused
from wyoming_bodhi.engines.iapp.protocol import END_MESSAGE, IappDecoder
from wyoming_bodhi.pipeline.transcript import TranscriptAssembler

P, C, E = PhraseKind.PARTIAL, PhraseKind.COMPLETE, PhraseKind.END


def message(state: str | None, text: str) -> str:
    data = {"type": "realtime", "text": text}
    if state is not None:
        data["state"] = state
    return json.dumps(data, ensure_ascii=False)


def feed_all(messages: list[str]) -> list[Phrase]:
    decoder = IappDecoder()
    return [phrase for text in messages for phrase in decoder.feed(text)]


def test_the_end_message_is_the_sample_clients() -> None:
    assert json.loads(END_MESSAGE) == {"data": {"status": "CloseConnection"}}


@pytest.mark.parametrize("new_sentence", ["NewSentence", "New sentence"])
@pytest.mark.parametrize("end", ["end_of_process", "Confirm Close Connection"])
def test_a_new_sentence_completes_the_one_before_and_the_end_the_last(
    new_sentence: str, end: str
) -> None:
    phrases = feed_all([
        message("Sentence", "สวัสดี"),
        message("Sentence", "สวัสดีครับ"),
        message(new_sentence, "เปิด"),
        message("Sentence", "เปิดไฟ"),
        message(None, end),
    ])  # fmt: skip
    assert [(p.kind, p.text, p.segment) for p in phrases] == [
        (P, "สวัสดี", 0),
        (P, "สวัสดีครับ", 0),
        (C, "สวัสดีครับ", 0),
        (P, "เปิด", 1),
        (P, "เปิดไฟ", 1),
        (C, "เปิดไฟ", 1),
        (E, "", None),
    ]
    # And through the assembler: completed sentences are deltas, joined by spaces.
    assembler = TranscriptAssembler()
    deltas = [delta for p in phrases if (delta := assembler.feed(p)) is not None]
    assert deltas == ["สวัสดีครับ", " เปิดไฟ"]
    assert assembler.ended


def test_a_first_message_that_starts_a_new_sentence_starts_the_first() -> None:
    phrases = feed_all([message("NewSentence", "หนึ่ง"), message(None, "end_of_process")])
    assert [(p.kind, p.text, p.segment) for p in phrases] == [
        (P, "หนึ่ง", 0), (C, "หนึ่ง", 0), (E, "", None),
    ]  # fmt: skip


def test_a_server_close_after_the_end_finishes_and_only_once() -> None:
    decoder = IappDecoder()
    decoder.feed(message("Sentence", "ไฟ"))
    assert [p.kind for p in decoder.finish()] == [C, E]
    assert decoder.finish() == []
    assert decoder.ended


def test_no_speech_is_just_the_end() -> None:
    assert [p.kind for p in feed_all([message(None, "end_of_process")])] == [E]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "realtime"}', "no text"),
        (message("Mystery", "x"), "unknown state 'Mystery'"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_garbage_is_a_protocol_error_to_skip(text: str, reason: str) -> None:
    with pytest.raises(EngineError) as info:
        IappDecoder().feed(text)
    assert info.value.kind == PROTOCOL and info.value.code == "iapp-protocol"
    assert reason in str(info.value)


def test_an_error_the_server_sends_is_fatal_and_named() -> None:
    with pytest.raises(EngineError) as info:
        IappDecoder().feed('{"error": "quota exceeded", "code": 429}')
    assert (info.value.kind, info.value.code) == (REJECTED, "iapp-429")
    assert "quota exceeded" in str(info.value)
    with pytest.raises(EngineError) as info:
        IappDecoder().feed('{"error": true, "message": "bad audio"}')
    assert info.value.code == "iapp-error" and not info.value.retryable


@pytest.mark.parametrize(
    ("status", "code", "retryable", "words"),
    [
        (401, "iapp-401", False, "check IAPP_API_KEY"),
        (403, "iapp-403", False, "no access to ASRx"),
        (429, "iapp-429", True, "too many requests"),
        (500, "iapp-500", True, "internal error"),
        (503, "iapp-503", True, "unavailable"),
        (418, "iapp-error", False, "HTTP 418"),
        (502, "iapp-error", True, "HTTP 502"),
    ],
)
def test_refusals_map_to_codes_and_say_what_to_do(
    status: int, code: str, retryable: bool, words: str
) -> None:
    error = refused(status)
    assert (error.code, error.retryable) == (code, retryable)
    assert words in error.message


@pytest.mark.parametrize(
    "code",
    ["7" * 4000, '"\u00b2"', "418", "1000", "-1", '"' + "9" * 5000 + '"'],
)
def test_an_in_socket_code_from_outside_folds_into_a_known_code(code: str) -> None:
    with pytest.raises(EngineError) as info:
        IappDecoder().feed('{"error": "trouble", "code": ' + code + "}")
    assert info.value.code == "iapp-error"
    assert info.value.kind == REJECTED
    assert len(info.value.message) < 300 and "trouble" in info.value.message


def test_a_known_in_socket_code_keeps_its_meaning() -> None:
    for code in ("429", '"503"'):
        with pytest.raises(EngineError) as info:
            IappDecoder().feed('{"error": "later", "code": ' + code + "}")
        assert info.value.code in ("iapp-429", "iapp-503") and info.value.retryable
