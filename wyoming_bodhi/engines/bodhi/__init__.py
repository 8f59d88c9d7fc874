"""The Bodhi side: protocol messages (sans-I/O), typed errors and the WebSocket client."""

from ..base import Hotword
from .client import LEGACY_URL, BodhiCredentials, BodhiStream
from .errors import (
    BodhiAuthenticationError,
    BodhiBadRequestError,
    BodhiConnectionError,
    BodhiConnectionLostError,
    BodhiError,
    BodhiInactiveCustomerError,
    BodhiInsufficientBalanceError,
    BodhiProtocolError,
    BodhiServerError,
    BodhiTimeoutError,
    BodhiTLSError,
    BodhiUnavailableError,
)
from .protocol import (
    EOF_MESSAGE,
    SAMPLE_RATE,
    BodhiConfig,
    BodhiErrorMessage,
    BodhiResult,
    ResultType,
    SegmentMeta,
    Word,
    parse_message,
)

__all__ = [
    "EOF_MESSAGE",
    "LEGACY_URL",
    "SAMPLE_RATE",
    "BodhiAuthenticationError",
    "BodhiBadRequestError",
    "BodhiConfig",
    "BodhiConnectionError",
    "BodhiConnectionLostError",
    "BodhiCredentials",
    "BodhiError",
    "BodhiErrorMessage",
    "BodhiInactiveCustomerError",
    "BodhiInsufficientBalanceError",
    "BodhiProtocolError",
    "BodhiResult",
    "BodhiServerError",
    "BodhiStream",
    "BodhiTLSError",
    "BodhiTimeoutError",
    "BodhiUnavailableError",
    "Hotword",
    "ResultType",
    "SegmentMeta",
    "Word",
    "parse_message",
]
