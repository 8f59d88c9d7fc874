"""Step 2, the wire: Acme's streaming protocol as plain data (text in, phrases out).

A made-up protocol, kept small on purpose, which neither Bodhi nor iApp speaks:

- the key in the handshake's ``Authorization: Key <key>`` header;
- 16 kHz mono s16le PCM in binary frames; ``{"type": "end"}`` when the audio has ended;
- ``{"type": "partial" | "final", "phrase": N, "text": ...}`` back, then ``{"type": "done"}``;
- ``{"type": "error", "status": N, "message": ...}`` for a request it refuses.
"""

from __future__ import annotations

import json
from typing import Any, Final

from wyoming_bodhi.engines.base import Phrase, PhraseKind, quoted, status_code
from wyoming_bodhi.engines.errors import ErrorTable

SAMPLE_RATE: Final = 16000
END_MESSAGE: Final = json.dumps({"type": "end"})
KEY_HINT: Final = "check ACME_API_KEY"

# Step 3: its errors, one table.
ERRORS: Final = ErrorTable(
    engine="acme",
    title="Acme",
    url_flag="--acme-url",
    refusals={
        401: f"Acme rejected the API key (401): {KEY_HINT}",
        429: "Acme refused the request: too many requests (429)",
        503: "Acme is unavailable (503); try again shortly",
    },
    reports={400: "Acme rejected the request"},
)


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Key {api_key}"}


class AcmeDecoder:
    """One session's messages → phrases."""

    def __init__(self) -> None:
        self.ended = False

    def feed(self, text: str) -> list[Phrase]:
        """Raises the engine's error: ``protocol`` for a message that means nothing (the
        session skips it), ``rejected`` for an error the server reports."""
        try:
            data: Any = json.loads(text)
        except ValueError:
            raise ERRORS.protocol(
                f"Acme sent something that is not JSON: {quoted(text, 80)}"
            ) from None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "error":
            status = status_code(data.get("status"))
            raise ERRORS.rejected(f"Acme rejected the request: {data.get('message')}", status)
        if kind == "done":
            self.ended = True
            return [Phrase(PhraseKind.END)]
        if kind in ("partial", "final") and isinstance(data.get("text"), str):
            phrase_kind = PhraseKind.PARTIAL if kind == "partial" else PhraseKind.COMPLETE
            return [Phrase(phrase_kind, data["text"], data.get("phrase"))]
        raise ERRORS.protocol(f"Acme sent a message of no known type: {quoted(text, 80)}")
