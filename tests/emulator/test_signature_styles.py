"""The RPC (HMAC-SHA1) and ACS3-HMAC-SM3 signature styles, checked against the SDKs' own signers.

The old Python SDK (aliyun-python-sdk-core) and the new one (alibabacloud-tea-openapi: its RPC
``get_rpcsignature`` for ``signature_algorithm='v2'``, its ``get_authorization`` for ACS3-HMAC-SM3)
sign requests here; the verifier must accept them, refuse every change, and answer a wrong secret
or an unknown key as the cloud does. SM3 is checked against the standard's test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.auth.composer import rpc_signature_composer

from emulator.model.errors import ApiError
from emulator.server import Emulator
from emulator.wire import sm3
from emulator.wire.gateway import Gateway, WireRequest
from emulator.wire.signature import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FORM_TYPE,
    SM3_ALGORITHM,
    Credentials,
    Verifier,
    header_map,
    rpc_string_to_sign,
)

AK, SECRET = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
MISMATCH = "Specified signature is not matched with our calculation. server string to sign is:"
AWKWARD = {"RegionId": "cn-hangzhou", "Description": "a b+c/é~*'!()", "Tag.1.Key": "k=v&x"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def rpc_signed(
    params: Mapping[str, str],
    *,
    method: str = "GET",
    form: Mapping[str, str] | None = None,
    ak: str = AK,
    secret: str = SECRET,
    nonce: str = "n-1",
    timestamp: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, list[str]], bytes]:
    """A request signed by the new SDK's RPC signer (``signature_algorithm='v2'``): (query,
    headers, body). ``form`` parameters travel in a form body, signed with the query's."""
    query = {
        "Action": "DescribeVSwitches", "Version": "2016-04-28", "Format": "json",
        "Timestamp": timestamp or _now(), "SignatureNonce": nonce,
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "AccessKeyId": ak,
        **params, **(extra or {}),
    }
    query["Signature"] = Utils.get_rpcsignature({**query, **(form or {})}, method, secret)
    headers = {"host": "127.0.0.1:18080", "user-agent": "test"}
    body = b""
    if form:
        headers["content-type"] = FORM_TYPE
        body = urlencode(form).encode()
    return urlencode(query), header_map(headers.items()), body


def refused(v: Verifier, method: str, query: str, headers: dict[str, list[str]],
            body: bytes = b"") -> ApiError:
    with pytest.raises(ApiError) as info:
        v.verify(method, "/", query, headers, body)
    return info.value


# -- SM3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, digest", [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
])
def test_sm3_standard_vectors(data: bytes, digest: str) -> None:
    assert sm3.SM3(data).hexdigest() == digest  # the pure-Python one, always
    assert sm3.new(data).hexdigest() == digest  # what the verifier uses (OpenSSL when there)


def test_pure_python_sm3_matches_incremental_and_hmac() -> None:
    rng = random.Random(3)
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 128, 200):
        data = rng.randbytes(n)
        split = sm3.SM3(data[: n // 3])
        split.update(data[n // 3:])
        copied = split.copy()
        copied.update(b"x")
        assert split.hexdigest() == sm3.SM3(data).hexdigest() == sm3.new(data).hexdigest()
        assert copied.hexdigest() == sm3.SM3(data + b"x").hexdigest()
    ours = hmac.new(b"key", b"message", sm3.SM3).hexdigest()  # type: ignore[arg-type]
    assert ours == hmac.new(b"key", b"message", sm3.new).hexdigest()


# -- RPC: the string to sign is the SDKs' own ----------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_rpc_string_to_sign_equals_both_python_sdks(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "aZ09-_.~ +%&=;/?#*'!()é€😀"
    for _ in range(50):
        params = {"".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 6))):
                  "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
                  for _ in range(rng.randrange(1, 6))}
        method = rng.choice(["GET", "POST"])
        _, old_sts = rpc_signature_composer.get_signed_url(
            dict(params), AK, SECRET, "JSON", method, {})
        old_params = {**params, "AccessKeyId": AK, "Format": "JSON"}
        # the old SDK adds its own Timestamp/Nonce: rebuild ours from what it signed
        signed = dict(_unquote_pairs(old_sts))
        assert set(old_params) <= set(signed)
        assert rpc_string_to_sign(method, signed) == old_sts
        new_sig = Utils.get_rpcsignature(params, method, SECRET)
        ours = hmac.new(f"{SECRET}&".encode(), rpc_string_to_sign(method, params).encode(),
                        hashlib.sha1).digest()
        assert base64.b64encode(ours).decode() == new_sig


def _unquote_pairs(string_to_sign: str) -> list[tuple[str, str]]:
    """The decoded (name, value) pairs an RPC string to sign was made of."""
    canonical = unquote(string_to_sign.split("&", 2)[2])
    return [(unquote(k), unquote(v)) for k, v in
            (pair.split("=", 1) for pair in canonical.split("&"))]


# -- RPC: the verifier ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_rpc_request_in_the_query_is_accepted(method: str) -> None:
    q, h, b = rpc_signed(AWKWARD, method=method)
    principal = Verifier().verify(method, "/", q, h, b)
    assert (principal.access_key_id, principal.algorithm, principal.rpc) == (AK, "HMAC-SHA1", True)


def test_rpc_post_form_body_is_signed_and_checked() -> None:
    q, h, b = rpc_signed({"RegionId": "cn-hangzhou"}, method="POST", form={"VpcId": "vpc-1 é"})
    assert Verifier().verify("POST", "/", q, h, b).access_key_id == AK
    err = refused(Verifier(), "POST", q, h, b.replace(b"vpc-1", b"vpc-2"))
    assert (err.code, err.http_status) == ("SignatureDoesNotMatch", 400)


def test_rpc_tampered_query_or_method_is_refused() -> None:
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou", "PageSize": "10"})
    assert refused(Verifier(), "GET", q.replace("PageSize=10", "PageSize=50"), h).code == (
        "SignatureDoesNotMatch")
    assert refused(Verifier(), "POST", q, h).code == "SignatureDoesNotMatch"


def test_rpc_wrong_secret_answers_the_servers_string_to_sign() -> None:
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, secret="not-it")
    err = refused(Verifier(), "GET", q, h)
    assert (err.code, err.http_status) == ("SignatureDoesNotMatch", 400)
    assert err.message.startswith(MISMATCH)
    server_sts = err.message.removeprefix(MISMATCH)
    assert server_sts.startswith(f"GET&%2F&AccessKeyId%3D{AK}%26Action%3DDescribeVSwitches%26")
    assert "not-it" not in err.message and SECRET not in err.message


