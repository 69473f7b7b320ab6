"""Regions and zones (answered by ECS and VPC alike)."""

from __future__ import annotations

from emulator.model import Cloud
from emulator.model.params import Params
from emulator.model.regions import REGIONS

from .registry import ECS, VPC, Body, action


@action("DescribeRegions", products=(ECS, VPC), regionless=True)
def describe_regions(cloud: Cloud, p: Params) -> Body:
    return {"Regions": {"Region": [
        {"RegionId": r, "LocalName": cloud.region_name(r),
         "RegionEndpoint": f"ecs.{r}.aliyuncs.com"} for r in cloud.regions()]}}


@action("DescribeZones", products=(ECS, VPC))
def describe_zones(cloud: Cloud, p: Params) -> Body:
    region = p.get("RegionId", cloud.region_id)
    return {"Zones": {"Zone": [{"ZoneId": z, "LocalName": z} for z in REGIONS[region]]}}
