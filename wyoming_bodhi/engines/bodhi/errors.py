"""Everything that can go wrong talking to Bodhi, as a small typed hierarchy.

Each error carries a message a user can act on, a short machine ``code`` (used as the
Wyoming error code, e.g. ``bodhi-401``) and whether retrying the same request can help. The
codes are a closed set: a status Bodhi does not document, whether it refuses a connection
with it or reports it in a message, is ``bodhi-error``, the status named in the message.
No error text ever contains the API key or the customer id: messages are built from fixed
strings and from what the *server* said, never from our own request headers.
"""

from __future__ import annotations

from collections.abc import Callable

from ..base import (
    CONNECTION_LOST,
    PROTOCOL,
    REFUSED,
    REJECTED,
    TIMEOUT,
    TLS,
    UNREACHABLE,
    EngineError,
    retryable_code,
    retryable_status,
)

_CREDENTIALS_HINT = "check BODHI_API_KEY and BODHI_CUSTOMER_ID"


class BodhiError(EngineError):
    """Base class: a Bodhi session failed."""

    code = "bodhi-error"
    retryable = False


class BodhiAuthenticationError(BodhiError):
    code = "bodhi-401"
    kind = REFUSED

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or f"Bodhi rejected the API key or customer id (401): {_CREDENTIALS_HINT}"
        )


class BodhiInsufficientBalanceError(BodhiError):
    code = "bodhi-402"
    kind = REFUSED

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Bodhi refused the request: insufficient balance (402); "
            "top up the account on the Navana dashboard"
        )


class BodhiInactiveCustomerError(BodhiError):
    code = "bodhi-403"
    kind = REFUSED

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Bodhi refused the request: the customer account is deactivated (403); "
            "contact Navana support"
        )


class BodhiBadRequestError(BodhiError):
    """An in-socket 400: Bodhi did not accept the config (model, transaction id, …)."""

    code = "bodhi-400"
    kind = REJECTED

    def __init__(self, detail: str) -> None:
        super().__init__(f"Bodhi rejected the request (400): {detail}")
        self.detail = detail


class BodhiServerError(BodhiError):
    code = "bodhi-500"
    kind = REFUSED
    retryable = True

    def __init__(self, detail: str | None = None) -> None:
        text = "Bodhi had an internal error (500)"
        super().__init__(f"{text}: {detail}" if detail else f"{text}; try again shortly")
        self.detail = detail


class BodhiUnavailableError(BodhiError):
    code = "bodhi-503"
    kind = REFUSED
    retryable = True

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "Bodhi is unavailable or overloaded (503); try again shortly")


class BodhiHandshakeError(BodhiError):
    """The upgrade (or a request to the non-streaming API) was refused with a status Bodhi
    does not document: ``bodhi-error``, the status in the message."""

    kind = REFUSED

    def __init__(self, status: int, refused: str = "the WebSocket connection") -> None:
        super().__init__(
            f"Bodhi refused {refused} with HTTP {status}", retryable=retryable_status(status)
        )
        self.status = status


class BodhiReportedError(BodhiError):
    """An error message (in the socket, or in a reply) with a code Bodhi does not document:
    ``bodhi-error``, what it sent as its code in the message."""

    kind = REJECTED

    def __init__(self, status: int | str, detail: str) -> None:
        super().__init__(
            f"Bodhi reported an error (code {status}): {detail}", retryable=retryable_code(status)
        )
        self.status = status


class BodhiConnectionError(BodhiError):
    """The server could not be reached at all (refused, name resolution, TLS)."""

    code = "bodhi-unreachable"
    kind = UNREACHABLE
    retryable = True


class BodhiTLSError(BodhiConnectionError):
    code = "bodhi-tls"
    kind = TLS
    retryable = False


class BodhiConnectionLostError(BodhiError):
    """The WebSocket closed before Bodhi signalled end of stream."""

    code = "bodhi-connection-lost"
    kind = CONNECTION_LOST
    retryable = True

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "the connection to Bodhi closed before the transcript was complete"
            + (f" ({detail})" if detail else "")
        )


class BodhiTimeoutError(BodhiError):
    code = "bodhi-timeout"
    kind = TIMEOUT
    retryable = True


class BodhiProtocolError(BodhiError):
    """Bodhi sent something that is not a message we understand."""

    code = "bodhi-protocol"
    kind = PROTOCOL


_BY_STATUS: dict[int, Callable[[], BodhiError]] = {
    401: BodhiAuthenticationError,
    402: BodhiInsufficientBalanceError,
    403: BodhiInactiveCustomerError,
    500: BodhiServerError,
    503: BodhiUnavailableError,
}


def error_for_status(status: int) -> BodhiError:
    """The error for an HTTP status refusing the WebSocket upgrade."""
    make_error = _BY_STATUS.get(status)
    return BodhiHandshakeError(status) if make_error is None else make_error()


def _said(error: BodhiError, detail: str | None) -> BodhiError:
    if detail:
        error.message = f"{error.message}; Bodhi said: {detail}"
    return error


def error_for_server_message(code: int | str | None, detail: str) -> BodhiError:
    """The error for an in-socket ``{"error": ..., "code": ...}`` message, ``code`` read by
    :func:`~..base.status_code` (None: no code, as Bodhi's own 400s come)."""
    if code == 400 or code is None:
        return BodhiBadRequestError(detail)
    if code == 500:
        return BodhiServerError(detail)
    if isinstance(code, int) and code in _BY_STATUS:
        return _said(_BY_STATUS[code](), detail)
    return BodhiReportedError(code, detail)


def error_for_reply(status: int, detail: str | None) -> BodhiError:
    """The error for an HTTP error status answering the non-streaming API, ``detail`` being
    what its reply said: for 401, 402, 403, 500 and 503 the handshake refusal's code and
    message (what to do), then Bodhi's words."""
    if status == 400:
        return BodhiBadRequestError(detail or "no reason given")
    if status in _BY_STATUS:
        return _said(error_for_status(status), detail)
    return _said(BodhiHandshakeError(status, "the transcription request"), detail)
