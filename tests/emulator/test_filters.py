"""Filters and fields as the SDK declares them (issue 11 item 5).

Every filter the official SDK's request models declare for the Describe* actions is either
evaluated or refused (UnsupportedParameter): set to a value nothing has, it must never answer
the whole list. DescribeNetworkInterfaces evaluates every one of its filters. The response
fields the SDK's models declare and real responses carry are present.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from emulator import mock_aliyun
from emulator.server import Emulator
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

HZ = "cn-hangzhou"
NOTHING = "no-such-value"
# Request fields that are not filters: the caller's identity, paging, and query modifiers.
NOT_FILTERS = {"RegionId", "OwnerId", "OwnerAccount", "ResourceOwnerId", "ResourceOwnerAccount",
               "PageNumber", "PageSize", "NextToken", "MaxResults", "FuzzyQuery",
               "IsQueryEcsCount"}
# String fields the API reads as a JSON array.
JSON_LISTS = {"InstanceIds", "PrivateIpAddresses", "InnerIpAddresses", "PublicIpAddresses",
              "EipAddresses", "RdmaIpAddresses", "SecurityGroupIds"}


@dataclass
class Setup:
    emu: Emulator
    ecs: EcsClient
    vpc: VpcClient
    vpc_id: str
    vsw: str
    sg: str
    node: str
    enis: list[str]


@pytest.fixture()
def setup() -> Iterator[Setup]:
    emu = Emulator.create(seed=9)
    with mock_aliyun(emu):
        cfg = Config(endpoint="ecs.aliyuncs.com", access_key_id=DEFAULT_ACCESS_KEY_ID,
                     access_key_secret=DEFAULT_ACCESS_KEY_SECRET, region_id=HZ)
        ecs, vpc = EcsClient(cfg), VpcClient(cfg)
        vpc_id = vpc.create_vpc(vpc_models.CreateVpcRequest(
            region_id=HZ, cidr_block="192.168.0.0/16", vpc_name="main")).body.vpc_id
        vsw = vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
            region_id=HZ, vpc_id=vpc_id, zone_id="cn-hangzhou-h", cidr_block="192.168.0.0/24",
            v_switch_name="pods")).body.v_switch_id
        sg = ecs.create_security_group(ecs_models.CreateSecurityGroupRequest(
            region_id=HZ, vpc_id=vpc_id, security_group_name="default")).body.security_group_id
        node = ecs.run_instances(ecs_models.RunInstancesRequest(
            region_id=HZ, instance_type="ecs.g6.2xlarge", v_switch_id=vsw, security_group_id=sg,
            instance_name="node-1", image_id="img")).body.instance_id_sets.instance_id_set[0]
        enis = []
        for i in range(3):
            enis.append(ecs.create_network_interface(ecs_models.CreateNetworkInterfaceRequest(
                region_id=HZ, v_switch_id=vsw, security_group_ids=[sg],
                network_interface_name=f"eni-{i}", primary_ip_address=f"192.168.0.{10 + i}",
                resource_group_id="rg-pods" if i == 2 else None,
                tag=[ecs_models.CreateNetworkInterfaceRequestTag(key="n", value=str(i))],
            )).body.network_interface_id)
        yield Setup(emu, ecs, vpc, vpc_id, vsw, sg, node, enis)


# -- DescribeNetworkInterfaces: every documented filter works ------------------------------------
def eni_ids(s: Setup, **filters: Any) -> list[str]:
    body = s.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id=HZ, **filters)).body
    return [e.network_interface_id for e in body.network_interface_sets.network_interface_set]


def test_each_network_interface_filter_selects(setup: Setup) -> None:
    s = setup
    a, b, c = s.enis
    primary = s.emu.cloud.get_instance(s.node).primary_eni_id
    assert eni_ids(s, primary_ip_address="192.168.0.11") == [b]
    assert eni_ids(s, network_interface_name="eni-2") == [c]
    assert eni_ids(s, resource_group_id="rg-pods") == [c]
    assert eni_ids(s, private_ip_address=["192.168.0.10", "192.168.0.12"]) == [a, c]
    assert eni_ids(s, network_interface_id=[c, a]) == [c, a]
    assert eni_ids(s, type="Primary") == [primary]
    assert eni_ids(s, instance_id=s.node) == [primary]
    assert eni_ids(s, status="Available") == [a, b, c]
    assert eni_ids(s, tag=[ecs_models.DescribeNetworkInterfacesRequestTag(
        key="n", value="1")]) == [b]
    assert eni_ids(s, security_group_id=s.sg, v_switch_id=s.vsw, vpc_id=s.vpc_id) == [
        primary, a, b, c]
    assert eni_ids(s, service_managed=False) == [primary, a, b, c]
    assert eni_ids(s, service_managed=True) == []
    assert eni_ids(s, ipv_6address=["2408::1"]) == []


# -- no documented filter is ignored -------------------------------------------------------------
def request_fields(model: type) -> dict[str, str]:
    """The request's query keys and their type (``model`` for lists of sub-models)."""
    src = inspect.getsource(model.to_map)
    attrs = dict(re.findall(r"result\['(\w+)'\] = self\.(\w+)", src))
    sig = inspect.signature(model.__init__)  # type: ignore[misc]
    out = {}
    for key in dict.fromkeys(re.findall(r"result\['(\w+)'\]", src)):
        attr = attrs.get(key)
        out[key] = str(sig.parameters[attr].annotation) if attr in sig.parameters else "model"
    return out


