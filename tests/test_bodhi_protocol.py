"""Bodhi messages: serialisation, tolerant parsing, garbage rejected, error mapping."""

from __future__ import annotations

import json
import uuid

import pytest

from wyoming_bodhi.engines.bodhi import errors
from wyoming_bodhi.engines.bodhi.protocol import (
    EOF_MESSAGE,
    BodhiConfig,
    BodhiErrorMessage,
    BodhiResult,
    Hotword,
    ResultType,
    parse_message,
)

FULL_RESULT = {
    "call_id": "5c1e4b1e-4a0e-4f0e-9d2b-2f6a1f3f9a11",
    "segment_id": 0,
    "eos": False,
    "type": "partial",
    "text": "नमस्ते",
    "segment_meta": {
        "tokens": ["नमस्ते"],
        "timestamps": [0.42],
        "start_time": 1.3,
        "confidence": 0.91,
        "words": [{"word": "नमस्ते", "confidence": 0.9}],
    },
}


def test_config_minimal_leaves_optional_fields_out() -> None:
    config = BodhiConfig(model="hi-general-v2-8khz")
    message = json.loads(config.message())
    assert set(message) == {"config"}
    assert message["config"] == {
        "model": "hi-general-v2-8khz",
        "transaction_id": config.transaction_id,
        "sample_rate": 8000,
    }
    uuid.UUID(config.transaction_id)


def test_config_every_field() -> None:
    config = BodhiConfig(
        model="ta-banking-v2-8khz",
        transaction_id="8d7c0d9e-8a43-4f43-9d0c-3d2a2d6a7b10",
        sample_rate=8000,
        parse_number=True,
        hotwords=(Hotword("batti"), Hotword("rasoi", 2.5)),
        exclude_partial=True,
        aux=True,
        endpoint_silence_duration=0.8,
        at_start_lid=True,
        transliterate=False,
    )
    assert json.loads(config.message())["config"] == {
        "model": "ta-banking-v2-8khz",
        "transaction_id": "8d7c0d9e-8a43-4f43-9d0c-3d2a2d6a7b10",
        "sample_rate": 8000,
        "parse_number": True,
        # A missing score is omitted, never sent as null.
        "hotwords": [{"phrase": "batti"}, {"phrase": "rasoi", "score": 2.5}],
        "exclude_partial": True,
        "aux": True,
        "endpoint_silence_duration": 0.8,
        "at_start_lid": True,
        "transliterate": False,
    }


def test_each_config_gets_a_fresh_transaction_id() -> None:
    assert BodhiConfig(model="m").transaction_id != BodhiConfig(model="m").transaction_id


def test_eof_message() -> None:
    assert json.loads(EOF_MESSAGE) == {"eof": 1}


def test_parse_full_result() -> None:
    result = parse_message(json.dumps(FULL_RESULT, ensure_ascii=False))
    assert isinstance(result, BodhiResult)
    assert result.type is ResultType.PARTIAL
    assert not result.is_complete
    assert result.text == "नमस्ते"
    assert result.segment_id == 0
    assert result.call_id == FULL_RESULT["call_id"]
    meta = result.segment_meta
    assert meta.tokens == ("नमस्ते",)
    assert meta.timestamps == (0.42,)
    assert meta.start_time == 1.3
    assert meta.confidence == 0.91
    assert meta.words[0].word == "नमस्ते"
    assert meta.words[0].confidence == 0.9


def test_parse_accepts_bytes_unknown_keys_and_missing_optionals() -> None:
    result = parse_message(
        json.dumps(
            {"type": "complete", "text": "batti jalao", "eos": True, "future_key": [1, 2]}
        ).encode()
    )
    assert isinstance(result, BodhiResult)
    assert result.is_complete and result.eos
    assert result.segment_id is None
    assert result.segment_meta.tokens == ()
    assert result.language_code is None


def test_parse_segment_id_as_string_and_nullable_confidence() -> None:
    data = {**FULL_RESULT, "segment_id": "7", "segment_meta": {"confidence": None}}
    result = parse_message(json.dumps(data))
    assert isinstance(result, BodhiResult)
    assert result.segment_id == 7
    assert result.segment_meta.confidence is None
    named = parse_message(json.dumps({**FULL_RESULT, "segment_id": "seg-a"}))
    assert isinstance(named, BodhiResult) and named.segment_id == "seg-a"


def test_parse_optional_language_code_and_aux_info() -> None:
    data = {
        **FULL_RESULT,
        "language_code": "ta",
        "aux_info": {"request_time": 0.1, "eot_wait_time": 0.4, "processed_audio_duration": 2},
    }
    result = parse_message(json.dumps(data))
    assert isinstance(result, BodhiResult)
    assert result.language_code == "ta"
    assert result.aux_info is not None and result.aux_info["eot_wait_time"] == 0.4


def test_parse_final_message_forms() -> None:
    # (a) the last complete carries eos and text; (b) a separate empty eos message.
    last = parse_message(json.dumps({**FULL_RESULT, "type": "complete", "eos": True}))
    separate = parse_message(
        json.dumps({**FULL_RESULT, "type": "complete", "text": "", "eos": True})
    )
    bare = parse_message('{"eos": true}')
    for result in (last, separate, bare):
        assert isinstance(result, BodhiResult) and result.eos and result.is_complete
    assert isinstance(bare, BodhiResult) and bare.text == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"hello"', "not a JSON object"),
        ('{"type": "interim", "text": "x"}', "unknown result type"),
        ('{"type": "partial"}', "result without text"),
        ('{"type": "partial", "text": 5}', "result without text"),
        ("{}", "unknown result type"),
    ],
)
def test_parse_rejects_garbage_clearly(text: str, reason: str) -> None:
    with pytest.raises(errors.BodhiProtocolError, match=reason):
        parse_message(text)


