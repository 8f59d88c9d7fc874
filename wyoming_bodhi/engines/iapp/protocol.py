"""iApp ASRx's streaming protocol as plain data: messages in, phrases out, no sockets.

What iApp documents (docs/protocol.md, "iApp ASRx"), and what its own sample
client does:

- no config message; raw 16 kHz mono s16le PCM as binary frames;
- results ``{"type": "realtime", "state": "Sentence" | "NewSentence", "text": ...}``: each is
  the current sentence's text so far, sent while speech is heard. ``NewSentence`` (also
  spelled "New sentence") starts a new sentence, and so completes the one before it;
- the end of the audio: ``{"data": {"status": "CloseConnection"}}``, as the sample client
  sends it (the prose speaks of a status of "end of stream");
- the end of the results: ``{"type": "realtime", "text": "end_of_process"}`` in the prose,
  a message whose ``text`` is ``Confirm Close Connection`` in what the sample clients wait
  for. Either, or the server closing the socket after the end was sent, ends the session,
  and completes the last sentence; then the client closes.

Undocumented, and so handled leniently: the error schema (any JSON object with an
``error`` is taken as one), the idle timeout, and anything else the server may send (skipped).
"""

from __future__ import annotations

import json
from typing import Any, Final

from ...text import printable, quoted, valid_unicode
from ..base import (
    PROTOCOL,
    REJECTED,
    EngineError,
    Phrase,
    PhraseKind,
    retryable_code,
    status_code,
)
from .errors import iapp_code, iapp_error

END_MESSAGE: Final = json.dumps({"data": {"status": "CloseConnection"}})
"""Sent as a text frame once the last audio frame has gone."""

SAMPLE_RATE: Final = 16000

END_TEXTS: Final = frozenset({"end_of_process", "Confirm Close Connection"})
SENTENCE: Final = "Sentence"
NEW_SENTENCE: Final = frozenset({"NewSentence", "New sentence"})


def protocol_error(reason: str, text: str) -> EngineError:
    return iapp_error(
        PROTOCOL,
        f"unexpected message from iApp ({reason}, {len(text)} characters): {quoted(text, 120)}",
    )


class IappDecoder:
    """One session's results → phrases. Sentences are numbered from 0 as segments."""

    def __init__(self) -> None:
        self._sentence = 0
        self._text = ""
        self._open = False
        self.ended = False

    def feed(self, text: str) -> list[Phrase]:
        """Phrases for one text message. Raises :class:`EngineError`: of kind ``protocol``
        for a message that means nothing (the caller skips it), ``rejected`` for an error
        the server reports."""
        try:
            data: Any = json.loads(text)
        except (ValueError, RecursionError):
            raise protocol_error("not JSON", text) from None
        if not isinstance(data, dict):
            raise protocol_error("not a JSON object", text)
        if data.get("error"):
            said = data.get("message") or data["error"]
            detail = printable(said) if isinstance(said, str) else quoted(said, 200)
            status = status_code(data.get("code", data.get("status")))
            code = iapp_code(status)
            shown = f" (code {status})" if code == "iapp-error" and status is not None else ""
            raise iapp_error(
                REJECTED,
                f"iApp ASRx rejected the request{shown}: {detail}",
                code=code,
                retryable=retryable_code(status),
            )
        result = data.get("text")
        if not isinstance(result, str):
            raise protocol_error("no text", text)
        result = valid_unicode(result)
        if result in END_TEXTS:
            return self.finish()
        state = data.get("state")
        phrases: list[Phrase] = []
        if state in NEW_SENTENCE:
            if self._open:
                phrases += self._complete()
                self._sentence += 1
        elif state != SENTENCE:
            raise protocol_error(f"unknown state {quoted(state, 40)}", text)
        self._open = True
        self._text = result
        if result.strip():
            phrases.append(Phrase(PhraseKind.PARTIAL, result, self._sentence))
        return phrases

    def finish(self) -> list[Phrase]:
        """The end: the last sentence is complete, and nothing follows."""
        if self.ended:
            return []
        self.ended = True
        return [*self._complete(), Phrase(PhraseKind.END)]

    def _complete(self) -> list[Phrase]:
        if not self._open:
            return []
        text, self._text, self._open = self._text, "", False
        return [Phrase(PhraseKind.COMPLETE, text, self._sentence)]
