"""Everything that can go wrong talking to iApp ASRx, as engine errors with ``iapp-`` codes.

iApp documents no error schema and no refusal statuses; the codes follow the HTTP status
for the statuses below (``iapp-401``), are ``iapp-error`` for any other status (named in the
message), and follow the kind of failure otherwise (``iapp-timeout``); whether a retry can
help follows the one rule in :func:`~..base.retryable_status`. No message ever holds the key.
"""

from __future__ import annotations

from ..base import (
    CONNECTION_LOST,
    REFUSED,
    TIMEOUT,
    TLS,
    UNREACHABLE,
    EngineError,
    engine_code,
    retryable_status,
)
from ..websocket import Failures

KEY_HINT = "check IAPP_API_KEY (the key from iApp's API portal)"

_REFUSALS = {
    401: f"iApp ASRx rejected the API key (401): {KEY_HINT}",
    403: f"iApp ASRx refused the request (403): the key has no access to ASRx; {KEY_HINT}",
    429: "iApp ASRx refused the request: too many requests or no credit left (429)",
    500: "iApp ASRx had an internal error (500); try again shortly",
    503: "iApp ASRx is unavailable or overloaded (503); try again shortly",
}


def iapp_error(
    kind: str, message: str, *, code: str | None = None, retryable: bool = False
) -> EngineError:
    return EngineError(message, code=code or f"iapp-{kind}", kind=kind, retryable=retryable)


def iapp_code(status: int | str | None) -> str:
    """``iapp-401`` for the statuses above, ``iapp-error`` for any other: a closed set."""
    return engine_code("iapp", status, _REFUSALS)


def refused(status: int) -> EngineError:
    message = _REFUSALS.get(
        status, f"iApp ASRx refused the WebSocket connection with HTTP {status}"
    )
    return iapp_error(REFUSED, message, code=iapp_code(status), retryable=retryable_status(status))


FAILURES = Failures(
    title="iApp ASRx",
    url_setting="--iapp-url",
    for_status=refused,
    unreachable=lambda message: iapp_error(UNREACHABLE, message, retryable=True),
    tls=lambda message: iapp_error(TLS, message),
    timeout=lambda message: iapp_error(TIMEOUT, message, retryable=True),
    lost=lambda detail: iapp_error(
        CONNECTION_LOST,
        "the connection to iApp ASRx closed before the transcript was complete"
        + (f" ({detail})" if detail else ""),
        retryable=True,
    ),
)
