"""ECS security group actions."""

from __future__ import annotations

from emulator.model import Cloud
from emulator.model.params import Params

from .common import matches_nothing, page
from .registry import Body, action


@action("CreateSecurityGroup")
def create_security_group(cloud: Cloud, p: Params) -> Body:
    sg = cloud.create_security_group(p.required("VpcId"), name=p.get("SecurityGroupName"),
                                     description=p.get("Description"),
                                     client_token=p.get("ClientToken") or None)
    return {"SecurityGroupId": sg.security_group_id}


@action("DescribeSecurityGroups", unsupported=("DryRun",))
def describe_security_groups(cloud: Cloud, p: Params) -> Body:
    ids = p.json_items("SecurityGroupIds") + ([p.get("SecurityGroupId")]
                                               if p.get("SecurityGroupId") else [])
    sgs = [] if matches_nothing(p, "Tag", "ResourceGroupId", "ServiceManaged") else (
        cloud.describe_security_groups(ids or None, vpc_id=p.get("VpcId") or None))
    name, kind, network = (p.get("SecurityGroupName"), p.get("SecurityGroupType"),
                           p.get("NetworkType"))
    fuzzy = p.boolean("FuzzyQuery")
    sgs = [s for s in sgs
           if (not name or (name in s.name if fuzzy else s.name == name))
           and (not kind or kind == "normal") and (not network or network == "vpc")]
    chunk, paging = page(sgs, p, 50)
    paging.pop("MaxResults", None)
    return {"RegionId": p.get("RegionId", cloud.region_id), "SecurityGroups": {"SecurityGroup": [
        {"SecurityGroupId": s.security_group_id, "SecurityGroupName": s.name, "VpcId": s.vpc_id,
         "Description": s.description, "SecurityGroupType": "normal"} for s in chunk]}, **paging}
