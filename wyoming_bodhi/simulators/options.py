"""Every behaviour of a simulator, as one frozen value (the CLIs map flags onto it).

Most knobs mean the same for every vendor; those marked *Bodhi* or *iApp* concern one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .segmenter import DEFAULT_THRESHOLD_DBFS

FinalForm = Literal["last-complete", "separate"]
FINAL_FORMS: tuple[FinalForm, ...] = ("last-complete", "separate")

EndForm = Literal["end_of_process", "confirm", "close"]
END_FORMS: tuple[EndForm, ...] = ("end_of_process", "confirm", "close")

# The handshake statuses Bodhi documents, and those an iApp server may answer.
REFUSAL_STATUSES = frozenset({401, 402, 403, 429, 500, 503})

DEFAULT_IDLE_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """How a simulator behaves. All fault knobs default to off."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; read it back from ``BodhiSimulator.port``."""

    tls_cert: str | None = None
    """Serve wss:// with this PEM certificate chain."""
    tls_key: str | None = None
    """Its PEM private key (None: the key is in ``tls_cert``)."""

    # --- authentication (checked before the WebSocket upgrade) ---
    api_key: str | None = field(default=None, repr=False)
    """If set, only this key is accepted; otherwise any non-empty key is."""
    require_customer_id: bool = False
    """Legacy platform: a missing ``x-customer-id`` is refused with 401."""

    # --- models ---
    extra_models: Sequence[str] = ()
    """Model names accepted on top of the catalogue's built-ins."""

    # --- results ---
    texts: Sequence[str] = ()
    """Segment texts in order, per connection; the default phrase once exhausted."""
    confidences: Sequence[float | None] = ()
    """Per-segment confidence, in order (then the language's usual: 0.9, or null)."""
    partials: bool = True
    """Send partial results (a client can still turn them off with ``exclude_partial``)."""
    revise: bool = False
    """One partial per segment shows a wrong last word that a later result corrects."""
    empty_partials: bool = False
    """The first partial of each segment has empty text, as the real service sometimes does."""
    final: FinalForm = "last-complete"
    """*Bodhi*: ``last-complete``: the last complete carries eos when a segment is open at
    eof; ``separate``: an empty eos message always follows the last complete."""
    end_form: EndForm = "end_of_process"
    """*iApp*: how the end of the results is said: ``end_of_process`` (the documentation's
    prose), ``confirm`` (a ``Confirm Close Connection`` text, which the sample clients wait
    for), or ``close`` (the server just closes)."""
    new_sentence: str = "NewSentence"
    """*iApp*: the state that starts a new sentence (the documentation also spells it "New
    sentence")."""
    seconds_per_word: float = 0.25
    """Partials reveal one more word per this much speech."""
    threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS
    """A 10 ms window is speech when its RMS exceeds this."""

    # --- handshake behaviour ---
    refuse_status: int | None = None
    """Refuse handshakes with this HTTP status (401, 402, 403, 500 or 503)."""
    refuse_count: int | None = None
    """Refuse only the first N handshakes; None refuses them all."""
    handshake_delay: float = 0.0
    """Seconds to wait before answering the upgrade request."""

    # --- connection behaviour and faults ---
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Close the connection after this long with no client message (pings do not count)."""
    silent_after_eof: bool = False
    """Never answer eof; keep the socket open until the client goes."""
    drop_after_frames: int | None = None
    """Drop the TCP connection, without a close frame, on the Nth audio frame."""
    error_after_frames: int | None = None
    """Send an in-socket 500 error, then close, on the Nth audio frame."""
    echo_credentials: bool = False
    """On the first audio frame, send an in-socket error quoting the credentials the
    handshake carried, as a careless server might (they must reach no log, client or page)."""
    malformed_results: bool = False
    """Send a non-JSON text frame and a JSON message of unknown shape before the first result."""
    raw_before_results: Sequence[str] = ()
    """Text frames sent exactly as given before the first result (hostile-server tests)."""
    raw_repeat: int = 1
    """How many times ``raw_before_results`` is sent (a flood, without a huge option value)."""
    leave_open_after_error: bool = False
    """After an in-socket error message, keep the socket open and unread (the client's close
    frame goes unanswered) until ``idle_timeout``, instead of closing it."""
    eos_delay: float = 0.0
    """Processing time between eof and the final results."""
    record_audio: bool = False
    """Keep every received audio byte in ``ConnectionRecord.audio`` (off: benchmarks and
    soaks would otherwise hold all their audio)."""
    close_timeout: float = 2.0
    """How long a server-side close waits for the client's close frame."""
    history: int = 1000
    """Connection records kept (the oldest go first), so a long-running simulator (the
    demo) holds bounded memory."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidences", tuple(self.confidences))
        for name in ("texts", "extra_models", "raw_before_results"):
            value = getattr(self, name)
            # A bare string is a sequence of characters: almost certainly a mistake.
            if isinstance(value, str) or any(not isinstance(item, str) for item in value):
                raise ValueError(f"{name} must be a sequence of strings")
            # Tuples keep the value immutable even when lists were passed in.
            object.__setattr__(self, name, tuple(value))
        if self.final not in FINAL_FORMS:
            raise ValueError(f"final must be one of {FINAL_FORMS}, got {self.final!r}")
        if self.end_form not in END_FORMS:
            raise ValueError(f"end_form must be one of {END_FORMS}, got {self.end_form!r}")
        if self.refuse_status is not None and self.refuse_status not in REFUSAL_STATUSES:
            raise ValueError(
                f"refuse_status must be one of {sorted(REFUSAL_STATUSES)}, got {self.refuse_status}"
            )
        for name in ("refuse_count", "drop_after_frames", "error_after_frames"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "refuse_count" else 1):
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("raw_repeat", "history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("handshake_delay", "eos_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("idle_timeout", "seconds_per_word", "close_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
