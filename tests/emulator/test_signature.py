"""ACS3-HMAC-SHA256 verification, cross-checked against the installed SDK's own signer."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from alibabacloud_tea_openapi.utils import Utils

from emulator.model.errors import ApiError
from emulator.wire.signature import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    Credentials,
    Verifier,
    canonical_query,
    header_map,
)

AK, SECRET = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET


def signed(
    query: Mapping[str, str],
    *,
    ak: str = AK,
    secret: str = SECRET,
    body: bytes = b"",
    token: str | None = None,
    date: str | None = None,
    nonce: str = "n-1",
) -> tuple[str, dict[str, list[str]]]:
    """A request signed exactly as the SDK signs it; returns (raw query, header map)."""
    headers = {
        "host": "127.0.0.1:18080",
        "x-acs-version": "2014-05-26",
        "x-acs-action": "DescribeNetworkInterfaces",
        "user-agent": "AlibabaCloud test",
        "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": nonce,
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if token:
        headers["x-acs-accesskey-id"] = ak
        headers["x-acs-security-token"] = token
    req = SimpleNamespace(method="POST", pathname="/", query=dict(query), headers=headers)
    payload = headers["x-acs-content-sha256"]
    headers["Authorization"] = Utils.get_authorization(
        req, "ACS3-HMAC-SHA256", payload, ak, secret
    )
    return urlencode(query), header_map(headers.items())


def verify(v: Verifier, query: str, headers: dict[str, list[str]], body: bytes = b"") -> str:
    return v.verify("POST", "/", query, headers, body).access_key_id


def code_of(v: Verifier, query: str, headers: dict[str, list[str]], body: bytes = b"") -> ApiError:
    with pytest.raises(ApiError) as info:
        verify(v, query, headers, body)
    return info.value


def test_sdk_signature_is_accepted_with_awkward_values() -> None:
    q, h = signed({"RegionId": "cn-hangzhou", "Description": "a b+c/é~*'", "Tag.1.Key": "k=v&x"})
    assert verify(Verifier(), q, h) == AK


def test_canonical_query_matches_sdk_encoding() -> None:
    raw = urlencode({"B": "x y", "A": "~*é", "C": ""})
    assert canonical_query(raw) == "A=~%2A%C3%A9&B=x%20y&C="


def test_wrong_secret_is_signature_does_not_match_400() -> None:
    q, h = signed({"RegionId": "cn-hangzhou"}, secret="wrong")
    err = code_of(Verifier(), q, h)
    assert (err.code, err.http_status) == ("SignatureDoesNotMatch", 400)
    assert "wrong" not in err.message and SECRET not in err.message


def test_unknown_access_key_is_not_found_404() -> None:
    q, h = signed({"RegionId": "cn-hangzhou"}, ak="LTAIunknown")
    err = code_of(Verifier(), q, h)
    assert (err.code, err.http_status) == ("InvalidAccessKeyId.NotFound", 404)
    assert err.message == "Specified access key is not found."


def test_tampered_query_is_refused() -> None:
    q, h = signed({"RegionId": "cn-hangzhou", "PageSize": "10"})
    assert code_of(Verifier(), q.replace("10", "50"), h).code == "SignatureDoesNotMatch"


def test_tampered_body_is_refused() -> None:
    q, h = signed({"RegionId": "cn-hangzhou"}, body=b"a=1")
    assert code_of(Verifier(), q, h, b"a=2").code == "SignatureDoesNotMatch"


def test_missing_authorization_is_incomplete_signature() -> None:
    q, h = signed({"RegionId": "cn-hangzhou"})
    del h["authorization"]
    err = code_of(Verifier(), q, h)
    assert (err.code, err.http_status) == ("IncompleteSignature", 400)


def test_unsigned_acs_header_is_refused() -> None:
    q, h = signed({"RegionId": "cn-hangzhou"})
    h["x-acs-extra"] = ["1"]
    assert code_of(Verifier(), q, h).code == "IncompleteSignature"


def test_replayed_nonce_is_refused_and_other_verifier_accepts() -> None:
    v = Verifier()
    q, h = signed({"RegionId": "cn-hangzhou"}, nonce="same")
    verify(v, q, h)
    assert code_of(v, q, h).code == "SignatureNonceUsed"
    assert verify(Verifier(), q, h) == AK


def test_stale_date_is_expired_unless_clock_check_off() -> None:
    q, h = signed({"RegionId": "cn-hangzhou"}, date="2001-01-01T00:00:00Z")
    assert code_of(Verifier(), q, h).code == "InvalidTimeStamp.Expired"
    assert verify(Verifier(check_clock=False), q, h) == AK


def test_failed_check_does_not_consume_nonce() -> None:
    v = Verifier()
    q, h = signed({"RegionId": "cn-hangzhou"}, nonce="n-x", secret="bad")
    code_of(v, q, h)
    q, h = signed({"RegionId": "cn-hangzhou"}, nonce="n-x")
    assert verify(v, q, h) == AK


def test_sts_token_accepted_and_checked() -> None:
    creds = Credentials.default()
    creds.add_sts("STS.abc", "sts-secret", "tok-1")
    v = Verifier(creds)
    q, h = signed({"RegionId": "cn-hangzhou"}, ak="STS.abc", secret="sts-secret", token="tok-1")
    assert v.verify("POST", "/", q, h, b"").sts is True
    q, h = signed({"R": "1"}, ak="STS.abc", secret="sts-secret", token="tok-2", nonce="n-2")
    assert code_of(v, q, h).code == "InvalidSecurityToken.MismatchWithAccessKey"
    q, h = signed({"R": "1"}, ak="STS.abc", secret="sts-secret", nonce="n-3")
    assert code_of(v, q, h).code == "InvalidSecurityToken.MissingParameter"


def test_multiple_access_keys() -> None:
    v = Verifier(Credentials.of({"AK1": "s1", "AK2": "s2"}))
    q, h = signed({"R": "1"}, ak="AK2", secret="s2")
    assert verify(v, q, h) == "AK2"


def test_secrets_never_in_repr() -> None:
    creds = Credentials.of({"AK1": "topsecret"})
    creds.add_sts("STS.x", "stssecret", "token123")
    text = repr(creds) + repr(Verifier(creds))
    assert "AK1" in text
    for secret in ("topsecret", "stssecret", "token123"):
        assert secret not in text


def test_empty_credentials_rejected() -> None:
    with pytest.raises(ValueError, match="access_key_id"):
        Credentials.of({"AK": ""})