def test_parse_error_message() -> None:
    message = parse_message(
        '{"error": "model \'zz-banking-v2-8khz\' is not available", "code": 400,'
        ' "message": "bad config", "timestamp": "2025-01-01T00:00:00Z"}'
    )
    assert isinstance(message, BodhiErrorMessage)
    assert message.code == 400
    exc = message.to_exception()
    assert isinstance(exc, errors.BodhiBadRequestError)
    assert exc.code == "bodhi-400"
    assert "zz-banking-v2-8khz' is not available" in exc.message
    assert not exc.retryable


def test_in_socket_error_codes_map_to_types() -> None:
    assert isinstance(
        BodhiErrorMessage("internal error", 500).to_exception(), errors.BodhiServerError
    )
    as_string = parse_message('{"error": "bad key", "code": "401"}')
    assert isinstance(as_string, BodhiErrorMessage)
    assert isinstance(as_string.to_exception(), errors.BodhiAuthenticationError)
    unknown = BodhiErrorMessage("teapot", 418).to_exception()
    assert unknown.code == "bodhi-error" and "teapot" in unknown.message
    assert "code 418" in unknown.message


@pytest.mark.parametrize(
    ("status", "error_type", "code", "retryable", "hint"),
    [
        (
            401,
            errors.BodhiAuthenticationError,
            "bodhi-401",
            False,
            "BODHI_API_KEY and BODHI_CUSTOMER_ID",
        ),
        (402, errors.BodhiInsufficientBalanceError, "bodhi-402", False, "balance"),
        (403, errors.BodhiInactiveCustomerError, "bodhi-403", False, "deactivated"),
        (500, errors.BodhiServerError, "bodhi-500", True, "internal error"),
        (503, errors.BodhiUnavailableError, "bodhi-503", True, "unavailable"),
        (404, errors.BodhiHandshakeError, "bodhi-error", False, "HTTP 404"),
        (502, errors.BodhiHandshakeError, "bodhi-error", True, "HTTP 502"),
    ],
)
def test_handshake_status_mapping(
    status: int, error_type: type[errors.BodhiError], code: str, retryable: bool, hint: str
) -> None:
    error = errors.error_for_status(status)
    assert type(error) is error_type
    assert error.code == code
    assert error.retryable is retryable
    assert hint in str(error)


def test_connection_errors_carry_codes() -> None:
    assert errors.BodhiConnectionLostError("code 1006").code == "bodhi-connection-lost"
    assert "closed before the transcript was complete" in str(errors.BodhiConnectionLostError())
    assert errors.BodhiTimeoutError("slow").retryable
    assert errors.BodhiConnectionError("refused").retryable
    assert not errors.BodhiTLSError("bad cert").retryable


# -- codes from outside: a closed set, parsed strictly ------------------------------------------

BODHI_CODES = {
    "bodhi-400", "bodhi-401", "bodhi-402", "bodhi-403", "bodhi-500", "bodhi-503",
    "bodhi-error",
}  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [
        pytest.param('"\u00b2"', id="superscript two"),
        pytest.param('"\uff14\uff10\uff11"', id="fullwidth digits"),
        pytest.param('"' + "7" * 5000 + '"', id="5000 digits as a string"),
        pytest.param("7" * 4000, id="4000 digits"),
        pytest.param("-401", id="negative"),
        pytest.param("401.5", id="a fraction"),
        pytest.param("1000", id="a close code"),
        pytest.param("418", id="an undocumented status"),
        pytest.param('"401 "', id="padded"),
    ],
)
def test_an_in_socket_code_from_outside_never_crashes_and_folds_into_a_known_code(
    code: str,
) -> None:
    message = parse_message('{"error": "trouble", "code": ' + code + "}")
    assert isinstance(message, BodhiErrorMessage)
    error = message.to_exception()
    assert error.code in BODHI_CODES
    assert len(error.message) < 300 and "trouble" in error.message


def test_an_unknown_in_socket_code_is_kept_in_the_message_and_not_called_a_refusal() -> None:
    error = parse_message('{"error": "going away", "code": 1000}')
    assert isinstance(error, BodhiErrorMessage)
    exc = error.to_exception()
    assert exc.code == "bodhi-error"
    # The session had been accepted: nothing refused a connection, and 1000 is no HTTP status.
    assert "refused" not in exc.message and "HTTP" not in exc.message
    assert "code 1000" in exc.message and "going away" in exc.message


@pytest.mark.parametrize("code", ["401", 401, " 402"])
def test_a_known_in_socket_code_as_digits_keeps_its_meaning(code: object) -> None:
    message = parse_message(json.dumps({"error": "no", "code": code}))
    assert isinstance(message, BodhiErrorMessage)
    assert message.to_exception().code in ("bodhi-401", "bodhi-402")


@pytest.mark.parametrize("segment_id", ["\u00b2", "9" * 5000, "\u0664\u0662"])
def test_a_segment_id_of_odd_digits_is_an_id_not_a_crash(segment_id: str) -> None:
    result = parse_message('{"type": "complete", "text": "x", "segment_id": "' + segment_id + '"}')
    assert isinstance(result, BodhiResult)
    assert result.segment_id is not None