def nothing_value(key: str, kind: str) -> Any:
    if key in JSON_LISTS:
        return f'["{NOTHING}"]'
    return {"str": NOTHING, "int": 1, "bool": True, "List[str]": [NOTHING]}.get(
        kind, [{"Key": NOTHING, "Value": NOTHING}])


@dataclass(frozen=True)
class Describe:
    product: str
    action: str
    listed: Callable[[Any], list[Any]]


DESCRIBES = [
    Describe("ecs", "DescribeNetworkInterfaces",
             lambda b: b.network_interface_sets.network_interface_set),
    Describe("vpc", "DescribeVSwitches", lambda b: b.v_switches.v_switch),
    Describe("vpc", "DescribeVpcs", lambda b: b.vpcs.vpc),
    Describe("ecs", "DescribeInstances", lambda b: b.instances.instance),
    Describe("ecs", "DescribeSecurityGroups", lambda b: b.security_groups.security_group),
]


def run(s: Setup, d: Describe, fields: dict[str, Any]) -> list[Any]:
    models = ecs_models if d.product == "ecs" else vpc_models
    client = s.ecs if d.product == "ecs" else s.vpc
    request = getattr(models, f"{d.action}Request")().from_map({"RegionId": HZ, **fields})
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", d.action).lower().replace("v_s", "vs")
    return d.listed(getattr(client, method)(request).body)


@pytest.mark.parametrize("d", DESCRIBES, ids=[d.action for d in DESCRIBES])
def test_no_documented_filter_answers_everything(setup: Setup, d: Describe) -> None:
    models = ecs_models if d.product == "ecs" else vpc_models
    fields = request_fields(getattr(models, f"{d.action}Request"))
    assert run(setup, d, {}), "the unfiltered list is empty: the test would prove nothing"
    checked = []
    for key, kind in fields.items():
        if key in NOT_FILTERS:
            continue
        try:
            got = run(setup, d, {key: nothing_value(key, kind)})
        except ClientException as err:
            assert err.code == "UnsupportedParameter", (key, err.code, err.message)
            assert key in err.data["Message"]
            continue
        assert got == [], f"{d.action}: filter {key} was ignored"
        checked.append(key)
    assert checked, d.action


def test_network_interfaces_refuse_no_documented_filter(setup: Setup) -> None:
    fields = request_fields(ecs_models.DescribeNetworkInterfacesRequest)
    for key, kind in fields.items():
        if key not in NOT_FILTERS:
            assert run(setup, DESCRIBES[0], {key: nothing_value(key, kind)}) == [], key


# -- fields the SDK declares and real answers carry ----------------------------------------------
def recent(stamp: str) -> bool:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return abs((datetime.now(UTC) - moment).total_seconds()) < 3600


def test_network_interfaces_carry_the_declared_wrappers(setup: Setup) -> None:
    s = setup
    body = s.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id=HZ, network_interface_id=[s.enis[0]])).body
    [eni] = body.network_interface_sets.network_interface_set
    assert eni.ipv_6sets is not None and eni.ipv_6sets.ipv_6set == []
    assert eni.associated_public_ip is not None
    assert eni.associated_public_ip.public_ip_address == ""
    assert eni.owner_id and eni.owner_id.isdigit()
    assert eni.source_dest_check is False
    assert eni.private_ip_sets.private_ip_set[0].associated_public_ip is not None
    assert recent(eni.creation_time)
    attr = s.ecs.describe_network_interface_attribute(
        ecs_models.DescribeNetworkInterfaceAttributeRequest(
            region_id=HZ, network_interface_id=s.enis[0])).body
    assert attr.ipv_6sets is not None and attr.owner_id == eni.owner_id
    assert attr.source_dest_check is False and attr.associated_public_ip is not None


def test_vswitches_vpcs_and_instances_carry_creation_time(setup: Setup) -> None:
    s = setup
    [vsw] = s.vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(
        region_id=HZ, v_switch_id=s.vsw)).body.v_switches.v_switch
    [vpc] = s.vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(
        region_id=HZ, vpc_id=s.vpc_id)).body.vpcs.vpc
    [inst] = s.ecs.describe_instances(ecs_models.DescribeInstancesRequest(
        region_id=HZ, instance_ids=f'["{s.node}"]')).body.instances.instance
    assert recent(vsw.creation_time) and recent(vpc.creation_time)
    assert recent(inst.creation_time)
    assert vsw.owner_id == vpc.owner_id and vsw.owner_id is not None


def test_source_dest_check_is_kept(setup: Setup) -> None:
    s = setup
    eni = s.ecs.create_network_interface(ecs_models.CreateNetworkInterfaceRequest(
        region_id=HZ, v_switch_id=s.vsw, security_group_ids=[s.sg],
        source_dest_check=True)).body
    assert eni.source_dest_check is True
    attr = s.ecs.describe_network_interface_attribute(
        ecs_models.DescribeNetworkInterfaceAttributeRequest(
            region_id=HZ, network_interface_id=eni.network_interface_id)).body
    assert attr.source_dest_check is True
