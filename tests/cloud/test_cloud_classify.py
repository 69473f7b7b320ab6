"""Every error code maps to the class callers act on; SDK exceptions map to CloudError."""

from __future__ import annotations

import pytest
import requests

from terway.cloud.errors import CloudError, ErrorClass, classify
from terway.cloud.sdk_errors import NETWORK_ERROR, scrub, to_cloud_error

TABLE = [
    ("InvalidVSwitchId.IpNotEnough", ErrorClass.EXHAUSTED),
    ("QuotaExceeded.PrivateIpAddress", ErrorClass.EXHAUSTED),   # the vSwitch is out (issue 10)
    ("InvalidOperation.Ipv4CountExceeded", ErrorClass.QUOTA),   # the per-ENI limit
    ("SecurityGroupInstanceLimitExceed", ErrorClass.QUOTA),
    ("EniPerInstanceLimitExceeded", ErrorClass.QUOTA),
    ("QuotaExceed.PortableEni", ErrorClass.QUOTA),
    ("QuotaExceed.Something", ErrorClass.QUOTA),
    ("Throttling", ErrorClass.THROTTLED),
    ("Throttling.User", ErrorClass.THROTTLED),
    ("Throttling.Api", ErrorClass.THROTTLED),
    ("Throttling.Other", ErrorClass.THROTTLED),
    ("InternalError", ErrorClass.TRANSIENT),
    ("ServiceUnavailable", ErrorClass.TRANSIENT),
    ("Operation.Conflict", ErrorClass.TRANSIENT),
    ("LastTokenProcessing", ErrorClass.TRANSIENT),
    ("IdempotenceProcessing", ErrorClass.TRANSIENT),
    ("InvalidEniId.NotFound", ErrorClass.NOT_FOUND),
    ("InvalidVSwitchId.NotFound", ErrorClass.NOT_FOUND),
    ("InvalidInstanceId.NotFound", ErrorClass.NOT_FOUND),
    ("InvalidIp.IpUnassigned", ErrorClass.NOT_FOUND),
    ("InvalidOperation.InvalidEniState", ErrorClass.INVALID_STATE),
    ("IncorrectInstanceStatus", ErrorClass.INVALID_STATE),
    ("IncorrectVSwitchStatus", ErrorClass.INVALID_STATE),
    ("InvalidAccessKeyId.NotFound", ErrorClass.AUTH),
    ("SignatureDoesNotMatch", ErrorClass.AUTH),
    ("Forbidden.RAM", ErrorClass.AUTH),
    ("Forbidden", ErrorClass.AUTH),
    ("InvalidParameter", ErrorClass.INVALID),
    ("MissingParameter", ErrorClass.INVALID),
    ("SomethingNobodyKnows", ErrorClass.FATAL),
]


@pytest.mark.parametrize(("code", "cls"), TABLE)
def test_classification_table(code: str, cls: ErrorClass) -> None:
    assert classify(code) is cls
    assert CloudError(code, "m").retryable is (cls in (ErrorClass.THROTTLED, ErrorClass.TRANSIENT))


def test_describe_keeps_upstream_wording() -> None:
    err = CloudError("InvalidVSwitchId.IpNotEnough",
                     'The specified VSwitch "vsw-AAA" has not enough IpAddress.',
                     request_id="R-1", http_status=403)
    assert str(err) == (
        "Aliyun API Error: RequestId: R-1 Status Code: 403 Code: InvalidVSwitchId.IpNotEnough "
        'Message: The specified VSwitch "vsw-AAA" has not enough IpAddress.')


def _client_exception(status: int, body: dict[str, object]) -> Exception:
    """Build the exception the way tea-openapi 0.4.6 does for a 4xx/5xx response."""
    from alibabacloud_tea_openapi import exceptions as ex

    cls = ex.ClientException if status < 500 else ex.ServerException
    exc: Exception = cls(
        status_code=status,
        code=f"{body.get('Code')}",
        message=f"code: {status}, {body.get('Message')} request id: {body.get('RequestId')}",
        data=dict(body),
        request_id=f"{body.get('RequestId')}",
    )
    return exc


