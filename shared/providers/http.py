"""Helpers every HTTP adapter shares: reading back-off headers and classifying transport failures.

The httpx exceptions an adapter can meet while sending, and what they become here:

    httpx.HTTPError
    ├── TransportError
    │   ├── TimeoutException   (connect / read / write / pool)   -> RETRY "timeout"
    │   ├── NetworkError
    │   │   ├── ConnectError   (refused, DNS, unreachable)        -> RETRY "connection_error"
    │   │   └── ReadError / WriteError / CloseError           -> RETRY "network_error"
    │   ├── ProtocolError      (the peer broke HTTP)             -> RETRY "protocol_error"
    │   └── ProxyError / UnsupportedProtocol                  -> RETRY "transport_error"
    └── DecodingError / TooManyRedirects / HTTPStatusError    -> RETRY "transport_error"

All are RETRY: none of them says anything about the message itself, and retries are bounded by
the channel's delay queues and DLQ.
"""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from shared.providers.base import DeliveryResult, Outcome

__all__ = [
    "classify_transport_error",
    "parse_rate_limit_reset",
    "parse_retry_after",
    "read_json",
]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # A negative or non-finite delay is not a delay; better to ignore it than to obey it.
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    # An HTTP-date in the past means "now", not "never".
    return max(0.0, when.timestamp() - current)


def parse_rate_limit_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until an `X-RateLimit-Reset` unix-epoch timestamp; None if unusable."""
    if value is None:
        return None
    try:
        reset_at = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(reset_at) or reset_at < 0:
        return None
    current = time.time() if now is None else now
    return max(0.0, reset_at - current)


def read_json(response: httpx.Response) -> Any:
    """The response body parsed as JSON, or None when it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        # Proxies and load balancers answer errors in HTML; the caller falls back to the status.
        return None


def classify_transport_error(exc: httpx.HTTPError) -> DeliveryResult:
    """Classify an httpx failure that produced no usable HTTP answer as a RETRY."""
    if isinstance(exc, httpx.TimeoutException):
        reason = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        reason = "connection_error"
    elif isinstance(exc, httpx.NetworkError):
        reason = "network_error"
    elif isinstance(exc, httpx.ProtocolError):
        reason = "protocol_error"
    else:
        reason = "transport_error"
    # httpx timeouts often carry an empty message; the class name still tells operators what broke.
    text = str(exc)
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return DeliveryResult(outcome=Outcome.RETRY, reason=reason, detail=detail)
