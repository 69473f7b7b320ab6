"""terway.rpc codec and client/server round trips."""

from __future__ import annotations

import pytest

from cni.fakedaemon import FakeDaemon
from terway import rpc
from terway.cloud.errors import CloudError


def test_round_trip_every_method() -> None:
    reqs = [
        rpc.AllocIPRequest("p", "ns", "cid", "/var/run/netns/x", "eth0", mtu=1400),
        rpc.ReleaseIPRequest("p", "ns", "cid", "eth0"),
        rpc.GetIPInfoRequest("p", "ns", "cid", "eth0", netns="/x"),
        rpc.RecordEventRequest("p", "ns", "AllocIPFailed", "boom"),
        rpc.StatusRequest(),
        rpc.GCRequest((rpc.Attachment("a", "eth0"), rpc.Attachment("b", "net1"))),
    ]
    for req in reqs:
        method, back = rpc.decode_request(rpc.encode_request(req))
        assert back == req and rpc.METHODS[method][0] is type(req)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"nope", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"v":2,"method":"Status"}', "request.v"),
        (b'{"v":1}', "request.method"),
        (b'{"v":1,"method":"Frob"}', "unknown method 'Frob'"),
        (b'{"v":1,"method":"AllocIP","params":{"pod_name":"p"}}', "params.pod_namespace"),
        (b'{"v":1,"method":"AllocIP","params":{"pod_name":1}}', "params.pod_name"),
        (
            b'{"v":1,"method":"AllocIP","params":{"pod_name":"a","pod_namespace":"b",'
            b'"container_id":"c","netns":"d","ifname":"e","mtu":true}}',
            "params.mtu: expected an integer",
        ),
        (b'{"v":1,"method":"GC","params":{"valid_attachments":{}}}', "expected a list"),
        (
            b'{"v":1,"method":"GC","params":{"valid_attachments":[{"container_id":"a"}]}}',
            "params.valid_attachments[0].ifname",
        ),
    ],
)
def test_bad_requests_name_the_field(line: bytes, needle: str) -> None:
    with pytest.raises(rpc.RpcError) as info:
        rpc.decode_request(line)
    assert needle in info.value.message
    assert info.value.error_class == rpc.CLASS_INVALID


def test_unknown_fields_are_ignored() -> None:
    line = b'{"v":1,"method":"Status","params":{"future":1}}'
    assert rpc.decode_request(line) == ("Status", rpc.StatusRequest())


def test_cloud_error_keeps_code_class_and_upstream_text() -> None:
    err = rpc.RpcError.from_cloud_error(
        CloudError("InvalidVSwitchId.IpNotEnough", "no free ip", request_id="r-1")
    )
    assert (err.code, err.error_class, err.retryable) == (
        "InvalidVSwitchId.IpNotEnough",
        "exhausted",
        True,
    )
    assert "Code: InvalidVSwitchId.IpNotEnough" in err.message
    with pytest.raises(rpc.RpcError) as back:
        rpc.decode_reply(rpc.encode_error(err), rpc.IPInfo)
    assert back.value.code == err.code and back.value.message == err.message


def test_client_against_server_helper() -> None:
    with FakeDaemon() as daemon:
        client = rpc.RpcClient(daemon.socket, timeout=5)
        assert client.status() == rpc.StatusReply(ready=True)
        info = client.alloc_ip(rpc.AllocIPRequest("p", "ns", "c", "/n", "eth0"))
        assert info.pod_ip == "10.9.0.11"
        daemon.responses["GC"] = rpc.RpcError(rpc.ERR_IN_FLIGHT, rpc.CLASS_BUSY, "busy")
        with pytest.raises(rpc.RpcError) as info_err:
            client.gc([])
        assert info_err.value.retryable and info_err.value.code == rpc.ERR_IN_FLIGHT


def test_client_reports_missing_socket() -> None:
    with pytest.raises(rpc.RpcError) as info:
        rpc.RpcClient("/nonexistent/eni.socket", timeout=1).status()
    assert info.value.code == rpc.ERR_UNREACHABLE
    assert "/nonexistent/eni.socket" in info.value.message
