"""vSwitch actions (answered by VPC and, as the 2014-05-26 ECS API does, by ECS)."""

from __future__ import annotations

from emulator.model import Cloud
from emulator.model.params import Params

from .common import ACCOUNT_ID, matches_nothing, owner_matches, page
from .registry import ECS, VPC, Body, action


@action("CreateVSwitch", products=(VPC, ECS))
def create_vswitch(cloud: Cloud, p: Params) -> Body:
    vsw = cloud.create_vswitch(p.required("VpcId"), p.required("ZoneId"),
                               p.required("CidrBlock"), name=p.get("VSwitchName"),
                               description=p.get("Description"),
                               client_token=p.get("ClientToken") or None)
    return {"VSwitchId": vsw.vswitch_id}


@action("DescribeVSwitches", products=(VPC, ECS), unsupported=("RouteTableId", "DryRun"))
def describe_vswitches(cloud: Cloud, p: Params) -> Body:
    ids = [i.strip() for i in p.get("VSwitchId").split(",") if i.strip()]
    nothing = matches_nothing(p, "Tag", "ResourceGroupId", "IsDefault", "EnableIpv6")
    vsws = [] if nothing or not owner_matches(p, "VSwitchOwnerId") else (
        cloud.describe_vswitches(ids or None, vpc_id=p.get("VpcId") or None,
                                 zone_id=p.get("ZoneId") or None,
                                 name=p.get("VSwitchName") or None))
    chunk, paging = page(vsws, p, 50)
    paging.pop("MaxResults", None)
    return {"VSwitches": {"VSwitch": [
        {"VSwitchId": v.vswitch_id, "VpcId": v.vpc_id, "ZoneId": v.zone_id,
         "CidrBlock": v.cidr_block, "AvailableIpAddressCount": v.available_ip_count,
         "VSwitchName": v.name, "Description": v.description, "Status": v.status,
         "IsDefault": False, "CreationTime": v.creation_time, "OwnerId": ACCOUNT_ID,
         "ResourceGroupId": ""} for v in chunk]}, **paging}


@action("DeleteVSwitch", products=(VPC, ECS))
def delete_vswitch(cloud: Cloud, p: Params) -> Body:
    cloud.delete_vswitch(p.required("VSwitchId"))
    return {}
