"""The errors clients branch on are the real API's: code, HTTP status and message (issue 11 item 2).

Each situation is driven through ``dispatch`` (what every front end calls) with the parameters
the SDK sends; the expected rows are the API reference's error tables (docs/emulator.md,
"Errors"). docs/emulator.md carries ``emulator.model.codes``' table verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.actions import dispatch
from emulator.faults import FaultEngine
from emulator.model import ApiError, Cloud, codes
from emulator.server import Emulator

R = {"RegionId": "cn-hangzhou"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"


def call(cloud: Cloud, action: str, product: str = "ecs", **params: str) -> dict[str, Any]:
    return dispatch(cloud, product, action, {**R, **params})


@dataclass
class World:
    cloud: Cloud
    vpc: str
    vsw: str
    sg: str
    node: str

    def eni(self, **params: str) -> str:
        body = call(self.cloud, "CreateNetworkInterface", VSwitchId=self.vsw,
                    SecurityGroupId=self.sg, **params)
        return str(body["NetworkInterfaceId"])


def world(cidr: str = "192.168.0.0/24") -> World:
    cloud = Cloud(seed=3)
    vpc = call(cloud, "CreateVpc", "vpc", CidrBlock="192.168.0.0/16")["VpcId"]
    vsw = call(cloud, "CreateVSwitch", "vpc", VpcId=vpc, ZoneId="cn-hangzhou-h",
               CidrBlock=cidr)["VSwitchId"]
    sg = call(cloud, "CreateSecurityGroup", VpcId=vpc)["SecurityGroupId"]
    node = call(cloud, "RunInstances", InstanceType="ecs.g6.large", VSwitchId=vsw,
                SecurityGroupId=sg)["InstanceIdSets"]["InstanceIdSet"][0]
    return World(cloud, vpc, vsw, sg, node)


def per_eni_limit(w: World) -> None:          # ecs.g6.large: 6 addresses per ENI
    eni = w.eni()
    call(w.cloud, "AttachNetworkInterface", NetworkInterfaceId=eni, InstanceId=w.node)
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=eni,
         SecondaryPrivateIpAddressCount="5")
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=eni,
         SecondaryPrivateIpAddressCount="1")


def vswitch_exhausted_on_run_instances(w: World) -> None:
    small = call(w.cloud, "CreateVSwitch", "vpc", VpcId=w.vpc, ZoneId="cn-hangzhou-h",
                 CidrBlock="192.168.9.0/29")["VSwitchId"]          # 4 usable addresses
    call(w.cloud, "RunInstances", InstanceType="ecs.g6.large", VSwitchId=small,
         SecurityGroupId=w.sg, Amount="5")


def vswitch_exhausted_on_assign(w: World) -> None:
    small = call(w.cloud, "CreateVSwitch", "vpc", VpcId=w.vpc, ZoneId="cn-hangzhou-h",
                 CidrBlock="192.168.9.0/29")["VSwitchId"]
    eni = call(w.cloud, "CreateNetworkInterface", VSwitchId=small, SecurityGroupId=w.sg,
               SecondaryPrivateIpAddressCount="3")["NetworkInterfaceId"]
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=eni,
         SecondaryPrivateIpAddressCount="1")


def address_outside_vswitch(w: World) -> None:
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=w.eni(),
         **{"PrivateIpAddress.1": "10.9.9.9"})


def address_twice(w: World) -> None:
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=w.eni(),
         **{"PrivateIpAddress.1": "192.168.0.60", "PrivateIpAddress.2": "192.168.0.60"})


def address_in_use(w: World) -> None:
    eni = w.eni()
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=eni,
         **{"PrivateIpAddress.1": "192.168.0.60"})
    call(w.cloud, "AssignPrivateIpAddresses", NetworkInterfaceId=w.eni(),
         **{"PrivateIpAddress.1": "192.168.0.60"})


def unassign_primary(w: World) -> None:
    eni = w.eni(PrimaryIpAddress="192.168.0.70")
    call(w.cloud, "UnassignPrivateIpAddresses", NetworkInterfaceId=eni,
         **{"PrivateIpAddress.1": "192.168.0.70"})


def attach_twice(w: World) -> None:
    eni = w.eni()
    call(w.cloud, "AttachNetworkInterface", NetworkInterfaceId=eni, InstanceId=w.node)
    call(w.cloud, "AttachNetworkInterface", NetworkInterfaceId=eni, InstanceId=w.node)


def detach_primary(w: World) -> None:
    primary = call(w.cloud, "DescribeNetworkInterfaces", InstanceId=w.node,
                   Type="Primary")["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]
    call(w.cloud, "DetachNetworkInterface", NetworkInterfaceId=primary["NetworkInterfaceId"],
         InstanceId=w.node)


def attach_across_vpcs(w: World) -> None:
    vpc = call(w.cloud, "CreateVpc", "vpc", CidrBlock="10.0.0.0/16")["VpcId"]
    vsw = call(w.cloud, "CreateVSwitch", "vpc", VpcId=vpc, ZoneId="cn-hangzhou-h",
               CidrBlock="10.0.0.0/24")["VSwitchId"]
    sg = call(w.cloud, "CreateSecurityGroup", VpcId=vpc)["SecurityGroupId"]
    eni = call(w.cloud, "CreateNetworkInterface", VSwitchId=vsw,
               SecurityGroupId=sg)["NetworkInterfaceId"]
    call(w.cloud, "AttachNetworkInterface", NetworkInterfaceId=eni, InstanceId=w.node)


def detach_unknown_instance(w: World) -> None:
    eni = w.eni()
    call(w.cloud, "AttachNetworkInterface", NetworkInterfaceId=eni, InstanceId=w.node)
    call(w.cloud, "DetachNetworkInterface", NetworkInterfaceId=eni,
         InstanceId="i-bp1nosuchinstance000")


def vswitch_outside_vpc(w: World) -> None:
    call(w.cloud, "CreateVSwitch", "vpc", VpcId=w.vpc, ZoneId="cn-hangzhou-h",
         CidrBlock="10.1.0.0/24")


def vswitch_overlap(w: World) -> None:
    call(w.cloud, "CreateVSwitch", "vpc", VpcId=w.vpc, ZoneId="cn-hangzhou-h",
         CidrBlock="192.168.0.128/25")


def vswitch_in_use(w: World) -> None:
    w.eni()
    call(w.cloud, "DeleteVSwitch", "vpc", VSwitchId=w.vsw)


def delete_running_instance(w: World) -> None:
    dispatch(w.cloud, "ecs", "DeleteInstance", {"InstanceId": w.node})


CASES: list[tuple[Callable[[World], None], str, int, str | None]] = [
    (per_eni_limit, "InvalidOperation.Ipv4CountExceeded", 403, None),
    (vswitch_exhausted_on_run_instances, "QuotaExceeded.PrivateIpAddress", 400,
     "Don't have enough private IPs in this switch."),
    (vswitch_exhausted_on_assign, "InvalidVSwitchId.IpNotEnough", 403, None),
    (address_outside_vswitch, "InvalidVSwitchId.IpInvalid", 403,
     "The specified IpAddress is not valid in VSwitch CIDR block."),
    (address_twice, "InvalidIp.IpRepeated", 403, None),
    (address_in_use, "InvalidPrivateIpAddress.Duplicated", 400,
     "Specified private IP address is duplicated."),
    (unassign_primary, "InvalidIp.IpUnassigned", 403,
     "The specified IP is not assigned on this ENI."),
    (attach_twice, "InvalidOperation.InvalidEniState", 400, None),
    (detach_primary, "InvalidOperation.DetachPrimaryEniNotAllowed", 400,
     "Detaching primary ENI from ECS instance is not allowed."),
    (attach_across_vpcs, "InvalidOperation.VpcMismatch", 403, None),
    (detach_unknown_instance, "InvalidEcsId.NotFound", 404, "The specified EcsId is not found."),
    (vswitch_outside_vpc, "InvalidParameter", 400, "Specified CIDR block is not valid in VPC."),
    (vswitch_overlap, "InvalidCidrBlock.Overlapped", 400,
     "Specified CIDR block overlapped with other subnets."),
    (vswitch_in_use, "DependencyViolation", 400, "Specified object has dependent resources."),
    (delete_running_instance, "IncorrectInstanceStatus", 403,
     "The current status of the resource does not support this operation."),
]


@pytest.mark.parametrize(("situation", "code", "status", "message"), CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_the_cloud_answers_with_its_own_code_status_and_message(
        situation: Callable[[World], None], code: str, status: int, message: str | None) -> None:
    w = world()
    with pytest.raises(ApiError) as info:
        situation(w)
    err = info.value
    assert (err.code, err.http_status) == (code, status), err
    if message is not None:
        assert err.message == message
    assert err.request_id
    assert any(row.code == code and row.status == status for row in codes.TABLE), code


def test_force_deletes_a_running_instance() -> None:
    w = world()
    dispatch(w.cloud, "ecs", "DeleteInstance", {"InstanceId": w.node, "Force": "true"})
    assert w.cloud.describe_instances() == []
    with pytest.raises(ApiError) as info:
        call(w.cloud, "DeleteInstances", **{"InstanceId.1": "i-bp1nosuchinstance000"})
    assert info.value.code == "InvalidInstanceId.NotFound"


# -- injected faults answer as the real cloud ----------------------------------------------------
def test_injected_forbidden_ram_is_403_with_the_real_message() -> None:
    engine = FaultEngine()
    engine.add_rule({"kind": "error", "action": "*", "code": "Forbidden.RAM", "count": 1})
    err = engine.decide("CreateNetworkInterface", {}, 0.0).error
    assert err is not None
    assert (err.code, err.http_status, err.message) == (
        "Forbidden.RAM", 403, "User not authorized to operate on the specified resource, or "
        "this API doesn't support RAM.")


def test_throttling_offers_both_codes() -> None:
    emu = Emulator.create(seed=1)
    emu.add_fault({"kind": "throttle", "action": "DescribeVSwitches", "rate": 0.001,
                   "burst": 1, "code": "Throttling"})
    emu.add_fault({"kind": "throttle", "action": "DescribeVpcs", "rate": 0.001, "burst": 1})
    for action, code, message in (
            ("DescribeVSwitches", "Throttling", "Request was denied due to request throttling."),
            ("DescribeVpcs", "Throttling.User", "Request was denied due to user flow control.")):
        emu.call("vpc", action, R)
        with pytest.raises(ApiError) as info:
            emu.call("vpc", action, R)
        assert (info.value.code, info.value.http_status, info.value.message) == (
            code, 400, message)


def test_a_rule_may_still_say_its_own_status_and_message() -> None:
    engine = FaultEngine()
    engine.add_rule({"kind": "error", "action": "*", "code": "Forbidden.RAM", "count": 1,
                     "http_status": 401, "message": "nope"})
    engine.add_rule({"kind": "error", "action": "*", "code": "Custom.Thing", "count": 1})
    first = engine.decide("X", {}, 0.0).error
    second = engine.decide("X", {}, 0.0).error
    assert first is not None and (first.http_status, first.message) == (401, "nope")
    assert second is not None and (second.code, second.http_status) == ("Custom.Thing", 400)


# -- one table, in the code and in the docs ------------------------------------------------------
def test_docs_carry_the_codes_table_verbatim() -> None:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- codes:begin -->\n(.*?)\n<!-- codes:end -->", text, re.S)
    assert found, "docs/emulator.md lost its codes table markers"
    assert found.group(1) == codes.markdown_table(), (
        "docs/emulator.md's table differs from emulator/model/codes.py: "
        "regenerate it with `python -m emulator.model.codes`")


def test_every_row_has_a_status_a_source_and_a_usable_template() -> None:
    for row in codes.TABLE:
        assert 400 <= row.status <= 599 and row.source and row.when, row
        row(**dict.fromkeys(row.fields, "x"))     # formats with its own fields
