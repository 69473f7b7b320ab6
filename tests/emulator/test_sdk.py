"""Every action through the unmodified official SDK, on both front ends (HTTP server and mock)."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException

from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID
from tests.emulator.test_sdk_harness import FRONT_ENDS, ZONE, Harness, build_world, front_end


@pytest.fixture(params=FRONT_ENDS)
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with front_end(request.param) as harness:
        yield harness


def enis(h: Harness, **filters: object) -> list[dict[str, object]]:
    body = h.ecs("DescribeNetworkInterfaces", **filters)
    return list(body["NetworkInterfaceSets"]["NetworkInterfaceSet"])


def test_world_and_eni_lifecycle_through_every_action(h: Harness) -> None:
    w = build_world(h)
    vsws = h.vpc("DescribeVSwitches", VpcId=w.vpc_id)["VSwitches"]["VSwitch"]
    assert [v["VSwitchId"] for v in vsws] == [w.vswitch_id]
    assert vsws[0]["AvailableIpAddressCount"] == 252 - 1  # the instance's primary IP

    inst = h.ecs("DescribeInstances", InstanceIds=json.dumps([w.instance_id]))
    [instance] = inst["Instances"]["Instance"]
    assert (instance["InstanceType"], instance["Status"]) == ("ecs.g6.large", "Running")
    types = h.ecs("DescribeInstanceTypes", InstanceTypes=["ecs.g6.large", "ecs.g6.26xlarge"])
    limits = {t["InstanceTypeId"]: (t["EniQuantity"], t["EniPrivateIpAddressQuantity"])
              for t in types["InstanceTypes"]["InstanceType"]}
    assert limits == {"ecs.g6.large": (2, 6), "ecs.g6.26xlarge": (15, 20)}

    created = h.ecs("CreateNetworkInterface", VSwitchId=w.vswitch_id,
                    SecurityGroupIds=[w.sg_id], SecondaryPrivateIpAddressCount=1,
                    Tag=[{"Key": "creator", "Value": "terway"}], Description="pod eni")
    eni_id = created["NetworkInterfaceId"]
    assert created["Status"] == "Available"
    h.ecs("AttachNetworkInterface", NetworkInterfaceId=eni_id, InstanceId=w.instance_id)
    attr = h.ecs("DescribeNetworkInterfaceAttribute", NetworkInterfaceId=eni_id)
    assert (attr["Status"], attr["InstanceId"]) == ("InUse", w.instance_id)

    assigned = h.ecs("AssignPrivateIpAddresses", NetworkInterfaceId=eni_id,
                     SecondaryPrivateIpAddressCount=3)
    ips = assigned["AssignedPrivateIpAddressesSet"]["PrivateIpSet"]["PrivateIpAddress"]
    assert len(ips) == 3
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("192.168.1.0/24") for ip in ips)
    h.ecs("UnassignPrivateIpAddresses", NetworkInterfaceId=eni_id, PrivateIpAddress=ips[:2])
    attr = h.ecs("DescribeNetworkInterfaceAttribute", NetworkInterfaceId=eni_id)
    held = [s["PrivateIpAddress"] for s in attr["PrivateIpSets"]["PrivateIpSet"]]
    assert len(held) == 3 and ips[2] in held and ips[0] not in held

    h.ecs("DetachNetworkInterface", NetworkInterfaceId=eni_id, InstanceId=w.instance_id)
    assert h.ecs("DescribeNetworkInterfaceAttribute", NetworkInterfaceId=eni_id)["Status"] == (
        "Available")
    h.ecs("DeleteNetworkInterface", NetworkInterfaceId=eni_id)
    with pytest.raises(ClientException) as info:
        h.ecs("DescribeNetworkInterfaceAttribute", NetworkInterfaceId=eni_id)
    assert (info.value.code, info.value.status_code) == ("InvalidEniId.NotFound", 404)

    spare = h.vpc("CreateVSwitch", VpcId=w.vpc_id, ZoneId=ZONE, CidrBlock="192.168.9.0/29")
    h.vpc("DeleteVSwitch", VSwitchId=spare["VSwitchId"])
    left = h.vpc("DescribeVSwitches", VpcId=w.vpc_id)["VSwitches"]["VSwitch"]
    assert [v["VSwitchId"] for v in left] == [w.vswitch_id]
    assert left[0]["AvailableIpAddressCount"] == 251


def test_describe_network_interfaces_paged_and_filtered(h: Harness) -> None:
    w = build_world(h)
    made = []
    for i in range(5):
        team = "a" if i % 2 == 0 else "b"
        made.append(h.ecs("CreateNetworkInterface", VSwitchId=w.vswitch_id,
                          SecurityGroupIds=[w.sg_id], Tag=[{"Key": "team", "Value": team}],
                          )["NetworkInterfaceId"])
    h.ecs("AttachNetworkInterface", NetworkInterfaceId=made[0], InstanceId=w.instance_id)

    pages = [h.ecs("DescribeNetworkInterfaces", VSwitchId=w.vswitch_id, Type="Secondary",
                   PageNumber=n, PageSize=2) for n in (1, 2, 3)]
    assert [p["TotalCount"] for p in pages] == [5, 5, 5]
    seen = [e["NetworkInterfaceId"] for p in pages
            for e in p["NetworkInterfaceSets"]["NetworkInterfaceSet"]]
    assert seen == made

    token, walked = "", []
    while True:
        page = h.ecs("DescribeNetworkInterfaces", Type="Secondary", MaxResults=2,
                     **({"NextToken": token} if token else {}))
        walked += [e["NetworkInterfaceId"]
                   for e in page["NetworkInterfaceSets"]["NetworkInterfaceSet"]]
        token = page["NextToken"]
        if not token:
            break
    assert walked == made

    team_a = enis(h, Tag=[{"Key": "team", "Value": "a"}])
    assert [e["NetworkInterfaceId"] for e in team_a] == made[0::2]
    by_id = enis(h, NetworkInterfaceId=[made[3], made[1]])
    assert {e["NetworkInterfaceId"] for e in by_id} == {made[1], made[3]}
    in_use = enis(h, Status="InUse", Type="Secondary")
    assert [e["NetworkInterfaceId"] for e in in_use] == [made[0]]
    on_node = enis(h, InstanceId=w.instance_id)
    assert made[0] in {e["NetworkInterfaceId"] for e in on_node}


def test_ip_not_enough_on_a_28_is_403_with_exact_message(h: Harness) -> None:
    w = build_world(h, cidr="192.168.1.0/28")  # 12 usable, the instance holds 1
    eni_id = h.ecs("CreateNetworkInterface", VSwitchId=w.vswitch_id, SecurityGroupIds=[w.sg_id],
                   SecondaryPrivateIpAddressCount=10)["NetworkInterfaceId"]
    [vsw] = h.vpc("DescribeVSwitches", VSwitchId=w.vswitch_id)["VSwitches"]["VSwitch"]
    assert vsw["AvailableIpAddressCount"] == 0
    before = h.emu.snapshot()
    with pytest.raises(ClientException) as info:
        h.ecs("AssignPrivateIpAddresses", NetworkInterfaceId=eni_id,
              SecondaryPrivateIpAddressCount=1)
    err = info.value
    assert (err.code, err.status_code) == ("InvalidVSwitchId.IpNotEnough", 403)
    assert err.data["statusCode"] == 403
    message = f'The specified VSwitch "{w.vswitch_id}" has not enough IpAddress.'
    assert err.data["Message"] == message
    assert set(err.data) >= {"RequestId", "HostId", "Code", "Message"}
    assert h.emu.snapshot() == before


def test_wrong_secret_and_unknown_key_are_refused_and_change_nothing(h: Harness) -> None:
    before = h.emu.snapshot()
    with pytest.raises(ClientException) as info:
        h.vpc("CreateVpc", client=h.vpc_client(secret="not-the-secret"), CidrBlock="10.0.0.0/8")
    assert (info.value.code, info.value.status_code) == ("SignatureDoesNotMatch", 400)
    assert "not-the-secret" not in json.dumps(info.value.data)
    with pytest.raises(ClientException) as info:
        h.vpc("CreateVpc", client=h.vpc_client(ak="LTAInobody"), CidrBlock="10.0.0.0/8")
    assert (info.value.code, info.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    assert h.emu.snapshot() == before
    assert h.vpc("CreateVpc", CidrBlock="10.0.0.0/8")["VpcId"].startswith("vpc-")


def test_fault_latency_is_seen_by_the_sdk(h: Harness) -> None:
    w = build_world(h)
    eni_id = h.ecs("CreateNetworkInterface", VSwitchId=w.vswitch_id,
                   SecurityGroupIds=[w.sg_id])["NetworkInterfaceId"]
    rule = {"kind": "latency", "action": "AssignPrivateIpAddresses",
            "distribution": "constant", "value": 0.1}
    assert h.control("POST", "faults", rule).status_code == 200
    started = time.monotonic()
    h.ecs("AssignPrivateIpAddresses", NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=1)
    assert time.monotonic() - started >= 0.1  # a lower bound set by the injected delay


def test_throttle_rule_answers_throttling_user(h: Harness) -> None:
    build_world(h)
    h.emu.add_fault({"kind": "throttle", "action": "DescribeVSwitches", "rate": 5, "burst": 5})
    client, codes = h.vpc_client(), []
    for _ in range(20):
        try:
            h.vpc("DescribeVSwitches", client=client)
            codes.append("ok")
        except ClientException as err:
            assert err.status_code == 400
            assert err.data["Message"] == "Request was denied due to user flow control."
            codes.append(err.code)
    assert "ok" in codes and "Throttling.User" in codes
    assert set(codes) == {"ok", "Throttling.User"}


def test_error_rule_refuses_before_the_model(h: Harness) -> None:
    w = build_world(h)
    h.emu.add_fault({"kind": "error", "action": "CreateNetworkInterface",
                     "code": "InternalError", "count": 1})
    before = h.emu.snapshot()
    from alibabacloud_tea_openapi.exceptions import ServerException

    with pytest.raises(ServerException) as info:
        h.ecs("CreateNetworkInterface", VSwitchId=w.vswitch_id, SecurityGroupIds=[w.sg_id])
    assert (info.value.code, info.value.status_code) == ("InternalError", 500)
    assert h.emu.snapshot() == before
    h.ecs("CreateNetworkInterface", VSwitchId=w.vswitch_id, SecurityGroupIds=[w.sg_id])


def test_metadata_for_an_instance_over_http(h: Harness) -> None:
    w = build_world(h)
    [primary] = enis(h, InstanceId=w.instance_id)
    base = f"/instances/{w.instance_id}/latest/meta-data/"
    mac = h.get(base + "mac")
    assert mac.status_code == 200 and mac.headers["Content-Type"].startswith("text/plain")
    assert mac.text == primary["MacAddress"]
    per_mac = f"{base}network/interfaces/macs/{mac.text}/"
    assert json.loads(h.get(per_mac + "private-ipv4s").text) == [primary["PrivateIpAddress"]]
    assert h.get(per_mac + "vswitch-cidr-block").text == "192.168.1.0/24"
    assert h.get(per_mac + "gateway").text == "192.168.1.253"
    assert h.get(per_mac + "network-interface-id").text == primary["NetworkInterfaceId"]
    assert "mac" in h.get(base).text.splitlines()
    assert h.get(base + "no-such-thing").status_code == 404
    assert h.get("/instances/i-missing/latest/meta-data/mac").status_code == 404
    assert h.get("/latest/meta-data/mac").status_code == 404  # no default instance chosen
    h.emu.metadata_instance = w.instance_id
    assert h.get("/latest/meta-data/instance-id").text == w.instance_id


def test_control_reset_snapshot_and_faults(h: Harness) -> None:
    build_world(h)
    snap = h.control("GET", "snapshot").json()
    assert len(snap["instances"]) == 1
    added = h.control("POST", "faults", {"kind": "error", "action": "X", "code": "InternalError",
                                         "probability": 1.0, "id": "boom"}).json()
    assert added == {"ids": ["boom"]}
    assert [r["id"] for r in h.control("GET", "faults").json()["rules"]] == ["boom"]
    bad = h.control("POST", "faults", {"kind": "latency", "action": "*"})
    assert bad.status_code == 400 and "distribution" in bad.json()["error"]
    assert h.control("DELETE", "faults/nope").status_code == 404
    assert h.control("DELETE", "faults/boom").status_code == 200
    assert h.control("GET", "faults").json()["rules"] == []
    assert h.control("POST", "reset").json() == {"ok": True}
    assert h.control("GET", "snapshot").json()["instances"] == []
    assert h.control("GET", "health").json()["access_key_ids"] == [DEFAULT_ACCESS_KEY_ID]


def test_control_loads_a_world_and_refuses_a_bad_one(h: Harness) -> None:
    world = {"seed": 3, "vpcs": [{"name": "v", "cidr": "10.0.0.0/16", "vswitches": [
        {"name": "s", "zone": ZONE, "cidr": "10.0.1.0/24"}], "security_groups": [{"name": "g"}]}],
        "instances": [{"name": "n", "type": "ecs.g6.large", "vswitch": "s"}]}
    r = h.control("POST", "world", world)
    assert r.status_code == 200, r.text
    assert len(h.control("GET", "snapshot").json()["instances"]) == 1
    before = h.emu.snapshot()
    world["vpcs"][0]["vswitches"][0]["cidr"] = "10.9.0.0/33"  # type: ignore[index]
    bad = h.control("POST", "world", world)
    assert bad.status_code == 400 and "cidr" in bad.json()["error"]
    assert h.emu.snapshot() == before


def test_wrong_version_and_unknown_action(h: Harness) -> None:
    from alibabacloud_tea_openapi import models as open_api
    from alibabacloud_tea_openapi.client import Client as OpenApiClient
    from darabonba.runtime import RuntimeOptions

    client = OpenApiClient(h.config(h.ecs_endpoint, DEFAULT_ACCESS_KEY_ID, "emulator-secret"))
    req = open_api.OpenApiRequest(query={"RegionId": "cn-hangzhou"})

    def call(action: str, version: str) -> ClientException:
        params = open_api.Params(action=action, version=version, protocol=h.protocol,
                                 pathname="/", method="POST", auth_type="AK", style="RPC",
                                 req_body_type="formData", body_type="json")
        with pytest.raises(ClientException) as info:
            client.call_api(params, req, RuntimeOptions())
        return info.value

    err = call("DescribeVSwitches", "2099-01-01")
    assert (err.code, err.status_code) == ("InvalidVersion", 400)
    err = call("NoSuchAction", "2014-05-26")
    assert (err.code, err.status_code) == ("InvalidAction.NotFound", 404)
