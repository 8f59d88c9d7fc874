"""Engine phrases (here Bodhi's results, as phrases) → Wyoming transcript deltas."""

from __future__ import annotations

import tracemalloc

from wyoming_bodhi.engines.base import Phrase, PhraseKind
from wyoming_bodhi.engines.bodhi.protocol import BodhiResult, ResultType, phrases_of
from wyoming_bodhi.pipeline.transcript import TranscriptAssembler


def partial(segment: int, text: str) -> BodhiResult:
    return BodhiResult(ResultType.PARTIAL, text, segment_id=segment)


def complete(segment: int | None, text: str, eos: bool = False) -> BodhiResult:
    return BodhiResult(ResultType.COMPLETE, text, segment_id=segment, eos=eos)


def run(results: list[BodhiResult]) -> tuple[list[str], TranscriptAssembler]:
    assembler = TranscriptAssembler()
    phrases = [phrase for result in results for phrase in phrases_of(result)]
    chunks = [delta for phrase in phrases if (delta := assembler.feed(phrase)) is not None]
    return chunks, assembler


def test_partials_never_become_chunks_and_completes_are_deltas() -> None:
    chunks, assembler = run(
        [
            partial(0, ""),
            partial(0, "namaste"),
            partial(0, "namaste duniye"),  # revised below
            complete(0, "namaste  duniya "),
            partial(1, "batti"),
            complete(1, "batti jalao", eos=True),
        ]
    )
    assert chunks == ["namaste duniya", " batti jalao"]
    assert assembler.text == "namaste duniya batti jalao"
    assert "".join(chunks) == assembler.text
    assert assembler.ended


def test_separate_empty_eos_and_empty_segments_add_nothing() -> None:
    chunks, assembler = run(
        [complete(0, ""), complete(1, "rasoi ki batti jalao"), complete(2, "", eos=True)]
    )
    assert chunks == ["rasoi ki batti jalao"]
    assert assembler.text == "rasoi ki batti jalao"
    assert assembler.segment_count == 1


def test_duplicate_complete_is_ignored() -> None:
    chunks, assembler = run([complete(0, "ek"), complete(0, "ek do")])
    assert chunks == ["ek"]
    assert assembler.text == "ek"


def test_missing_segment_ids_still_assemble() -> None:
    chunks, assembler = run([complete(None, "ek"), complete(None, "do")])
    assert "".join(chunks) == assembler.text == "ek do"


def test_language_code_is_kept() -> None:
    assembler = TranscriptAssembler()
    assembler.feed(Phrase(PhraseKind.PARTIAL, "x", segment=0, language="ta"))
    assert assembler.language_code == "ta"


def test_partials_under_ever_new_segment_ids_are_not_all_kept() -> None:
    """An engine that sends each partial under a new id, none completed: what the assembler
    holds stays bounded (it remembers a few open segments' last partials, not all)."""
    assembler = TranscriptAssembler()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for segment in range(200):
            assembler.feed(Phrase(PhraseKind.PARTIAL, f"{segment} " + "a" * 256 * 1024, segment))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 8 * 1024 * 1024, f"{held / 1e6:.0f} MB held"
    assert assembler.text == ""
