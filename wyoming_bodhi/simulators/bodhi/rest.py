"""Bodhi's non-streaming API, sans I/O: a request's form checked as Bodhi would, the whole
file segmented at once, and the reply.

The API's shape (docs/protocol.md) comes from public material outside the vendor
documents we hold and has not been checked against the live service. Where that material
is silent, the simulator keeps to what the streaming API documents, strictly, so a client
tested against it sends what Bodhi is surest to take:

- ``model`` and ``transaction_id`` as in a streaming config (the same 400 messages);
- ``parse_number`` and ``aux`` optional, ``true`` or ``false`` (also ``1``/``0``);
- ``hotwords`` optional, a JSON string of the streaming config's list of
  ``{"phrase": str, "score"?: number}``;
- ``audio_file`` a WAV file of the streaming API's audio: 16-bit PCM, mono, at 8000 Hz or
  more (a guess: what the real service decodes is unknown).

Each problem is a 400 ``{"status": "error", "error": "Bad Request", "message": ...}``; a
success is ``{"text": ..., "call_id": ..., "status": "success"}``, the text of every phrase
the energy segmenter finds, scripted or default as in a streaming session, joined by spaces.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from ...engines.bodhi.catalog import Catalog
from ...wav import WavError, WavHeader, read_header
from ..messages import Message
from ..options import SimulatorOptions
from ..segmenter import EnergySegmenter, SegmentComplete
from .session import MIN_SAMPLE_RATE, hotwords_problem, request_problem, segment_text

AUDIO_FIELD: Final = "audio_file"
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}


def failure(status: int, message: str) -> Message:
    """The body of a failure reply: ``error`` names the status, ``message`` says why."""
    return {"status": "error", "error": HTTPStatus(status).phrase, "message": message}


@dataclass(frozen=True, slots=True)
class Audio:
    """An uploaded WAV file that passed: its header and its samples."""

    header: WavHeader
    pcm: bytes


def read_wav(data: bytes) -> WavHeader:
    """The file's WAV header; :class:`WavError` if it is not a WAV file."""
    return read_header(io.BytesIO(data).read)


def _audio(data: bytes | None) -> Audio | str:
    """The file's audio, or what is wrong with it."""
    if data is None:
        return f"{AUDIO_FIELD} is required: a WAV file"
    try:
        header = read_wav(data)
    except WavError as err:
        return f"{AUDIO_FIELD} is not a WAV file Bodhi can read: {err}"
    fmt = header.format
    if fmt.encoding != "int" or fmt.bits != 16 or fmt.channels != 1:
        return f"{AUDIO_FIELD} must be 16-bit PCM mono, not {fmt.describe()}"
    if fmt.rate < MIN_SAMPLE_RATE:
        return f"sample rate must be at least {MIN_SAMPLE_RATE}, not {fmt.rate}"
    end = len(data) if header.data_size is None else header.data_offset + header.data_size
    pcm = data[header.data_offset : end]
    return Audio(header, pcm[: len(pcm) - len(pcm) % fmt.frame_bytes])


def _form_problem(form: Mapping[str, str], catalog: Catalog) -> str | None:
    problem = request_problem(form, catalog)
    if problem:
        return problem
    for name in ("parse_number", "aux"):
        if name in form and form[name].strip().lower() not in _BOOLEANS:
            return f"{name} must be true or false"
    if "hotwords" in form:
        try:
            hotwords = json.loads(form["hotwords"])
        except (ValueError, RecursionError):
            hotwords = "not JSON"
        return hotwords_problem(hotwords)
    return None


def transcribe(
    form: Mapping[str, str],
    audio_file: bytes | None,
    options: SimulatorOptions,
    catalog: Catalog,
    call_id: str,
) -> tuple[int, Message, Audio | None]:
    """The reply to one request (HTTP status and body), and its audio if the file passed."""
    problem = _form_problem(form, catalog)
    if problem:
        return 400, failure(400, problem), None
    audio = _audio(audio_file)
    if isinstance(audio, str):
        return 400, failure(400, audio), None
    segmenter = EnergySegmenter(audio.header.format.rate, threshold_dbfs=options.threshold_dbfs)
    events = [*segmenter.feed(audio.pcm), *segmenter.finish()]
    text = " ".join(
        segment_text(options, event.index) for event in events if isinstance(event, SegmentComplete)
    )
    return 200, {"text": text, "call_id": call_id, "status": "success"}, audio


__all__ = ["AUDIO_FIELD", "Audio", "failure", "read_wav", "transcribe"]
