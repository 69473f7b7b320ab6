"""SdkCloud (official SDK, signed requests) against the emulator: in-process and over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.ratelimit import RateLimits
from terway.cloud.retry import Backoff
from terway.cloud.sdk import SdkCloud, SdkConfig
from tests.cloud.emuworld import FakeTime, World, build_world, emulator_credentials

pytest.importorskip("emulator.actions", reason="emulator model not installed")

TAGS = {"creator": "terway", "node": "i-node1"}


def make_cloud(endpoint: str, ft: FakeTime, calls: list[tuple[str, str]] | None = None,
               **kw: Any) -> SdkCloud:
    return SdkCloud(
        SdkConfig(region_id="cn-hangzhou", endpoint=endpoint, page_size=kw.pop("page_size", 100)),
        kw.pop("credentials", emulator_credentials()),
        sleep=ft.sleep, clock=ft.now, rng=ft.rng,
        on_call=(lambda api, s, err: calls.append((api, err))) if calls is not None else None,
        **kw,
    )


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def mocked(world: World) -> Iterator[World]:
    from emulator import mock_aliyun

    with mock_aliyun(world.emulator, endpoint="ecs-emulated.example"):
        yield world


ENDPOINT = "http://ecs-emulated.example"


def lifecycle(cloud: SdkCloud, w: World) -> None:
    limits = cloud.describe_instance_type("ecs.g6.xlarge")
    assert (limits.eni_quantity, limits.ips_per_eni) == (3, 10)

    (vsw,) = cloud.describe_vswitches([w.vswitch_id])
    assert (vsw.zone_id, vsw.cidr) == ("cn-hangzhou-i", "192.168.1.0/24")
    before = vsw.available_ip_count

    eni = cloud.create_network_interface(
        vswitch_id=w.vswitch_id, security_group_ids=[w.sg_id], secondary_ip_count=2,
        tags=TAGS, client_token="terway-i-node1-slot1-gen1")
    assert eni.eni_id.startswith("eni-") and eni.status == "Available"
    assert len(eni.private_ips) == 3 and eni.private_ips[0] == eni.primary_ip
    # The same ClientToken never creates twice (a retry after a crash).
    again = cloud.create_network_interface(
        vswitch_id=w.vswitch_id, security_group_ids=[w.sg_id], secondary_ip_count=2,
        tags=TAGS, client_token="terway-i-node1-slot1-gen1")
    assert again.eni_id == eni.eni_id
    assert len(cloud.describe_network_interfaces(tags={"creator": "terway"})) == 1

    cloud.attach_network_interface(eni.eni_id, w.instance_id)
    w.emulator.cloud.settle()
    (seen,) = cloud.describe_network_interfaces(eni_ids=[eni.eni_id])
    assert (seen.status, seen.instance_id) == ("InUse", w.instance_id)
    assert dict(seen.tags) == TAGS
    assert seen.security_group_ids == (w.sg_id,)

    new_ips = cloud.assign_private_ips(eni.eni_id, 3)
    assert len(new_ips) == 3
    (seen,) = cloud.describe_network_interfaces(instance_id=w.instance_id, eni_ids=[eni.eni_id])
    assert set(new_ips) <= set(seen.secondary_ips) and len(seen.private_ips) == 6
    (vsw,) = cloud.describe_vswitches([w.vswitch_id])
    assert vsw.available_ip_count == before - 6

    cloud.unassign_private_ips(eni.eni_id, new_ips)
    (seen,) = cloud.describe_network_interfaces(eni_ids=[eni.eni_id])
    assert len(seen.private_ips) == 3

    cloud.detach_network_interface(eni.eni_id, w.instance_id)
    w.emulator.cloud.settle()
    (seen,) = cloud.describe_network_interfaces(eni_ids=[eni.eni_id])
    assert seen.status == "Available" and not seen.instance_id
    cloud.delete_network_interface(eni.eni_id)
    assert cloud.describe_network_interfaces(eni_ids=[eni.eni_id]) == []
    with pytest.raises(CloudError) as info:
        cloud.delete_network_interface(eni.eni_id)
    assert info.value.error_class is ErrorClass.NOT_FOUND


def test_full_eni_lifecycle_in_process(mocked: World) -> None:
    ft = FakeTime()
    calls: list[tuple[str, str]] = []
    lifecycle(make_cloud(ENDPOINT, ft, calls), mocked)
    assert ("CreateNetworkInterface", "") in calls and ("DeleteNetworkInterface", "") in calls
    assert ("DeleteNetworkInterface", "InvalidEniId.NotFound") in calls
    assert ft.sleeps == []          # burst covers everything: no limiter wait, no retry


def test_ip_not_enough_is_exhausted_with_exact_message(mocked: World) -> None:
    cloud = make_cloud(ENDPOINT, FakeTime())
    with pytest.raises(CloudError) as info:
        cloud.create_network_interface(
            vswitch_id=mocked.small_vswitch_id, security_group_ids=[mocked.sg_id],
            secondary_ip_count=9, tags=TAGS, client_token="t-small")
    err = info.value
    assert err.code == "InvalidVSwitchId.IpNotEnough"
    assert err.error_class is ErrorClass.EXHAUSTED
    assert err.http_status == 403
    vsw = mocked.small_vswitch_id
    assert err.message == f'The specified VSwitch "{vsw}" has not enough IpAddress.'
    assert err.request_id
    assert str(err).startswith(f"Aliyun API Error: RequestId: {err.request_id} Status Code: 403 ")


def test_throttled_is_retried_then_succeeds(mocked: World) -> None:
    mocked.faults.fail("AssignPrivateIpAddresses", "Throttling.User",
                       "Request was denied due to user flow control.", 400, times=2)
    ft = FakeTime()
    calls: list[tuple[str, str]] = []
    cloud = make_cloud(ENDPOINT, ft, calls)
    eni = cloud.create_network_interface(
        vswitch_id=mocked.vswitch_id, security_group_ids=[mocked.sg_id], secondary_ip_count=0,
        tags=TAGS, client_token="t-throttle")
    assert len(cloud.assign_private_ips(eni.eni_id, 2)) == 2
    assigns = [err for api, err in calls if api == "AssignPrivateIpAddresses"]
    assert assigns == ["Throttling.User", "Throttling.User", ""]
    assert len(ft.sleeps) == 2 and all(5.0 <= s <= 5.0 * 2.3 for s in ft.sleeps)


def test_throttled_forever_gives_up_throttled(mocked: World) -> None:
    mocked.faults.fail("AssignPrivateIpAddresses", "Throttling", "Request was denied due to "
                       "flow control.", 400, times=-1)
    ft = FakeTime()
    retries: list[int] = []
    cloud = make_cloud(ENDPOINT, ft, on_retry=lambda api, n, err, d: retries.append(n))
    eni = cloud.create_network_interface(
        vswitch_id=mocked.vswitch_id, security_group_ids=[mocked.sg_id], secondary_ip_count=0,
        tags=TAGS, client_token="t-forever")
    with pytest.raises(CloudError) as info:
        cloud.assign_private_ips(eni.eni_id, 1)
    assert info.value.error_class is ErrorClass.THROTTLED
    assert retries == [1, 2, 3, 4, 5]                     # 6 attempts, upstream's ENI IP ops
    assert mocked.faults.seen.count("AssignPrivateIpAddresses") == 6


def test_transient_on_create_retried_with_same_token(mocked: World) -> None:
    mocked.faults.fail("CreateNetworkInterface", "InternalError", "The request processing has "
                       "failed due to some unknown error.", 500, times=1)
    cloud = make_cloud(ENDPOINT, FakeTime(), policies={"CreateNetworkInterface":
                                                       Backoff(1.0, 2.0, 3)})
    eni = cloud.create_network_interface(
        vswitch_id=mocked.vswitch_id, security_group_ids=[mocked.sg_id], secondary_ip_count=1,
        tags=TAGS, client_token="t-transient")
    assert len(mocked.emulator.cloud.describe_network_interfaces()) >= 1
    assert eni.eni_id


def test_pagination_collects_every_page(mocked: World) -> None:
    cloud = make_cloud(ENDPOINT, FakeTime(), page_size=4)
    made = {cloud.create_network_interface(
        vswitch_id=mocked.vswitch_id, security_group_ids=[mocked.sg_id], secondary_ip_count=0,
        tags={"creator": "terway", "batch": "p"}, client_token=f"t-page-{i}").eni_id
        for i in range(11)}
    found = cloud.describe_network_interfaces(tags={"batch": "p"})
    assert {e.eni_id for e in found} == made
    assert len(found) == 11


def test_bad_credentials_are_auth(mocked: World) -> None:
    from terway.cloud.credentials import StaticProvider

    cloud = make_cloud(ENDPOINT, FakeTime(), credentials=StaticProvider("nobody", "wrong"))
    with pytest.raises(CloudError) as info:
        cloud.describe_vswitches([mocked.vswitch_id])
    assert info.value.error_class is ErrorClass.AUTH


@pytest.mark.parametrize("token", [5, ["s3cr3t-token"], {"v": "s3cr3t-token"}])
def test_a_malformed_token_file_is_a_named_auth_error_not_an_sdk_exception(
        mocked: World, tmp_path: Path, token: object) -> None:
    """``"SecurityToken": 5`` killed terwayd at start with the SDK's wrapped traceback."""
    from terway.cloud.credentials import TokenFileProvider
    from terway.cloud.sdk import ERR_CREDENTIALS

    path = tmp_path / "token-config"
    path.write_text(json.dumps({"AccessKeyId": "id", "AccessKeySecret": "s3cr3t-key",
                                "SecurityToken": token}))
    cloud = make_cloud(ENDPOINT, FakeTime(), credentials=TokenFileProvider(path))
    with pytest.raises(CloudError) as info:
        cloud.describe_vswitches([mocked.vswitch_id])
    assert info.value.code == ERR_CREDENTIALS and info.value.error_class is ErrorClass.AUTH
    assert "field 'SecurityToken' must be a string" in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_unreachable_endpoint_is_transient_and_retried() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    ft = FakeTime()
    cloud = make_cloud(f"http://127.0.0.1:{port}", ft,
                       policies={"": Backoff(1.0, 1.0, 2)})
    with pytest.raises(CloudError) as info:
        cloud.describe_vswitches(["vsw-x"])
    assert info.value.error_class is ErrorClass.TRANSIENT
    assert ft.sleeps == [1.0]