def test_client_exception_maps_code_message_status_request_id() -> None:
    exc = _client_exception(403, {
        "RequestId": "R-9", "HostId": "ecs", "Code": "InvalidVSwitchId.IpNotEnough",
        "Message": 'The specified VSwitch "vsw-AAA" has not enough IpAddress.'})
    err = to_cloud_error(exc)
    assert err is not None
    assert err.code == "InvalidVSwitchId.IpNotEnough"
    assert err.error_class is ErrorClass.EXHAUSTED
    assert err.http_status == 403
    assert err.request_id == "R-9"
    assert err.message == 'The specified VSwitch "vsw-AAA" has not enough IpAddress.'


def test_server_exception_maps_transient() -> None:
    err = to_cloud_error(_client_exception(
        500, {"RequestId": "R-2", "Code": "InternalError", "Message": "oops"}))
    assert err is not None
    assert (err.code, err.http_status) == ("InternalError", 500)
    assert err.error_class is ErrorClass.TRANSIENT


def test_throttling_exception_maps_throttled() -> None:
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    exc = ThrottlingException(status_code=400, code="Throttling.User", message="m",
                              data={"RequestId": "R-3", "Code": "Throttling.User",
                                    "Message": "Request was denied due to user flow control."},
                              request_id="R-3", retry_after=1)
    err = to_cloud_error(exc)
    assert err is not None
    assert err.error_class is ErrorClass.THROTTLED
    assert err.request_id == "R-3"


@pytest.mark.parametrize(("status", "cls"), [
    (502, ErrorClass.TRANSIENT), (429, ErrorClass.THROTTLED), (403, ErrorClass.AUTH),
    (404, ErrorClass.NOT_FOUND), (400, ErrorClass.FATAL)])
def test_body_without_code_classified_by_status(status: int, cls: ErrorClass) -> None:
    err = to_cloud_error(_client_exception(status, {"RequestId": "R"}))
    assert err is not None
    assert err.error_class is cls
    assert err.code == f"HTTP{status}"


def test_network_failure_inside_unretryable_is_transient_and_scrubbed() -> None:
    from darabonba.exceptions import UnretryableException
    from darabonba.policy.retry import RetryPolicyContext

    inner = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: "
        "/?AccessKeyId=AK&Signature=SIG&SecurityToken=TOKENVALUE")
    exc = UnretryableException(RetryPolicyContext(retries_attempted=1, exception=inner))
    err = to_cloud_error(exc)
    assert err is not None
    assert err.code == NETWORK_ERROR
    assert err.error_class is ErrorClass.TRANSIENT
    assert "TOKENVALUE" not in str(err) and "SIG" not in str(err)


def test_timeout_is_transient() -> None:
    err = to_cloud_error(requests.exceptions.ReadTimeout("read timed out"))
    assert err is not None and err.error_class is ErrorClass.TRANSIENT


def test_sdk_missing_credentials_is_auth() -> None:
    from alibabacloud_tea_openapi.exceptions import ClientException

    err = to_cloud_error(ClientException(code="InvalidCredentials", message="set credentials"))
    assert err is not None and err.error_class is ErrorClass.AUTH


def test_bugs_are_not_classified() -> None:
    assert to_cloud_error(KeyError("x")) is None


def test_scrub_removes_query_strings() -> None:
    assert scrub("url: /?a=1&Signature=x more") == "url: /?… more"


def test_darabonba_retry_error_is_network_transient_and_scrubbed() -> None:
    from darabonba.exceptions import RetryError, UnretryableException
    from darabonba.policy.retry import RetryPolicyContext

    inner = RetryError("HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: "
                       "/?SecurityToken=TOKENVALUE (Caused by NewConnectionError(refused))")
    err = to_cloud_error(UnretryableException(RetryPolicyContext(retries_attempted=1,
                                                                 exception=inner)))
    assert err is not None
    assert (err.code, err.error_class) == (NETWORK_ERROR, ErrorClass.TRANSIENT)
    assert "TOKENVALUE" not in err.message and "refused" in err.message


def test_a_cloud_error_survives_pickling_with_every_field() -> None:
    """Sweeps and recorded runs (bench/replay.py) carry errors across processes."""
    import pickle

    err = CloudError("Throttling.User", "slow down", request_id="R-1", http_status=400,
                     error_class=ErrorClass.TRANSIENT)
    back = pickle.loads(pickle.dumps(err))
    assert (back.code, back.message, back.request_id, back.http_status, back.error_class) == \
        ("Throttling.User", "slow down", "R-1", 400, ErrorClass.TRANSIENT)
    assert str(back) == str(err)
