"""ECS instance actions: instance types, RunInstances, DescribeInstances, DeleteInstance(s)."""

from __future__ import annotations

import fnmatch

from emulator.model import Cloud, InstanceType, InstanceView, codes
from emulator.model.params import Params

from .common import ip_sets, matches_nothing, page, sg_ids
from .registry import Body, action


def type_body(t: InstanceType) -> Body:
    return {
        "InstanceTypeId": t.instance_type_id, "InstanceTypeFamily": t.family,
        "CpuCoreCount": t.cpu, "MemorySize": t.memory_gib,
        "EniQuantity": t.eni_quantity, "EniPrivateIpAddressQuantity": t.eni_private_ip_quantity,
        "EniTotalQuantity": t.eni_total_quantity, "EniTrunkSupported": t.trunk_supported,
        "EniIpv6AddressQuantity": 0,
    }


def instance_body(cloud: Cloud, inst: InstanceView) -> Body:
    itype = cloud.get_instance_type(inst.instance_type)
    enis = cloud.describe_network_interfaces(list(inst.eni_ids))
    return {
        "InstanceId": inst.instance_id, "InstanceName": inst.name, "HostName": inst.name,
        "InstanceType": inst.instance_type, "InstanceTypeFamily": itype.family,
        "Cpu": itype.cpu, "Memory": int(itype.memory_gib * 1024),
        "RegionId": inst.region_id, "ZoneId": inst.zone_id, "Status": inst.status,
        "InstanceNetworkType": "vpc", "CreationTime": inst.creation_time,
        "VpcAttributes": {"VpcId": inst.vpc_id, "VSwitchId": inst.vswitch_id,
                          "PrivateIpAddress": {"IpAddress": [inst.primary_ip]}},
        "SecurityGroupIds": {"SecurityGroupId": list(inst.security_group_ids)},
        "NetworkInterfaces": {"NetworkInterface": [
            {"NetworkInterfaceId": e.eni_id, "MacAddress": e.mac, "PrimaryIpAddress": e.primary_ip,
             "Type": e.eni_type, "PrivateIpSets": ip_sets(e, public=False)}
            for e in enis if e.status in ("InUse", "Detaching")]},
    }


@action("DescribeInstanceTypes", regionless=True)
def describe_instance_types(cloud: Cloud, p: Params) -> Body:
    wanted = set(p.items("InstanceTypes"))
    family = p.get("InstanceTypeFamily")
    types = [t for t in cloud.instance_types()
             if (not wanted or t.instance_type_id in wanted)
             and (not family or t.family == family)]
    size = p.integer("MaxResults", 1600, 1, 1600)
    start = p.integer("NextToken", 0, 0) if p.get("NextToken") else 0
    chunk = types[start:start + size]
    token = str(start + size) if start + size < len(types) else ""
    return {"InstanceTypes": {"InstanceType": [type_body(t) for t in chunk]}, "NextToken": token}


@action("RunInstances")
def run_instances(cloud: Cloud, p: Params) -> Body:
    ids = cloud.run_instances(
        p.required("InstanceType"), p.required("VSwitchId"), sg_ids(p),
        p.integer("Amount", 1), name=p.get("InstanceName"), zone_id=p.get("ZoneId") or None,
        private_ip=p.get("PrivateIpAddress") or None, client_token=p.get("ClientToken") or None)
    return {"InstanceIdSets": {"InstanceIdSet": ids}}


@action("DescribeInstances", unsupported=(
    "AdditionalAttributes", "DeviceAvailable", "DryRun", "Filter", "HttpEndpoint",
    "HttpPutResponseHopLimit", "HttpTokens", "ImageId", "InstanceChargeType",
    "InternetChargeType", "IoOptimized", "KeyPairName", "LockReason", "NeedSaleCycle"))
def describe_instances(cloud: Cloud, p: Params) -> Body:
    insts = [] if matches_nothing(
        p, "Tag", "ResourceGroupId", "InnerIpAddresses", "PublicIpAddresses", "EipAddresses",
        "RdmaIpAddresses", "Ipv6Address", "HpcClusterId") else cloud.describe_instances(
        p.json_items("InstanceIds") or None, vpc_id=p.get("VpcId") or None,
        vswitch_id=p.get("VSwitchId") or None, zone_id=p.get("ZoneId") or None,
        status=p.get("Status") or None, instance_type=p.get("InstanceType") or None)
    name, family = p.get("InstanceName"), p.get("InstanceTypeFamily")
    private_ips = set(p.json_items("PrivateIpAddresses"))
    network, sg = p.get("InstanceNetworkType"), p.get("SecurityGroupId")
    insts = [i for i in insts
             if (not name or _name_matches(name, i.name))
             and (not family or cloud.get_instance_type(i.instance_type).family == family)
             and (not private_ips or i.primary_ip in private_ips)
             and (not network or network == "vpc")
             and (not sg or sg in i.security_group_ids)]
    chunk, paging = page(insts, p, 100)
    paging.pop("MaxResults", None)
    return {"Instances": {"Instance": [instance_body(cloud, i) for i in chunk]}, **paging}


def _name_matches(pattern: str, name: str) -> bool:
    """InstanceName's documented wildcard: ``*`` matches any run of characters."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "[[]").replace("?", "[?]"))


@action("DeleteInstance", regionless=True)
def delete_instance(cloud: Cloud, p: Params) -> Body:
    cloud.delete_instance(p.required("InstanceId"), force=p.boolean("Force"))
    return {}


@action("DeleteInstances")
def delete_instances(cloud: Cloud, p: Params) -> Body:
    ids = p.items("InstanceId")
    if not ids:
        raise codes.missing("InstanceId.N")
    cloud.delete_instances(ids, force=p.boolean("Force"),
                           client_token=p.get("ClientToken") or None)
    return {}