def test_limiter_delays_are_taken_from_the_bucket(mocked: World) -> None:
    ft = FakeTime()
    cloud = make_cloud(ENDPOINT, ft, limits=RateLimits({"DescribeVSwitches": 60}, burst=1))
    for _ in range(3):
        cloud.describe_vswitches([mocked.vswitch_id])
    assert ft.sleeps == pytest.approx([1.0, 1.0])


# -- the emulator's own fault rules ---------------------------------------------------------------

@pytest.fixture
def ruled() -> Iterator[World]:
    from emulator import mock_aliyun

    w = build_world(real_faults=True)
    with mock_aliyun(w.emulator, endpoint="ecs-emulated.example"):
        yield w


def test_fault_rule_throttling_retried_then_success(ruled: World) -> None:
    ruled.emulator.add_fault({"kind": "error", "action": "AssignPrivateIpAddresses",
                              "code": "Throttling", "message": "Request was denied due to "
                              "flow control.", "http_status": 400, "count": 3})
    ft = FakeTime()
    calls: list[tuple[str, str]] = []
    cloud = make_cloud(ENDPOINT, ft, calls)
    eni = cloud.create_network_interface(
        vswitch_id=ruled.vswitch_id, security_group_ids=[ruled.sg_id], secondary_ip_count=0,
        tags=TAGS, client_token="rule-1")
    assert len(cloud.assign_private_ips(eni.eni_id, 1)) == 1
    assert [e for a, e in calls if a == "AssignPrivateIpAddresses"] == ["Throttling"] * 3 + [""]


