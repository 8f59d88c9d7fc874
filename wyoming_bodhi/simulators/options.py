"""How a simulator behaves, as one frozen value (the CLIs map flags onto it): the knobs every
vendor's simulator shares. A vendor with knobs of its own subclasses :class:`SimulatorOptions`
in its package (``bodhi/options.py``, ``iapp/options.py``) and names the subclass as its
simulator's ``options_type``; no vendor's knob lives here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from .segmenter import DEFAULT_THRESHOLD_DBFS

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

    # --- results ---
    texts: Sequence[str] = ()
    """Segment texts in order, per connection; the default phrase once exhausted."""
    partials: bool = True
    """Send partial results (a client can still turn them off, where the protocol lets it)."""
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
        for name in ("texts", "raw_before_results"):
            self._strings(name)
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

    def _strings(self, name: str) -> None:
        """Field ``name`` checked to be a sequence of strings, kept as a tuple."""
        value = getattr(self, name)
        # A bare string is a sequence of characters: almost certainly a mistake.
        if isinstance(value, str) or any(not isinstance(item, str) for item in value):
            raise ValueError(f"{name} must be a sequence of strings")
        # Tuples keep the value immutable even when lists were passed in.
        object.__setattr__(self, name, tuple(value))

    @classmethod
    def widened(cls, options: SimulatorOptions | None = None) -> Self:
        """``options`` as this (a vendor's) class: the shared knobs as given, the vendor's
        own at their defaults; ``options`` itself if it already is one."""
        if isinstance(options, cls):
            return options
        if options is None:
            return cls()
        shared = dataclasses.fields(SimulatorOptions)
        return cls(**{spec.name: getattr(options, spec.name) for spec in shared})
