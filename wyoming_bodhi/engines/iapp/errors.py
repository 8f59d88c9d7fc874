"""Everything that can go wrong talking to iApp ASRx, as engine errors with ``iapp-`` codes.

iApp documents no error schema and no refusal statuses; the codes follow the HTTP status
for the statuses below (``iapp-401``), are ``iapp-error`` for any other status (named in the
message), and follow the kind of failure otherwise (``iapp-timeout``); whether a retry can
help follows the one rule in :func:`~..base.retryable_status`. No message ever holds the key.
"""

from __future__ import annotations

from ..errors import ErrorTable

KEY_HINT = "check IAPP_API_KEY (the key from iApp's API portal)"

ERRORS = ErrorTable(
    engine="iapp",
    title="iApp ASRx",
    url_flag="--iapp-url",
    refusals={
        401: f"iApp ASRx rejected the API key (401): {KEY_HINT}",
        403: f"iApp ASRx refused the request (403): the key has no access to ASRx; {KEY_HINT}",
        429: "iApp ASRx refused the request: too many requests or no credit left (429)",
        500: "iApp ASRx had an internal error (500); try again shortly",
        503: "iApp ASRx is unavailable or overloaded (503); try again shortly",
    },
)

refused = ERRORS.refused
