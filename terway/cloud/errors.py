"""The error taxonomy: every cloud failure is classified once, here, and callers act on the class.

The class decides behaviour: ``EXHAUSTED`` blocks a vSwitch/ENI for a while, ``THROTTLED`` and
``TRANSIENT`` are retried with backoff, the rest surface to the caller.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorClass(enum.Enum):
    EXHAUSTED = "exhausted"      # the vSwitch has no free address
    QUOTA = "quota"              # a per-instance / per-ENI / account quota is reached
    THROTTLED = "throttled"      # flow control: retry later
    TRANSIENT = "transient"      # internal error, conflict, timeout: retry
    NOT_FOUND = "not_found"      # the resource does not exist (any more)
    INVALID_STATE = "invalid_state"  # exists, but not in a state the action accepts
    AUTH = "auth"                # credentials or permissions
    INVALID = "invalid"          # bad parameters: a bug or a bad config, never retried
    FATAL = "fatal"              # anything unclassified


_EXACT: dict[str, ErrorClass] = {
    "InvalidVSwitchId.IpNotEnough": ErrorClass.EXHAUSTED,
    # despite its name, the vSwitch is out of addresses (CreateNetworkInterface, RunInstances);
    # upstream treats it as IpNotEnough and tries the next vSwitch
    "QuotaExceeded.PrivateIpAddress": ErrorClass.EXHAUSTED,
    # the per-ENI address limit of AssignPrivateIpAddresses (403 in the API reference)
    "InvalidOperation.Ipv4CountExceeded": ErrorClass.QUOTA,
    "InvalidOperation.Ipv6CountExceeded": ErrorClass.QUOTA,
    "EniPerInstanceLimitExceeded": ErrorClass.QUOTA,
    "SecurityGroupInstanceLimitExceed": ErrorClass.QUOTA,
    "QuotaExceed.PortableEni": ErrorClass.QUOTA,
    "Throttling": ErrorClass.THROTTLED,
    "Throttling.User": ErrorClass.THROTTLED,
    "Throttling.Api": ErrorClass.THROTTLED,
    "ServiceUnavailable": ErrorClass.TRANSIENT,
    "InternalError": ErrorClass.TRANSIENT,
    "Operation.Conflict": ErrorClass.TRANSIENT,
    "LastTokenProcessing": ErrorClass.TRANSIENT,
    "IdempotenceProcessing": ErrorClass.TRANSIENT,
    "InvalidEniId.NotFound": ErrorClass.NOT_FOUND,
    "InvalidVSwitchId.NotFound": ErrorClass.NOT_FOUND,
    "InvalidInstanceId.NotFound": ErrorClass.NOT_FOUND,
    "InvalidIp.IpUnassigned": ErrorClass.NOT_FOUND,
    "InvalidOperation.InvalidEniState": ErrorClass.INVALID_STATE,
    "IncorrectInstanceStatus": ErrorClass.INVALID_STATE,
    "IncorrectVSwitchStatus": ErrorClass.INVALID_STATE,
    "InvalidAccessKeyId.NotFound": ErrorClass.AUTH,
    "SignatureDoesNotMatch": ErrorClass.AUTH,
    "Forbidden.RAM": ErrorClass.AUTH,
    "Forbidden": ErrorClass.AUTH,
}


def classify(code: str) -> ErrorClass:
    """Map an API error code onto its class (unknown codes by prefix, else FATAL)."""
    if code in _EXACT:
        return _EXACT[code]
    if code.startswith("Throttling"):
        return ErrorClass.THROTTLED
    if code.startswith("QuotaExceed"):
        return ErrorClass.QUOTA
    if code.endswith(".NotFound"):
        return ErrorClass.NOT_FOUND
    if code.startswith(("InvalidParameter", "MissingParameter", "InvalidParam", "Invalid")):
        return ErrorClass.INVALID
    if code.startswith("Forbidden"):
        return ErrorClass.AUTH
    return ErrorClass.FATAL


class CloudError(Exception):
    """A classified cloud failure. ``str()`` keeps upstream's log wording so users can grep it."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str = "",
        http_status: int = 0,
        error_class: ErrorClass | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.error_class = error_class or classify(code)
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the fields (``Exception`` would call ``__init__`` with the text alone):
        errors cross process boundaries in sweeps and recorded runs."""
        return (_rebuild, (self.code, self.message, self.request_id, self.http_status,
                           self.error_class))

    def describe(self) -> str:
        """Upstream's wording.

        ``Aliyun API Error: RequestId: … Status Code: … Code: … Message: …``
        """
        return (
            f"Aliyun API Error: RequestId: {self.request_id} Status Code: {self.http_status} "
            f"Code: {self.code} Message: {self.message}"
        )

    @property
    def retryable(self) -> bool:
        return self.error_class in (ErrorClass.THROTTLED, ErrorClass.TRANSIENT)


def _rebuild(code: str, message: str, request_id: str, http_status: int,
             error_class: ErrorClass) -> CloudError:
    """``CloudError.__reduce__``'s inverse."""
    return CloudError(code, message, request_id=request_id, http_status=http_status,
                      error_class=error_class)
