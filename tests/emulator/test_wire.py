"""The HTTP server and gateway below the SDK: concurrency, routing, control guard, logs."""

from __future__ import annotations

import http.client
import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from alibabacloud_ecs20140526 import models as ecs_models

from emulator.model import ManualClock
from emulator.server import Emulator
from emulator.wire import logfmt
from emulator.wire.gateway import Gateway, WireRequest
from tests.emulator.test_sdk_harness import Harness, World, build_world, call_action, front_end


@pytest.fixture
def http_h() -> Iterator[Harness]:
    with front_end("http") as h:
        yield h


def _get(emu: Emulator, path: str, client_ip: str = "127.0.0.1", method: str = "GET",
         body: bytes = b"") -> tuple[int, bytes]:
    resp = Gateway(emu).handle(WireRequest(method, path, "", {}, body, client_ip))
    return resp.status, resp.body


def test_32_concurrent_sdk_clients_keep_exact_accounting(http_h: Harness) -> None:
    w = build_world(http_h, cidr="192.168.0.0/20")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            client = http_h.ecs_client()
            eni = call_action(client, ecs_models, "CreateNetworkInterface", {
                "RegionId": "cn-hangzhou", "VSwitchId": w.vswitch_id,
                "SecurityGroupIds": [w.sg_id]})["NetworkInterfaceId"]
            for _ in range(3):
                call_action(client, ecs_models, "AssignPrivateIpAddresses", {
                    "RegionId": "cn-hangzhou", "NetworkInterfaceId": eni,
                    "SecondaryPrivateIpAddressCount": 2})
        except BaseException as err:  # collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    snap = http_h.emu.snapshot()
    secondary = [e for e in snap["enis"] if e["eni_type"] == "Secondary"]
    assert len(secondary) == 32
    ips = [ip for e in snap["enis"] for ip in e["private_ips"]]
    assert len(ips) == len(set(ips)) == 1 + 32 * 7
    [vsw] = snap["vswitches"]
    assert vsw["available_ip_count"] == 4092 - len(ips)


def test_keep_alive_and_unsigned_request(http_h: Harness) -> None:
    host, port = http_h.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    for _ in range(3):  # three requests on one connection
        conn.request("POST", "/?RegionId=cn-hangzhou", headers={
            "x-acs-action": "DescribeVSwitches", "x-acs-version": "2016-04-28"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 400 and body["Code"] == "IncompleteSignature"
        assert body["HostId"] == "vpc.aliyuncs.com" and body["RequestId"]
    conn.request("GET", "/_emulator/health", headers={"Connection": "close"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Connection") == "close"
    conn.close()


def _world(emu: Emulator) -> World:
    with front_end("mock", emu) as h:
        return build_world(h)


def test_metadata_by_source_ip_and_default_instance() -> None:
    emu = Emulator.create(seed=1)
    w = _world(emu)
    ip = emu.cloud.get_instance(w.instance_id).primary_ip
    assert _get(emu, "/latest/meta-data/instance-id", client_ip=ip) == (
        200, w.instance_id.encode())
    assert _get(emu, "/latest/meta-data/instance-id", client_ip="10.9.9.9")[0] == 404
    emu.metadata_instance = w.instance_id
    assert _get(emu, "/latest/meta-data/instance-id", client_ip="10.9.9.9")[1] == (
        w.instance_id.encode())
    assert _get(emu, "/latest/meta-data")[1].decode().splitlines()[0] == "hostname"
    assert _get(emu, "/latest/")[1] == b"dynamic/\nmeta-data/\nuser-data"
    assert _get(emu, "/latest/meta-data/mac", method="POST")[0] == 405
    status, token = _get(emu, "/latest/api/token", method="PUT")
    assert status == 200 and len(token) >= 32


def test_control_is_loopback_only_unless_allowed() -> None:
    emu = Emulator.create(seed=1)
    assert _get(emu, "/_emulator/snapshot", client_ip="192.168.1.10")[0] == 403
    assert _get(emu, "/_emulator/snapshot", client_ip="::1")[0] == 200
    emu.allow_remote_control = True
    assert _get(emu, "/_emulator/snapshot", client_ip="192.168.1.10")[0] == 200
    assert _get(emu, "/_emulator/nothing")[0] == 404
    assert _get(emu, "/_emulator/reset", method="GET")[0] == 405


def test_seed_and_clock_control() -> None:
    emu = Emulator.create(seed=1)
    assert _get(emu, "/_emulator/seed", method="POST", body=b'{"seed": "x"}')[0] == 400
    assert _get(emu, "/_emulator/seed", method="POST", body=b"{}")[0] == 400
    assert _get(emu, "/_emulator/seed", method="POST", body=b'{"seed": 42}')[0] == 200
    assert emu.seed == 42 and emu.cloud.seed == 42
    status, body = _get(emu, "/_emulator/clock/advance", method="POST", body=b'{"seconds": 1}')
    assert status == 400 and b"wall-clock" in body
    manual = Emulator.create(seed=1, clock=ManualClock(5.0))
    status, body = _get(manual, "/_emulator/clock/advance", method="POST",
                        body=b'{"seconds": 2.5}')
    assert (status, json.loads(body)) == (200, {"ok": True, "now": 7.5})
    assert _get(manual, "/_emulator/clock/advance", method="POST",
                body=b'{"seconds": -1}')[0] == 400


def test_api_log_lines_are_logfmt_without_secrets(http_h: Harness) -> None:
    stream = io.StringIO()
    logfmt.configure("debug", stream)
    try:
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            http_h.vpc("DescribeVSwitches", client=http_h.vpc_client(secret="hush-hush"))
        http_h.vpc("DescribeVSwitches")
    finally:
        logging.getLogger("emulator").handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert " level=info msg=\"api call\" " in lines[0]   # a refusal: info
    assert " level=debug msg=\"api call\" " in lines[1]  # a success: debug
    assert all(line.startswith("time=") for line in lines)
    assert "code=SignatureDoesNotMatch" in lines[0] and "status=400" in lines[0]
    assert "status=200" in lines[1] and "ak=LTAIemulatorAccessKey" in lines[1]
    assert "hush-hush" not in stream.getvalue() and "emulator-secret" not in stream.getvalue()


def test_logfmt_quotes_awkward_values() -> None:
    line = logfmt.format_fields({"a": "x y", "b": 'q"', "c": "", "d": None, "e": 3})
    assert line == 'a="x y" b="q\\"" c="" e=3'


def test_bad_content_length_is_400_and_closes(http_h: Harness) -> None:
    host, port = http_h.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.putrequest("POST", "/")
    conn.putheader("Content-Length", "lots")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and resp.getheader("Connection") == "close"
    conn.close()
