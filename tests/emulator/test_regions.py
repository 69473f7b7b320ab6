"""Regions are real (issue 11 item 4): resources live in their region, a call with another
RegionId does not see them, a call without the RegionId its action requires is refused.

Driven through the official SDK (``mock_aliyun``), as a client in each region would call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from emulator import mock_aliyun
from emulator.actions import dispatch
from emulator.model import ApiError, Cloud
from emulator.server import Emulator
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

BJ, HZ = "cn-beijing", "cn-hangzhou"


class Clients:
    def __init__(self, emu: Emulator) -> None:
        cfg = Config(endpoint="ecs.aliyuncs.com", access_key_id=DEFAULT_ACCESS_KEY_ID,
                     access_key_secret=DEFAULT_ACCESS_KEY_SECRET, region_id=HZ)
        self.emu = emu
        self.ecs = EcsClient(cfg)
        self.vpc = VpcClient(cfg)


@pytest.fixture()
def clients() -> Iterator[Clients]:
    emu = Emulator.create(seed=6)
    with mock_aliyun(emu):
        yield Clients(emu)


def beijing_eni(c: Clients) -> tuple[str, str, str]:
    """A VPC, vSwitch, security group, node and ENI in cn-beijing; returns vpc, node, eni."""
    vpc = c.vpc.create_vpc(vpc_models.CreateVpcRequest(
        region_id=BJ, cidr_block="10.0.0.0/16")).body.vpc_id
    vsw = c.vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
        region_id=BJ, vpc_id=vpc, zone_id="cn-beijing-g",
        cidr_block="10.0.0.0/24")).body.v_switch_id
    sg = c.ecs.create_security_group(ecs_models.CreateSecurityGroupRequest(
        region_id=BJ, vpc_id=vpc)).body.security_group_id
    node = c.ecs.run_instances(ecs_models.RunInstancesRequest(
        region_id=BJ, instance_type="ecs.g6.large", v_switch_id=vsw, security_group_id=sg,
        image_id="img")).body.instance_id_sets.instance_id_set[0]
    eni = c.ecs.create_network_interface(ecs_models.CreateNetworkInterfaceRequest(
        region_id=BJ, v_switch_id=vsw, security_group_ids=[sg])).body.network_interface_id
    return vpc, node, eni


def test_resources_live_in_their_region(clients: Clients) -> None:
    c = clients
    vpc, node, eni = beijing_eni(c)
    assert all(rid.split("-", 1)[1].startswith("2ze") for rid in (vpc, node, eni))  # Beijing ids
    enis = c.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id=BJ)).body.network_interface_sets.network_interface_set
    assert {e.network_interface_id for e in enis} >= {eni}
    assert c.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id=HZ)).body.network_interface_sets.network_interface_set == []
    assert c.vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(
        region_id=HZ)).body.vpcs.vpc == []
    assert c.ecs.describe_instances(ecs_models.DescribeInstancesRequest(
        region_id=HZ)).body.instances.instance == []
    assert c.vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(
        region_id=HZ, vpc_id=vpc)).body.v_switches.v_switch == []


@pytest.mark.parametrize(("action", "code"), [
    ("attribute", "InvalidEniId.NotFound"),
    ("attach", "InvalidEniId.NotFound"),
    ("assign", "InvalidEniId.NotFound"),
    ("delete", "InvalidEniId.NotFound"),
    ("vswitch", "InvalidVpcId.NotFound"),
])
def test_another_regions_resources_are_not_found(clients: Clients, action: str,
                                                 code: str) -> None:
    c = clients
    vpc, node, eni = beijing_eni(c)
    before = c.emu.snapshot()
    calls = {
        "attribute": lambda: c.ecs.describe_network_interface_attribute(
            ecs_models.DescribeNetworkInterfaceAttributeRequest(region_id=HZ,
                                                                network_interface_id=eni)),
        "attach": lambda: c.ecs.attach_network_interface(ecs_models.AttachNetworkInterfaceRequest(
            region_id=HZ, network_interface_id=eni, instance_id=node)),
        "assign": lambda: c.ecs.assign_private_ip_addresses(
            ecs_models.AssignPrivateIpAddressesRequest(
                region_id=HZ, network_interface_id=eni, secondary_private_ip_address_count=1)),
        "delete": lambda: c.ecs.delete_network_interface(ecs_models.DeleteNetworkInterfaceRequest(
            region_id=HZ, network_interface_id=eni)),
        "vswitch": lambda: c.vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
            region_id=HZ, vpc_id=vpc, zone_id="cn-hangzhou-h", cidr_block="10.0.1.0/24")),
    }
    with pytest.raises(ClientException) as info:
        calls[action]()
    assert (info.value.code, info.value.data["statusCode"]) == (code, 404)
    assert c.emu.snapshot() == before
    # … and in their own region the same calls work
    c.ecs.attach_network_interface(ecs_models.AttachNetworkInterfaceRequest(
        region_id=BJ, network_interface_id=eni, instance_id=node))


def test_a_missing_region_id_is_refused() -> None:
    cloud = Cloud(seed=1)
    for product, action in (("ecs", "DescribeNetworkInterfaces"), ("vpc", "CreateVpc"),
                            ("ecs", "AssignPrivateIpAddresses"), ("vpc", "DescribeVSwitches")):
        with pytest.raises(ApiError) as info:
            dispatch(cloud, product, action, {"CidrBlock": "10.0.0.0/16"})
        assert (info.value.code, info.value.http_status) == ("MissingParameter", 400)
        assert '"RegionId"' in info.value.message
    assert cloud.describe_vpcs() == []
    for action in ("DescribeRegions", "DescribeInstanceTypes"):   # optional / not a parameter
        dispatch(cloud, "ecs", action, {})


def test_an_unknown_region_is_not_found(clients: Clients) -> None:
    with pytest.raises(ClientException) as info:
        clients.vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id="mars-north-1"))
    assert (info.value.code, info.value.data["statusCode"]) == ("InvalidRegionId.NotFound", 404)
