"""SDK exceptions → ``CloudError``, by duck typing so nothing here imports the SDK.

tea-openapi 0.4.6 raises ``ClientException`` (4xx), ``ServerException`` (5xx) and
``ThrottlingException`` (when the response says how long to back off), all
``AlibabaCloudException`` → darabonba ``ResponseException``: ``.code``, ``.status_code``,
``.request_id``, ``.message`` (re-worded as ``code: 403, <Message> request id: <id>``) and ``.data``
(the response body plus ``statusCode``). Network failures come wrapped in an
``UnretryableException`` whose ``.inner_exception`` is a darabonba ``RetryError`` carrying the
``requests`` error's text (which may hold the request URL: we drop its query string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from terway.cloud.errors import CloudError, ErrorClass

NETWORK_ERROR = "SDK.NetworkError"      # our code for connect/read failures (TRANSIENT)
BAD_RESPONSE = "SDK.BadResponse"        # a body that is not JSON: a proxy's error page (TRANSIENT)
_NOT_JSON = "Failed to parse the value as json"
_QUERY = re.compile(r"\?[^\s'\"]*")


def scrub(text: str) -> str:
    """Drop query strings from text: RPC-style requests carry AccessKeyId/Signature/token there."""
    return _QUERY.sub("?…", text)


def _response_error(exc: Any) -> CloudError:
    data: Mapping[str, Any] = exc.data if isinstance(getattr(exc, "data", None), Mapping) else {}
    code = data.get("Code") or data.get("code") or getattr(exc, "code", None) or ""
    code = "" if code == "None" else str(code)
    status = getattr(exc, "status_code", None) or data.get("statusCode") \
        or getattr(exc, "statusCode", None) or 0
    status = int(status)
    message = data.get("Message") or data.get("message") or getattr(exc, "message", "") or ""
    request_id = data.get("RequestId") or data.get("requestId") \
        or getattr(exc, "request_id", None) or ""
    request_id = "" if request_id == "None" else str(request_id)
    cls: ErrorClass | None = None
    if not code:
        code = f"HTTP{status}" if status else "SDK.Unknown"
        cls = _class_for_status(status)
    elif code == "InvalidCredentials":          # the SDK's own: no credentials configured
        cls = ErrorClass.AUTH
    return CloudError(code, str(message), request_id=request_id, http_status=status,
                      error_class=cls)


def _class_for_status(status: int) -> ErrorClass:
    if status == 429:
        return ErrorClass.THROTTLED
    if status >= 500:
        return ErrorClass.TRANSIENT
    if status in (401, 403):
        return ErrorClass.AUTH
    if status == 404:
        return ErrorClass.NOT_FOUND
    return ErrorClass.FATAL


def _is_network(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError):
        return True
    try:
        import requests
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, requests.exceptions.RequestException)


def to_cloud_error(exc: BaseException) -> CloudError | None:
    """Classify an exception from an SDK call; ``None`` when it is not a cloud failure (a bug)."""
    if isinstance(exc, CloudError):
        return exc
    inner = getattr(exc, "inner_exception", None)
    if isinstance(inner, BaseException):
        return to_cloud_error(inner)
    if type(exc).__name__ == "RetryError":      # darabonba/Tea: the request never got an answer
        return CloudError(NETWORK_ERROR, scrub(str(getattr(exc, "message", exc))),
                          error_class=ErrorClass.TRANSIENT)
    if hasattr(exc, "code") and hasattr(exc, "data"):
        return _response_error(exc)
    if isinstance(exc, RuntimeError) and str(exc).startswith(_NOT_JSON):
        return CloudError(BAD_RESPONSE, "the response body is not JSON",
                          error_class=ErrorClass.TRANSIENT)
    if _is_network(exc):
        return CloudError(NETWORK_ERROR, scrub(f"{type(exc).__name__}: {exc}"),
                          error_class=ErrorClass.TRANSIENT)
    return None