def test_rpc_unknown_key_is_404() -> None:
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, ak="LTAInobody")
    err = refused(Verifier(), "GET", q, h)
    assert (err.code, err.http_status, err.message) == (
        "InvalidAccessKeyId.NotFound", 404, "Specified access key is not found.")


def test_rpc_nonce_replay_and_timestamp_window() -> None:
    v = Verifier()
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, nonce="once")
    v.verify("GET", "/", q, h, b"")
    assert refused(v, "GET", q, h).code == "SignatureNonceUsed"
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, timestamp="2001-01-01T00:00:00Z")
    assert refused(Verifier(), "GET", q, h).code == "InvalidTimeStamp.Expired"
    assert Verifier(check_clock=False).verify("GET", "/", q, h, b"").access_key_id == AK
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, timestamp="yesterday")
    assert refused(Verifier(), "GET", q, h).code == "InvalidTimeStamp.Format"


def test_rpc_failed_signature_does_not_consume_the_nonce() -> None:
    v = Verifier()
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, nonce="n-x", secret="bad")
    refused(v, "GET", q, h)
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, nonce="n-x")
    assert v.verify("GET", "/", q, h, b"").access_key_id == AK


@pytest.mark.parametrize("param, code", [
    ("Timestamp", "MissingTimestamp"), ("SignatureNonce", "MissingSignatureNonce"),
    ("Signature", "MissingSignature"),
])
def test_rpc_missing_signing_parameter(param: str, code: str) -> None:
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"})
    fields = [f for f in q.split("&") if not f.startswith(f"{param}=")]
    err = refused(Verifier(), "GET", "&".join(fields), h)
    assert (err.code, err.http_status, err.message) == (
        code, 400, f"{param} is mandatory for this action.")


@pytest.mark.parametrize("extra, code", [
    ({"SignatureMethod": "HMAC-SHA256"}, "InvalidSignatureMethod"),
    ({"SignatureVersion": "2.0"}, "InvalidSignatureVersion"),
])
def test_rpc_unsupported_method_or_version(extra: dict[str, str], code: str) -> None:
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"}, extra=extra)
    assert refused(Verifier(), "GET", q, h).code == code


def test_rpc_sts_security_token_checked() -> None:
    creds = Credentials.default()
    creds.add_sts("STS.abc", "sts-secret", "tok-1")
    v = Verifier(creds)
    q, h, _ = rpc_signed({"RegionId": "x"}, ak="STS.abc", secret="sts-secret",
                         extra={"SecurityToken": "tok-1"})
    assert v.verify("GET", "/", q, h, b"").sts is True
    q, h, _ = rpc_signed({"RegionId": "x"}, ak="STS.abc", secret="sts-secret", nonce="n-2",
                         extra={"SecurityToken": "tok-2"})
    assert refused(v, "GET", q, h).code == "InvalidSecurityToken.MismatchWithAccessKey"
    q, h, _ = rpc_signed({"RegionId": "x"}, ak="STS.abc", secret="sts-secret", nonce="n-3")
    assert refused(v, "GET", q, h).code == "InvalidSecurityToken.MissingParameter"


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    q, h, _ = rpc_signed({"RegionId": "cn-hangzhou"})
    q = "&".join(f if not f.startswith("Signature=") else "Signature=%C3%A9" for f in q.split("&"))
    assert refused(Verifier(), "GET", q, h).code == "SignatureDoesNotMatch"
    q, h = acs3_signed({"RegionId": "cn-hangzhou"})
    h["authorization"] = [h["authorization"][0][:-4] + "\xe9\xe9\xe9\xe9"]
    assert refused(Verifier(), "POST", q, h).code == "SignatureDoesNotMatch"


