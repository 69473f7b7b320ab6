"""dispatch(): the official SDK's requests in, bodies its response models parse out.

The SDK clients run for real; ``responses`` hands each request's flat query to ``dispatch`` and
returns its body, so parameter names and response shapes are checked end to end, and every body
must survive the SDK model's ``from_map``/``to_map`` unchanged (no key it does not know).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest
import responses
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from emulator.actions import dispatch
from emulator.model import ApiError, Cloud

ENDPOINT = "127.0.0.1:18080"
R = {"RegionId": "cn-hangzhou"}


class Sdk:
    def __init__(self) -> None:
        self.cloud = Cloud(seed=11)
        cfg = Config(endpoint=ENDPOINT, protocol="http", access_key_id="ak",
                     access_key_secret="sk", region_id="cn-hangzhou")
        self.ecs = EcsClient(cfg)
        self.vpc = VpcClient(cfg)
        self.bodies: dict[str, dict[str, Any]] = {}

    def handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        action = request.headers["x-acs-action"]
        product = "vpc" if request.headers["x-acs-version"] == "2016-04-28" else "ecs"
        params = dict(parse_qsl(urlparse(request.url).query))
        try:
            body = dispatch(self.cloud, product, action, params)
        except ApiError as err:
            return err.http_status, {}, json.dumps({"RequestId": err.request_id, "HostId": "x",
                                                    "Code": err.code, "Message": err.message})
        self.bodies[action] = body
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture()
def sdk() -> Iterator[Sdk]:
    s = Sdk()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, re.compile(r"http://127\.0\.0\.1:18080/.*"),
                          callback=s.handle)
        yield s


def build(sdk: Sdk) -> tuple[str, str, str, str]:
    vpc = sdk.vpc.create_vpc(vpc_models.CreateVpcRequest(
        region_id="cn-hangzhou", cidr_block="192.168.0.0/16")).body.vpc_id
    vsw = sdk.vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
        region_id="cn-hangzhou", vpc_id=vpc, zone_id="cn-hangzhou-h",
        cidr_block="192.168.0.0/28")).body.v_switch_id
    sg = sdk.ecs.create_security_group(ecs_models.CreateSecurityGroupRequest(
        region_id="cn-hangzhou", vpc_id=vpc)).body.security_group_id
    run = sdk.ecs.run_instances(ecs_models.RunInstancesRequest(
        region_id="cn-hangzhou", instance_type="ecs.g6.2xlarge", v_switch_id=vsw,
        security_group_id=sg, amount=1, image_id="img"))
    return vpc, vsw, sg, run.body.instance_id_sets.instance_id_set[0]


def test_world_built_through_the_sdk(sdk: Sdk) -> None:
    vpc, vsw, _sg, node = build(sdk)
    vs = sdk.vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(
        region_id="cn-hangzhou", vpc_id=vpc)).body
    [v] = vs.v_switches.v_switch
    assert (v.v_switch_id, v.cidr_block, v.zone_id, v.available_ip_address_count) == (
        vsw, "192.168.0.0/28", "cn-hangzhou-h", 11)
    assert vs.total_count == 1
    inst = sdk.ecs.describe_instances(ecs_models.DescribeInstancesRequest(
        region_id="cn-hangzhou", instance_ids=json.dumps([node]))).body.instances.instance[0]
    assert inst.instance_type == "ecs.g6.2xlarge" and inst.status == "Running"
    assert inst.vpc_attributes.v_switch_id == vsw
    assert inst.network_interfaces.network_interface[0].type == "Primary"


def test_eni_life_cycle_through_the_sdk(sdk: Sdk) -> None:
    _, vsw, sg, node = build(sdk)
    created = sdk.ecs.create_network_interface(ecs_models.CreateNetworkInterfaceRequest(
        region_id="cn-hangzhou", v_switch_id=vsw, security_group_ids=[sg],
        secondary_private_ip_address_count=2, client_token="tok",
        tag=[ecs_models.CreateNetworkInterfaceRequestTag(key="creator", value="terway")])).body
    eni = created.network_interface_id
    assert len(created.private_ip_sets.private_ip_set) == 3
    assert created.mac_address.startswith("00:16:3e:")
    sdk.ecs.attach_network_interface(ecs_models.AttachNetworkInterfaceRequest(
        region_id="cn-hangzhou", network_interface_id=eni, instance_id=node))
    assigned = sdk.ecs.assign_private_ip_addresses(ecs_models.AssignPrivateIpAddressesRequest(
        region_id="cn-hangzhou", network_interface_id=eni,
        secondary_private_ip_address_count=2)).body
    ips = assigned.assigned_private_ip_addresses_set.private_ip_set.private_ip_address
    assert len(ips) == 2
    sdk.ecs.unassign_private_ip_addresses(ecs_models.UnassignPrivateIpAddressesRequest(
        region_id="cn-hangzhou", network_interface_id=eni, private_ip_address=ips[:1]))
    listed = sdk.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id="cn-hangzhou", instance_id=node, page_size=1, page_number=2,
        tag=[ecs_models.DescribeNetworkInterfacesRequestTag(key="creator",
                                                            value="terway")])).body
    assert listed.total_count == 1 and listed.network_interface_sets.network_interface_set == []
    listed = sdk.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id="cn-hangzhou", network_interface_id=[eni])).body
    [item] = listed.network_interface_sets.network_interface_set
    assert item.status == "InUse" and item.instance_id == node
    assert [t.tag_key for t in item.tags.tag] == ["creator"]
    assert len(item.private_ip_sets.private_ip_set) == 4
    attr = sdk.ecs.describe_network_interface_attribute(
        ecs_models.DescribeNetworkInterfaceAttributeRequest(
            region_id="cn-hangzhou", network_interface_id=eni)).body
    assert attr.attachment.instance_id == node
    sdk.ecs.detach_network_interface(ecs_models.DetachNetworkInterfaceRequest(
        region_id="cn-hangzhou", network_interface_id=eni, instance_id=node))
    sdk.ecs.delete_network_interface(ecs_models.DeleteNetworkInterfaceRequest(
        region_id="cn-hangzhou", network_interface_id=eni))


def test_errors_reach_the_sdk_with_code_and_status(sdk: Sdk) -> None:
    _, vsw, sg, _ = build(sdk)
    from alibabacloud_tea_openapi.exceptions import ClientException
    big = ecs_models.CreateNetworkInterfaceRequest(
        region_id="cn-hangzhou", v_switch_id=vsw, security_group_ids=[sg],
        secondary_private_ip_address_count=11)
    with pytest.raises(ClientException) as info:
        sdk.ecs.create_network_interface(big)
    assert info.value.code == "InvalidVSwitchId.IpNotEnough"
    assert f'The specified VSwitch "{vsw}" has not enough IpAddress.' in info.value.message
    assert info.value.data["statusCode"] == 403


def test_every_body_survives_the_sdk_models(sdk: Sdk) -> None:
    _, vsw, sg, _node = build(sdk)
    sdk.ecs.create_network_interface(ecs_models.CreateNetworkInterfaceRequest(
        region_id="cn-hangzhou", v_switch_id=vsw, security_group_ids=[sg],
        tag=[ecs_models.CreateNetworkInterfaceRequestTag(key="k", value="v")]))
    sdk.ecs.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id="cn-hangzhou"))
    sdk.ecs.describe_instance_types(ecs_models.DescribeInstanceTypesRequest(
        instance_types=["ecs.g6.2xlarge"]))
    sdk.ecs.describe_instances(ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))
    sdk.ecs.describe_security_groups(ecs_models.DescribeSecurityGroupsRequest(
        region_id="cn-hangzhou"))
    sdk.vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id="cn-hangzhou"))
    sdk.vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id="cn-hangzhou"))
    models = {
        "CreateNetworkInterface": ecs_models.CreateNetworkInterfaceResponseBody,
        "DescribeNetworkInterfaces": ecs_models.DescribeNetworkInterfacesResponseBody,
        "DescribeInstanceTypes": ecs_models.DescribeInstanceTypesResponseBody,
        "DescribeInstances": ecs_models.DescribeInstancesResponseBody,
        "DescribeSecurityGroups": ecs_models.DescribeSecurityGroupsResponseBody,
        "RunInstances": ecs_models.RunInstancesResponseBody,
        "CreateSecurityGroup": ecs_models.CreateSecurityGroupResponseBody,
        "DescribeVpcs": vpc_models.DescribeVpcsResponseBody,
        "DescribeVSwitches": vpc_models.DescribeVSwitchesResponseBody,
        "CreateVSwitch": vpc_models.CreateVSwitchResponseBody,
    }
    for action, model in models.items():
        body = sdk.bodies[action]
        assert model().from_map(body).to_map() == body, action


def test_instance_types_report_real_limits(sdk: Sdk) -> None:
    body = sdk.ecs.describe_instance_types(ecs_models.DescribeInstanceTypesRequest(
        instance_types=["ecs.g6.large", "ecs.g6.13xlarge"])).body
    got = {t.instance_type_id: (t.eni_quantity, t.eni_private_ip_address_quantity)
           for t in body.instance_types.instance_type}
    assert got == {"ecs.g6.large": (2, 6), "ecs.g6.13xlarge": (7, 20)}


def test_unknown_action_and_product() -> None:
    cloud = Cloud()
    for product, action in (("ecs", "LaunchRocket"), ("oss", "CreateVpc")):
        with pytest.raises(ApiError) as info:
            dispatch(cloud, product, action, {})
        assert (info.value.code, info.value.http_status) == ("InvalidAction.NotFound", 404)
        assert info.value.request_id


def test_flat_params_and_missing_parameters() -> None:
    cloud = Cloud(seed=2)
    vpc = dispatch(cloud, "vpc", "CreateVpc", {**R, "CidrBlock": "10.0.0.0/16"})["VpcId"]
    vsw = dispatch(cloud, "vpc", "CreateVSwitch", {**R, "VpcId": vpc, "ZoneId": "cn-hangzhou-k",
                                                   "CidrBlock": "10.0.1.0/24"})["VSwitchId"]
    sg = dispatch(cloud, "ecs", "CreateSecurityGroup", {**R, "VpcId": vpc})["SecurityGroupId"]
    with pytest.raises(ApiError) as info:
        dispatch(cloud, "ecs", "CreateNetworkInterface", {**R, "SecurityGroupIds.1": sg})
    assert info.value.code == "MissingParameter" and "VSwitchId" in info.value.message
    eni = dispatch(cloud, "ecs", "CreateNetworkInterface", {
        **R, "VSwitchId": vsw, "SecurityGroupIds.1": sg, "PrimaryIpAddress": "10.0.1.9",
        "Tag.1.Key": "a", "Tag.1.Value": "1", "Tag.2.Key": "b", "Tag.2.Value": "2"})
    assert eni["PrivateIpAddress"] == "10.0.1.9"
    assert eni["Tags"]["Tag"] == [{"TagKey": "a", "TagValue": "1"},
                                  {"TagKey": "b", "TagValue": "2"}]
    got = dispatch(cloud, "ecs", "AssignPrivateIpAddresses", {
        **R, "NetworkInterfaceId": eni["NetworkInterfaceId"], "PrivateIpAddress.2": "10.0.1.21",
        "PrivateIpAddress.1": "10.0.1.20"})
    assert got["AssignedPrivateIpAddressesSet"]["PrivateIpSet"]["PrivateIpAddress"] == [
        "10.0.1.20", "10.0.1.21"]
    with pytest.raises(ApiError) as info:
        dispatch(cloud, "ecs", "AssignPrivateIpAddresses", {
            **R, "NetworkInterfaceId": eni["NetworkInterfaceId"],
            "SecondaryPrivateIpAddressCount": "eleven"})
    assert info.value.code == "InvalidParameter"
    assert "SecondaryPrivateIpAddressCount" in info.value.message


def test_next_token_paging() -> None:
    cloud = Cloud(seed=4)
    vpc = cloud.create_vpc("10.0.0.0/16").vpc_id
    vsw = cloud.create_vswitch(vpc, "cn-hangzhou-h", "10.0.0.0/24").vswitch_id
    sg = cloud.create_security_group(vpc).security_group_id
    made = [cloud.create_network_interface(vsw, [sg]).eni_id for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        params = {**R, "MaxResults": "2", **({"NextToken": token} if token else {})}
        body = dispatch(cloud, "ecs", "DescribeNetworkInterfaces", params)
        seen += [e["NetworkInterfaceId"]
                 for e in body["NetworkInterfaceSets"]["NetworkInterfaceSet"]]
        token = body["NextToken"]
        if not token:
            break
    assert seen == made
