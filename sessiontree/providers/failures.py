"""Provider failures into :class:`ProviderError`: retryable or not, with a reason and
the provider's own ``Retry-After`` hint.

The table, by HTTP status (or, for an error sent inside a stream, by the error's
``type``):

======================  ===========================  =========
status / error type     reason                       retryable
======================  ===========================  =========
400, 413, 422, other    ``provider_bad_request``     no
4xx
401                     ``provider_auth``            no
402, 403                ``provider_permission``      no
404                     ``provider_not_found``       no
429 ``insufficient_     ``provider_quota``           no
quota``
429                     ``provider_rate_limited``    yes
503, 529,               ``provider_overloaded``      yes
``overloaded_error``
408, 409, other 5xx     ``provider_server_error``    yes
connection, timeout     ``provider_connection``      yes
======================  ===========================  =========

``Retry-After`` is read as the SDKs read it: ``retry-after-ms`` (milliseconds), then
``retry-after`` as seconds, then as an HTTP date.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from sessiontree._reasons import Reason
from sessiontree.providers.base import ProviderError

_BY_TYPE = {
    "invalid_request_error": (Reason.PROVIDER_BAD_REQUEST, False),
    "request_too_large": (Reason.PROVIDER_BAD_REQUEST, False),
    "authentication_error": (Reason.PROVIDER_AUTH, False),
    "permission_error": (Reason.PROVIDER_PERMISSION, False),
    "billing_error": (Reason.PROVIDER_PERMISSION, False),
    "not_found_error": (Reason.PROVIDER_NOT_FOUND, False),
    "rate_limit_error": (Reason.PROVIDER_RATE_LIMITED, True),
    "overloaded_error": (Reason.PROVIDER_OVERLOADED, True),
    "api_error": (Reason.PROVIDER_SERVER_ERROR, True),
    "timeout_error": (Reason.PROVIDER_SERVER_ERROR, True),
}


def retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait, or None."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    for key, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = lower.get(key)
        if raw is None:
            continue
        try:
            value = float(raw) / scale
        except ValueError:
            continue
        if value >= 0:
            return value
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """(error type, error code) from an error body of either provider."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    inner: dict[str, Any] = error if isinstance(error, dict) else body
    kind = inner.get("type") if isinstance(inner.get("type"), str) else None
    code = inner.get("code") if isinstance(inner.get("code"), str) else None
    return kind, code


def classify(status: int | None, error_type: str | None = None,
             error_code: str | None = None) -> tuple[Reason, bool]:
    """(reason, retryable) for an HTTP status and the provider's error type/code."""
    if error_code == "insufficient_quota" or error_type == "insufficient_quota":
        return Reason.PROVIDER_QUOTA, False
    if status is None or status < 400:
        # An error event inside a 200 stream: only its type says what it was.
        return _BY_TYPE.get(error_type or "", (Reason.PROVIDER_SERVER_ERROR, True))
    if status == 401:
        return Reason.PROVIDER_AUTH, False
    if status in (402, 403):
        return Reason.PROVIDER_PERMISSION, False
    if status == 404:
        return Reason.PROVIDER_NOT_FOUND, False
    if status == 429:
        return Reason.PROVIDER_RATE_LIMITED, True
    if status in (503, 529) or error_type == "overloaded_error":
        return Reason.PROVIDER_OVERLOADED, True
    if status in (408, 409) or status >= 500:
        return Reason.PROVIDER_SERVER_ERROR, True
    return Reason.PROVIDER_BAD_REQUEST, False


def from_status_error(exc: Exception, provider: str) -> ProviderError:
    """An SDK's ``APIStatusError`` (both SDKs: ``status_code``, ``response``, ``body``)."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    kind, code = _error_fields(getattr(exc, "body", None))
    reason, retryable = classify(status if isinstance(status, int) else None, kind, code)
    message = getattr(exc, "message", None) or str(exc)
    return ProviderError(
        f"{provider}: {status} {reason.value}: {message}"[:2000],
        retryable=retryable, retry_after=retry_after(headers) if retryable else None,
        status=status if isinstance(status, int) else None, reason=reason, provider=provider,
    )


def connection_error(exc: Exception, provider: str) -> ProviderError:
    return ProviderError(f"{provider}: connection failed: {type(exc).__name__}: {exc}"[:2000],
                         retryable=True, reason=Reason.PROVIDER_CONNECTION, provider=provider)


def malformed(provider: str, detail: str) -> ProviderError:
    """A reply we cannot read at all (not one bad tool call: that becomes an error
    tool result). Retryable: the next sample is usually well-formed."""
    return ProviderError(f"{provider}: malformed reply: {detail}"[:2000], retryable=True,
                         reason=Reason.PROVIDER_MALFORMED_REPLY, provider=provider)