def test_request_without_any_signature_stays_incomplete_signature() -> None:
    err = refused(Verifier(), "GET", "RegionId=cn-hangzhou&Action=DescribeVSwitches",
                  header_map([("host", "x")]))
    assert (err.code, err.http_status) == ("IncompleteSignature", 400)


# -- ACS3-HMAC-SM3 -------------------------------------------------------------------------------
def acs3_signed(query: Mapping[str, str], *, algorithm: str = "ACS3-HMAC-SHA256",
                secret: str = SECRET, body: bytes = b"", payload_algorithm: str | None = None,
                nonce: str = "n-1") -> tuple[str, dict[str, list[str]]]:
    """A request signed by the new SDK's ``get_authorization`` in ``algorithm``."""
    payload = Utils.hash(body, payload_algorithm or algorithm).hex()
    headers = {
        "host": "127.0.0.1:18080", "x-acs-version": "2014-05-26",
        "x-acs-action": "DescribeNetworkInterfaces", "x-acs-date": _now(),
        "x-acs-signature-nonce": nonce, "x-acs-content-sha256": payload,
    }
    req = SimpleNamespace(method="POST", pathname="/", query=dict(query), headers=headers)
    headers["Authorization"] = Utils.get_authorization(req, algorithm, payload, AK, secret)
    return urlencode(query), header_map(headers.items())


def test_acs3_hmac_sm3_is_accepted() -> None:
    q, h = acs3_signed(AWKWARD, algorithm=SM3_ALGORITHM, body=b"")
    principal = Verifier().verify("POST", "/", q, h, b"")
    assert (principal.access_key_id, principal.algorithm) == (AK, SM3_ALGORITHM)
    q, h = acs3_signed({"A": "1"}, algorithm=SM3_ALGORITHM, body=b"a=1", nonce="n-2")
    assert Verifier().verify("POST", "/", q, h, b"a=1").algorithm == SM3_ALGORITHM


def test_acs3_hmac_sm3_wrong_secret_body_and_payload_hash() -> None:
    q, h = acs3_signed({"A": "1"}, algorithm=SM3_ALGORITHM, secret="not-it")
    err = refused(Verifier(), "POST", q, h)
    assert (err.code, err.http_status) == ("SignatureDoesNotMatch", 400)
    assert err.message.startswith(f"{MISMATCH}{SM3_ALGORITHM} ") and "not-it" not in err.message
    q, h = acs3_signed({"A": "1"}, algorithm=SM3_ALGORITHM, body=b"a=1")
    assert refused(Verifier(), "POST", q, h, b"a=2").code == "SignatureDoesNotMatch"
    # an SM3 signature over a SHA-256 payload hash: the body hash is SM3's in this style
    q, h = acs3_signed({"A": "1"}, algorithm=SM3_ALGORITHM, payload_algorithm="ACS3-HMAC-SHA256")
    assert refused(Verifier(), "POST", q, h).message.endswith("Body hash differs.")


def test_acs3_unknown_algorithm_is_incomplete() -> None:
    q, h = acs3_signed({"A": "1"})
    h["authorization"] = [h["authorization"][0].replace("ACS3-HMAC-SHA256", "ACS3-RSA-SHA256")]
    err = refused(Verifier(), "POST", q, h)
    assert err.code == "IncompleteSignature" and "ACS3-HMAC-SM3" in err.message


# -- the gateway takes action and version from the signed parameters ----------------------------
def test_gateway_rpc_request_without_acs_headers_reaches_the_model_clean(
        monkeypatch: pytest.MonkeyPatch) -> None:
    emu = Emulator.create(seed=1)
    seen: list[tuple[str, str, dict[str, Any]]] = []
    real = emu.dispatch

    def spy(product: str, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        seen.append((product, action, dict(params)))
        return real(product, action, params)

    monkeypatch.setattr(emu, "dispatch", spy)
    q, h, b = rpc_signed({"RegionId": "cn-hangzhou"}, method="POST",
                         form={"CidrBlock": "10.0.0.0/8"}, extra={"Action": "CreateVpc"})
    h["x-acs-action"] = ["DeleteVpc"]  # unsigned in this style: the signed Action wins
    resp = Gateway(emu).handle(WireRequest("POST", "/", q, h, b))
    assert resp.status == 200, resp.body
    [(product, action, params)] = seen
    assert (product, action) == ("vpc", "CreateVpc")
    assert params == {"RegionId": "cn-hangzhou", "CidrBlock": "10.0.0.0/8"}


def test_gateway_rpc_refusal_names_the_product_of_the_query_version() -> None:
    emu = Emulator.create(seed=1)
    q, h, b = rpc_signed({"RegionId": "cn-hangzhou"}, secret="bad")
    resp = Gateway(emu).handle(WireRequest("GET", "/", q, h, b))
    assert resp.status == 400 and b'"HostId":"vpc.aliyuncs.com"' in resp.body
    assert b"SignatureDoesNotMatch" in resp.body
