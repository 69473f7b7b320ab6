"""VPC actions (answered by VPC and, as the 2014-05-26 ECS API does, by ECS)."""

from __future__ import annotations

from emulator.model import Cloud
from emulator.model.params import Params

from .common import ACCOUNT_ID, matches_nothing, owner_matches, page
from .registry import ECS, VPC, Body, action


@action("CreateVpc", products=(VPC, ECS))
def create_vpc(cloud: Cloud, p: Params) -> Body:
    vpc = cloud.create_vpc(p.get("CidrBlock") or "172.16.0.0/12", name=p.get("VpcName"),
                           description=p.get("Description"),
                           client_token=p.get("ClientToken") or None,
                           region_id=p.get("RegionId") or None)
    return {"VpcId": vpc.vpc_id, "VRouterId": vpc.vrouter_id, "RouteTableId": "",
            "ResourceGroupId": ""}


@action("DescribeVpcs", products=(VPC, ECS), unsupported=("DhcpOptionsSetId", "DryRun"))
def describe_vpcs(cloud: Cloud, p: Params) -> Body:
    ids = [i.strip() for i in p.get("VpcId").split(",") if i.strip()]
    nothing = matches_nothing(p, "Tag", "ResourceGroupId", "IsDefault", "EnableIpv6")
    vpcs = [] if nothing or not owner_matches(p, "VpcOwnerId") else cloud.describe_vpcs(
        ids or None, name=p.get("VpcName") or None, region_id=p.get("RegionId") or None)
    chunk, paging = page(vpcs, p, 50)
    paging.pop("MaxResults", None)
    return {"Vpcs": {"Vpc": [
        {"VpcId": v.vpc_id, "RegionId": v.region_id, "CidrBlock": v.cidr_block,
         "VpcName": v.name, "Description": v.description, "Status": v.status,
         "VRouterId": v.vrouter_id, "IsDefault": False, "CreationTime": v.creation_time,
         "OwnerId": ACCOUNT_ID, "ResourceGroupId": "",
         "VSwitchIds": {"VSwitchId": list(v.vswitch_ids)}} for v in chunk]}, **paging}


@action("DeleteVpc", products=(VPC, ECS))
def delete_vpc(cloud: Cloud, p: Params) -> Body:
    cloud.delete_vpc(p.required("VpcId"), client_token=p.get("ClientToken") or None)
    return {}
