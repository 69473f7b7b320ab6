"""terway.rpc.cnicodec: the plugin's json-free codec must agree with ``json`` and with
terway.rpc.messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from terway.rpc import cnicodec, messages as rpc

SAMPLES: list[Any] = [
    {"a": 1, "b": [1, 2.5, -3e-7, True, False, None], "c": {"d": "é\u2028\n\"\\"}},
    [],
    {},
    "x",
    0,
    -0.0,
    1e300,
    {"nested": [[{"k": ["v", {"z": 1}]}]], "big": 12345678901234567890},
    {"emoji": "\U0001f600", "ctrl": "\x00\x1f"},
]


@pytest.mark.parametrize("obj", SAMPLES)
def test_dumps_is_json_dumps(obj: Any) -> None:
    assert cnicodec.dumps(obj) == json.dumps(obj, separators=(",", ":"))
    assert cnicodec.dumps(obj, compact=False) == json.dumps(obj)


@pytest.mark.parametrize("obj", SAMPLES)
def test_loads_is_json_loads(obj: Any) -> None:
    for text in (json.dumps(obj), f" \n\t{json.dumps(obj, indent=2)}\r\n "):
        assert cnicodec.loads(text) == json.loads(text)
        assert cnicodec.loads(text.encode()) == json.loads(text.encode())


def test_loads_accepts_a_utf8_bom_in_bytes_like_json() -> None:
    assert cnicodec.loads(b"\xef\xbb\xbf{\"a\": 1}") == {"a": 1}


def test_loads_constants_like_json() -> None:
    got = cnicodec.loads(b"[NaN, Infinity, -Infinity]")
    assert got[0] != got[0] and got[1] == float("inf") and got[2] == float("-inf")


@pytest.mark.parametrize(
    "bad",
    [b"", b"{", b'{"a":1} x', b'{"a":1}{}', b"\xff\xfe", b"[1,]", b'{"a" 1}', "\ufeff{}"],
)
def test_loads_raises_what_json_raises(bad: bytes | str) -> None:
    with pytest.raises(ValueError) as ours:
        cnicodec.loads(bad)
    with pytest.raises(ValueError) as theirs:
        json.loads(bad)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_dumps_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="set"):
        cnicodec.dumps({"a": {1}})


def _hint_kind(hint: str) -> str:
    return {"str": "str", "int": "int", "bool": "bool", "int | None": "int?",
            "tuple[str, ...]": "strs"}[hint]


@pytest.mark.parametrize("method", sorted(cnicodec.RESULTS))
def test_result_fields_follow_rpc_messages(method: str) -> None:
    """cnicodec.RESULTS must describe exactly the reply NamedTuple of the method in messages."""
    cls = rpc.METHODS[method][1]
    want = {}
    for name, hint in cls.__annotations__.items():
        text = str(getattr(hint, "__forward_arg__", hint))
        default = cls._field_defaults.get(name, cnicodec.REQUIRED)
        want[name] = (_hint_kind(text), default)
    assert cnicodec.RESULTS[method] == want


def test_error_classes_shared_with_rpc() -> None:
    assert rpc.RpcError is cnicodec.RpcError
    assert rpc.RETRYABLE_CLASSES is cnicodec.RETRYABLE_CLASSES


def _reply(result: Any) -> bytes:
    return json.dumps({"v": 1, "ok": True, "result": result}).encode()


def test_decode_result_fills_defaults_and_matches_rpc() -> None:
    info = rpc.IPInfo("eniip", "10.0.0.2", 32, "10.0.0.1", "02:00:00:00:00:01", "10.0.0.0/24",
                      problems=("a", "b"))
    got = cnicodec.decode_result("AllocIP", rpc.encode_reply(info).rstrip(b"\n"))
    assert got == {**rpc.to_dict(info), "problems": ("a", "b")}
    minimal = {k: v for k, v in rpc.to_dict(info).items() if k not in info._field_defaults}
    assert cnicodec.decode_result("GetIPInfo", _reply(minimal))["mtu"] == 1500


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"nope", "not JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"v":2,"ok":true}', "reply.v"),
        (b'{"v":1,"ok":false}', "reply.error: missing"),
        (_reply({"released": 1}), "result.released: expected bool"),
        (_reply({}), "result.released: required field missing"),
        (_reply([]), "result: expected an object"),
    ],
)
def test_decode_result_refuses_bad_replies(line: bytes, needle: str) -> None:
    with pytest.raises(rpc.RpcError) as err:
        cnicodec.decode_result("ReleaseIP", line)
    assert err.value.code == rpc.ERR_PROTOCOL and needle in err.value.message


def test_decode_result_raises_the_daemons_error() -> None:
    line = rpc.encode_error(rpc.RpcError("InvalidVSwitchId.IpNotEnough", "exhausted", "no IPs"))
    with pytest.raises(rpc.RpcError) as err:
        cnicodec.decode_result("AllocIP", line.rstrip(b"\n"))
    assert (err.value.code, err.value.error_class, err.value.message) == (
        "InvalidVSwitchId.IpNotEnough", "exhausted", "no IPs")


def test_request_line_is_what_rpc_decodes() -> None:
    params = {"pod_name": "p", "pod_namespace": "ns", "container_id": "c", "netns": "/x",
              "ifname": "eth0", "mtu": None}
    line = cnicodec.dumps({"v": 1, "method": "AllocIP", "params": params}).encode()
    method, req = rpc.decode_request(line)
    assert method == "AllocIP" and req == rpc.AllocIPRequest("p", "ns", "c", "/x", "eth0")


def test_call_unreachable_names_the_socket(tmp_path: Any) -> None:
    path = str(tmp_path / "missing.sock")
    with pytest.raises(rpc.RpcError) as err:
        cnicodec.call(path, 1.0, "Status", {})
    assert err.value.code == rpc.ERR_UNREACHABLE and path in err.value.message
