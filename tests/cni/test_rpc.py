"""terway.rpc.messages: codec and client/server round trips."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from terway.cloud.errors import CloudError
from terway.rpc import messages as rpc
from tests.cni.fakedaemon import FakeDaemon
from tests.cni.plugin import misbehaving_daemon


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
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b'{"v":1,"method":"Admin.Mapping","params":' + b"[" * 5000, "nested too deeply"),
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
            client.gc(())
        assert info_err.value.retryable and info_err.value.code == rpc.ERR_IN_FLIGHT


def test_client_reports_missing_socket() -> None:
    with pytest.raises(rpc.RpcError) as info:
        rpc.RpcClient("/nonexistent/eni.socket", timeout=1).status()
    assert info.value.code == rpc.ERR_UNREACHABLE
    assert "/nonexistent/eni.socket" in info.value.message


def test_client_timeout_bounds_the_whole_exchange_against_a_trickling_peer(
        tmp_path: Path) -> None:
    """A peer that sends a byte every 50 ms (never a newline) held the client for ever: its
    timeout was per read. Now it is total; the thread join is only a hang guard."""
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        conn.recv(65536)
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                return
            time.sleep(0.05)

    errors: list[rpc.RpcError] = []
    with misbehaving_daemon(os.path.join(tmp_path, "t.sock"), trickle) as path:
        def call() -> None:
            try:
                rpc.RpcClient(path, timeout=1).status()
            except rpc.RpcError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(30)
        stop.set()
    assert not caller.is_alive(), "the client is still reading from a trickling peer"
    assert [e.code for e in errors] == [rpc.ERR_TIMEOUT]