def test_fault_rule_throttle_bucket_forever_gives_up(ruled: World) -> None:
    ruled.emulator.add_fault({"kind": "error", "action": "AttachNetworkInterface",
                              "code": "Throttling.User", "http_status": 400,
                              "message": "Request was denied due to user flow control.",
                              "probability": 1.0})
    ft = FakeTime()
    cloud = make_cloud(ENDPOINT, ft)
    eni = cloud.create_network_interface(
        vswitch_id=ruled.vswitch_id, security_group_ids=[ruled.sg_id], secondary_ip_count=0,
        tags=TAGS, client_token="rule-2")
    with pytest.raises(CloudError) as info:
        cloud.attach_network_interface(eni.eni_id, ruled.instance_id)
    assert info.value.code == "Throttling.User"
    assert info.value.error_class is ErrorClass.THROTTLED
    assert len(ft.sleeps) == 5
    # ENI ops back off 5 s x2 (jitter 0.3): 5, 10, 20, 40, 80 stretched by < 30 %.
    for pause, base in zip(ft.sleeps, [5, 10, 20, 40, 80], strict=True):
        assert base <= pause < base * 1.3


# -- over HTTP: a real ``terway-emulator serve`` subprocess ----------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--port", str(port), "--seed", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"terway-emulator serve exited: {proc.stderr.read().decode()[-800:]}"
                        if proc.stderr else "terway-emulator serve exited")
        try:
            urllib.request.urlopen(f"{url}/_emulator/health", timeout=0.5).read()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("terway-emulator serve did not come up")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_lifecycle_against_served_emulator(served: str) -> None:
    """The same lifecycle over real HTTP; the world is built through the SDK-facing API."""
    ft = FakeTime()
    cloud = make_cloud(served, ft)
    body = json.dumps({"seed": 3}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{served}/_emulator/reset", data=body,
                                                  method="POST"), timeout=5).read()
    ecs = cloud._ecs()
    from alibabacloud_ecs20140526 import models as m

    vpc = ecs.create_vpc(m.CreateVpcRequest(region_id="cn-hangzhou",
                                            cidr_block="10.0.0.0/16")).body
    vsw = ecs.create_vswitch(m.CreateVSwitchRequest(
        region_id="cn-hangzhou", vpc_id=vpc.vpc_id, zone_id="cn-hangzhou-i",
        cidr_block="10.0.1.0/24")).body
    sg = ecs.create_security_group(m.CreateSecurityGroupRequest(
        region_id="cn-hangzhou", vpc_id=vpc.vpc_id)).body
    inst = ecs.run_instances(m.RunInstancesRequest(
        region_id="cn-hangzhou", instance_type="ecs.g6.xlarge", v_switch_id=vsw.v_switch_id,
        security_group_id=sg.security_group_id, amount=1)).body
    instance_id = inst.instance_id_sets.instance_id_set[0]

    eni = cloud.create_network_interface(
        vswitch_id=vsw.v_switch_id, security_group_ids=[sg.security_group_id],
        secondary_ip_count=1, tags=TAGS, client_token="served-1")
    cloud.attach_network_interface(eni.eni_id, instance_id)
    deadline = time.monotonic() + 10          # `serve` attaches asynchronously, as ECS does
    while cloud.describe_network_interfaces(eni_ids=[eni.eni_id])[0].status != "InUse":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ips = cloud.assign_private_ips(eni.eni_id, 2)
    (seen,) = cloud.describe_network_interfaces(eni_ids=[eni.eni_id])
    assert seen.instance_id == instance_id and set(ips) <= set(seen.private_ips)
    cloud.unassign_private_ips(eni.eni_id, ips)
    cloud.detach_network_interface(eni.eni_id, instance_id)
    deadline = time.monotonic() + 10
    while cloud.describe_network_interfaces(eni_ids=[eni.eni_id])[0].status != "Available":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cloud.delete_network_interface(eni.eni_id)
    assert cloud.describe_network_interfaces(eni_ids=[eni.eni_id]) == []


def test_fault_rule_over_control_endpoint(served: str) -> None:
    """A rule posted to /_emulator/faults: throttled twice, retried, then through."""
    ft = FakeTime()
    cloud = make_cloud(served, ft)
    (vsw,) = cloud.describe_vswitches([_any_vswitch(cloud)])
    rule = {"kind": "error", "action": "DescribeVSwitches", "code": "Throttling",
            "message": "Request was denied due to flow control.", "http_status": 400, "count": 2}
    urllib.request.urlopen(urllib.request.Request(
        f"{served}/_emulator/faults", data=json.dumps(rule).encode(), method="POST",
        headers={"Content-Type": "application/json"}), timeout=5).read()
    ft.sleeps.clear()
    (v,) = cloud.describe_vswitches([vsw.vswitch_id])
    assert v.vswitch_id == vsw.vswitch_id and len(ft.sleeps) == 2


def _any_vswitch(cloud: SdkCloud) -> str:
    from alibabacloud_ecs20140526 import models as m

    body = cloud._ecs().describe_vswitches(m.DescribeVSwitchesRequest(
        region_id="cn-hangzhou")).body.to_map()
    return str(body["VSwitches"]["VSwitch"][0]["VSwitchId"])
