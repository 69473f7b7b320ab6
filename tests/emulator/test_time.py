"""Time and state machines as on the real cloud (issue 11 item 3).

``terway-emulator serve`` attaches and detaches asynchronously by default (a seeded delay,
configurable by flag and world file); ``CreationTime`` is the creation moment (upstream's ENI GC
spares ENIs younger than 10 minutes by it); ClientToken makes AssignPrivateIpAddresses and the
other actions that document it idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator import cli
from emulator.actions import dispatch
from emulator.model import ApiError, Cloud, ManualClock
from emulator.server import Emulator

R = {"RegionId": "cn-hangzhou"}


def build(emu: Emulator) -> tuple[str, str, str]:
    """A VPC, a vSwitch, a security group and a node through the API; returns vsw, sg, node."""
    vpc = emu.call("vpc", "CreateVpc", {**R, "CidrBlock": "192.168.0.0/16"})["VpcId"]
    vsw = emu.call("vpc", "CreateVSwitch", {**R, "VpcId": vpc, "ZoneId": "cn-hangzhou-h",
                                            "CidrBlock": "192.168.0.0/24"})["VSwitchId"]
    sg = emu.call("ecs", "CreateSecurityGroup", {**R, "VpcId": vpc})["SecurityGroupId"]
    node = emu.call("ecs", "RunInstances", {**R, "InstanceType": "ecs.g6.2xlarge",
                                            "VSwitchId": vsw, "SecurityGroupId": sg})
    return vsw, sg, node["InstanceIdSets"]["InstanceIdSet"][0]


def status(emu: Emulator, eni: str) -> str:
    body = emu.call("ecs", "DescribeNetworkInterfaceAttribute", {**R, "NetworkInterfaceId": eni})
    return str(body["Status"])


def serve_args(*argv: str) -> Any:
    return cli.build_parser().parse_args(["serve", "--port", "0", *argv])


# -- asynchronous attach/detach in `serve` -------------------------------------------------------
def test_serve_attaches_and_detaches_asynchronously_by_default() -> None:
    clock = ManualClock()
    emu = cli.build_emulator(serve_args("--seed", "5"), clock=clock)
    assert emu.cloud.attach_delay == cli.SERVE_ATTACH_DELAY
    assert emu.cloud.detach_delay == cli.SERVE_DETACH_DELAY
    vsw, sg, node = build(emu)
    eni = emu.call("ecs", "CreateNetworkInterface",
                   {**R, "VSwitchId": vsw, "SecurityGroupId": sg})["NetworkInterfaceId"]
    emu.call("ecs", "AttachNetworkInterface", {**R, "NetworkInterfaceId": eni, "InstanceId": node})
    assert status(emu, eni) == "Attaching"
    low, high = cli.SERVE_ATTACH_DELAY
    clock.advance(low * 0.99)
    assert status(emu, eni) == "Attaching"
    clock.advance(high - low * 0.99)
    assert status(emu, eni) == "InUse"
    emu.call("ecs", "DetachNetworkInterface", {**R, "NetworkInterfaceId": eni,
                                               "InstanceId": node})
    assert status(emu, eni) == "Detaching"
    clock.advance(cli.SERVE_DETACH_DELAY[1])
    assert status(emu, eni) == "Available"


def due_times(seed: int) -> list[float]:
    clock = ManualClock()
    emu = cli.build_emulator(serve_args("--seed", str(seed)), clock=clock)
    vsw, sg, node = build(emu)
    out = []
    for _ in range(3):
        eni = emu.call("ecs", "CreateNetworkInterface",
                       {**R, "VSwitchId": vsw, "SecurityGroupId": sg})["NetworkInterfaceId"]
        emu.call("ecs", "AttachNetworkInterface",
                 {**R, "NetworkInterfaceId": eni, "InstanceId": node})
        out += [e["due"] for e in emu.snapshot()["enis"] if e["eni_id"] == eni]
    return out


def test_serve_delays_are_seeded() -> None:
    first = due_times(7)
    assert first == due_times(7)
    assert first != due_times(8)
    low, high = cli.SERVE_ATTACH_DELAY
    assert all(low <= d <= high for d in first) and len(set(first)) == 3


def test_flags_and_world_files_set_the_delays(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text("seed: 1\ncloud:\n  attach_delay: [0.2, 0.4]\n  detach_delay: 0.5\n")
    emu = cli.build_emulator(serve_args("--world", str(world)))
    assert (emu.cloud.attach_delay, emu.cloud.detach_delay) == ((0.2, 0.4), (0.5, 0.5))
    emu = cli.build_emulator(serve_args("--world", str(world), "--attach-delay", "0",
                                        "--detach-delay", "1,2"))
    assert (emu.cloud.attach_delay, emu.cloud.detach_delay) == ((0.0, 0.0), (1.0, 2.0))
    for bad in ("-1", "3,1", "x", "1,2,3"):
        with pytest.raises(SystemExit):
            serve_args("--attach-delay", bad)


def test_synchronous_attach_stays_the_python_default() -> None:
    emu = Emulator.create(seed=1)              # in-process mock and Emulator.serve()
    vsw, sg, node = build(emu)
    eni = emu.call("ecs", "CreateNetworkInterface",
                   {**R, "VSwitchId": vsw, "SecurityGroupId": sg})["NetworkInterfaceId"]
    emu.call("ecs", "AttachNetworkInterface", {**R, "NetworkInterfaceId": eni, "InstanceId": node})
    assert status(emu, eni) == "InUse"


# -- CreationTime --------------------------------------------------------------------------------
def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_creation_time_is_the_creation_moment_on_wall_clock_time() -> None:
    emu = Emulator.create(seed=2)              # wall-clock model, as `serve` runs
    before = datetime.now(UTC).replace(microsecond=0)
    vsw, sg, node = build(emu)
    eni = emu.call("ecs", "CreateNetworkInterface", {**R, "VSwitchId": vsw, "SecurityGroupId": sg})
    after = datetime.now(UTC)
    listed = emu.call("ecs", "DescribeNetworkInterfaces", {**R, "NetworkInterfaceId.1":
                                                          eni["NetworkInterfaceId"]})
    stamp = listed["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]["CreationTime"]
    assert before <= parse(stamp) <= after
    inst = emu.call("ecs", "DescribeInstances", {**R, "InstanceIds": f'["{node}"]'})
    assert before <= parse(inst["Instances"]["Instance"][0]["CreationTime"]) <= after
    vsws = emu.call("vpc", "DescribeVSwitches", {**R, "VSwitchId": vsw})
    assert before <= parse(vsws["VSwitches"]["VSwitch"][0]["CreationTime"]) <= after


def test_creation_time_follows_an_injected_clock() -> None:
    clock = ManualClock(start=600.0)
    cloud = Cloud(seed=1, clock=clock)
    vpc = cloud.create_vpc("10.0.0.0/16")
    clock.advance(60)
    vsw = cloud.create_vswitch(vpc.vpc_id, "cn-hangzhou-h", "10.0.0.0/24")
    sg = cloud.create_security_group(vpc.vpc_id)
    eni = cloud.create_network_interface(vsw.vswitch_id, [sg.security_group_id])
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse(cloud.describe_vpcs()[0].creation_time) == epoch + timedelta(seconds=600)
    assert parse(eni.creation_time) == epoch + timedelta(seconds=660)


# -- ClientToken ---------------------------------------------------------------------------------
def test_client_token_makes_assign_private_ip_addresses_idempotent() -> None:
    emu = Emulator.create(seed=3)
    vsw, sg, _ = build(emu)
    eni = emu.call("ecs", "CreateNetworkInterface",
                   {**R, "VSwitchId": vsw, "SecurityGroupId": sg})["NetworkInterfaceId"]
    ask = {**R, "NetworkInterfaceId": eni, "SecondaryPrivateIpAddressCount": "2",
           "ClientToken": "tok-1"}

    def assigned(params: dict[str, str]) -> list[str]:
        body = emu.call("ecs", "AssignPrivateIpAddresses", params)
        return list(body["AssignedPrivateIpAddressesSet"]["PrivateIpSet"]["PrivateIpAddress"])

    first = assigned(ask)
    free = emu.cloud.get_vswitch(vsw).available_ip_count
    assert assigned(ask) == first                             # the retry takes nothing more
    assert emu.cloud.get_vswitch(vsw).available_ip_count == free
    assert len(emu.cloud.get_network_interface(eni).private_ips) == 3
    with pytest.raises(ApiError) as info:
        assigned({**ask, "SecondaryPrivateIpAddressCount": "3"})
    assert (info.value.code, info.value.http_status) == ("IdempotentParameterMismatch", 400)
    assert len(assigned({**ask, "ClientToken": "tok-2"})) == 2


def test_client_token_makes_deletes_idempotent() -> None:
    cloud = Cloud(seed=4)
    vpc = dispatch(cloud, "vpc", "CreateVpc", {**R, "CidrBlock": "10.0.0.0/16"})["VpcId"]
    params = {**R, "VpcId": vpc, "ClientToken": "del-1"}
    dispatch(cloud, "vpc", "DeleteVpc", params)
    dispatch(cloud, "vpc", "DeleteVpc", params)               # a retry of a delete that worked
    with pytest.raises(ApiError) as info:
        dispatch(cloud, "vpc", "DeleteVpc", {**R, "VpcId": vpc})
    assert info.value.code == "InvalidVpcId.NotFound"
    vpc = cloud.create_vpc("10.0.0.0/16").vpc_id
    vsw = cloud.create_vswitch(vpc, "cn-hangzhou-h", "10.0.0.0/24").vswitch_id
    sg = cloud.create_security_group(vpc).security_group_id
    node = cloud.run_instances("ecs.g6.large", vsw, [sg])[0]
    params = {**R, "InstanceId.1": node, "Force": "true", "ClientToken": "del-2"}
    dispatch(cloud, "ecs", "DeleteInstances", params)
    dispatch(cloud, "ecs", "DeleteInstances", params)
    assert cloud.describe_instances() == []
