"""API actions → model calls: flat SDK query parameters in, response body dicts out.

``dispatch(cloud, "ecs" | "vpc", action, params)`` is what every front end calls (the HTTP server,
the ``responses`` mock). Parameter names and response shapes follow the official Python SDK
(alibabacloud_ecs20140526 / alibabacloud_vpc20160428): what its request models flatten and what
its response models' ``from_map`` read. Errors are ``ApiError`` with ``request_id`` set.

Regions are real: an action that takes ``RegionId`` requires it (MissingParameter), runs inside
``cloud.in_region(RegionId)`` (another region's resources are NotFound and absent from lists)
and creates there. A documented filter is evaluated or refused (UnsupportedParameter), never
ignored: an ignored filter would answer everything.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emulator.model import ApiError, Cloud, EniView, InstanceType, InstanceView, codes
from emulator.model.params import Params
from emulator.model.regions import REGIONS

Body = dict[str, Any]
Handler = Callable[[Cloud, Params], Body]

NOT_FOUND_MESSAGE = codes.ACTION_NOT_FOUND.template
# The only actions whose request has no required RegionId (the SDK models: DescribeRegions takes
# it optionally, DescribeInstanceTypes and DeleteInstance have none).
REGIONLESS = frozenset({"DescribeRegions", "DescribeInstanceTypes", "DeleteInstance"})


def dispatch(cloud: Cloud, product: str, action: str, params: Mapping[str, str]) -> Body:
    """Run one API action; returns the response body (with ``RequestId``) or raises ApiError."""
    request_id = cloud.new_request_id()
    try:
        table = _PRODUCTS.get(product.lower())
        handler = table.get(action) if table is not None else None
        if handler is None:
            raise codes.ACTION_NOT_FOUND()
        p = Params(params)
        region = p.get("RegionId")
        if region and region not in REGIONS:
            raise codes.REGION_NOT_FOUND()
        if not region and action not in REGIONLESS:
            raise codes.missing("RegionId")
        _refuse_unsupported(action, p)
        with cloud.in_region(region or None):
            body = handler(cloud, p)
    except ApiError as err:
        err.request_id = request_id
        raise
    return {"RequestId": request_id, **body}


def actions(product: str) -> list[str]:
    """The actions a product answers (for docs and the server's introspection)."""
    return sorted(_PRODUCTS.get(product.lower(), {}))


# -- paging --------------------------------------------------------------------------------------
def _page(items: Sequence[Any], p: Params, max_size: int) -> tuple[list[Any], Body]:
    """PageNumber/PageSize paging, or NextToken/MaxResults when either is present."""
    if "NextToken" in p or "MaxResults" in p:
        size = p.integer("MaxResults", 10, 1, max_size)
        start = p.integer("NextToken", 0, 0) if p.get("NextToken") else 0
        chunk = list(items[start:start + size])
        token = str(start + size) if start + size < len(items) else ""
        return chunk, {"NextToken": token, "TotalCount": len(items), "MaxResults": size}
    number = p.integer("PageNumber", 1, 1)
    size = p.integer("PageSize", 10, 1, max_size)
    start = (number - 1) * size
    return list(items[start:start + size]), {
        "TotalCount": len(items), "PageNumber": number, "PageSize": size}


def _sg_ids(p: Params) -> list[str]:
    ids = p.items("SecurityGroupIds")
    single = p.get("SecurityGroupId")
    return [single, *[i for i in ids if i != single]] if single else ids


# -- documented filters ----------------------------------------------------------------------
# Filters (SDK request fields) that are not evaluated: refused, never silently ignored. Every
# other documented filter of these actions works (see the handlers).
_UNSUPPORTED: dict[str, frozenset[str]] = {
    "DescribeVSwitches": frozenset({"RouteTableId", "DryRun"}),
    "DescribeVpcs": frozenset({"DhcpOptionsSetId", "DryRun"}),
    "DescribeSecurityGroups": frozenset({"DryRun"}),
    "DescribeInstances": frozenset({
        "AdditionalAttributes", "DeviceAvailable", "DryRun", "Filter", "HttpEndpoint",
        "HttpPutResponseHopLimit", "HttpTokens", "ImageId", "InstanceChargeType",
        "InternetChargeType", "IoOptimized", "KeyPairName", "LockReason", "NeedSaleCycle"}),
}


def _refuse_unsupported(action: str, p: Params) -> None:
    refused = _UNSUPPORTED.get(action)
    if not refused:
        return
    for key, value in p.raw.items():
        name = key.split(".", 1)[0]
        if name in refused and value not in ("", "false", "False"):
            raise codes.UNSUPPORTED_PARAMETER(param=name)


def _matches_nothing(p: Params, *names: str) -> bool:
    """True when a filter on something no emulated resource has is set (tags on resources
    that carry none, public/IPv6 addresses, a non-default resource group, IsDefault…): the
    cloud's answer is an empty list."""
    present = {key.partition(".")[0] for key, value in p.raw.items() if value}
    for name in names:
        if name not in present:
            continue
        if name == "Tag":
            if p.tags():
                return True
        elif name in ("IsDefault", "EnableIpv6", "ServiceManaged"):
            if p.boolean(name):
                return True
        elif p.get(name) or p.items(name):
            return True
    return False


def _owner_matches(p: Params, name: str) -> bool:
    owner = p.get(name)
    return not owner or owner == str(ACCOUNT_ID)


# -- renderers -----------------------------------------------------------------------------------
ACCOUNT_ID = 1234567890123456   # the emulated account (``OwnerId``)
_NO_PUBLIC_IP = {"PublicIpAddress": "", "AllocationId": ""}


def _ip_sets(eni: EniView, public: bool = True) -> Body:
    sets: list[Body] = []
    for i, ip in enumerate(eni.private_ips):
        item: Body = {"PrivateIpAddress": ip, "Primary": i == 0}
        if public:
            item["AssociatedPublicIp"] = dict(_NO_PUBLIC_IP)
        sets.append(item)
    return {"PrivateIpSet": sets}


def _eni_body(eni: EniView) -> Body:
    body: Body = {
        "NetworkInterfaceId": eni.eni_id, "NetworkInterfaceName": eni.name,
        "Status": eni.status, "Type": eni.eni_type, "VpcId": eni.vpc_id,
        "VSwitchId": eni.vswitch_id, "ZoneId": eni.zone_id,
        "PrivateIpAddress": eni.primary_ip, "MacAddress": eni.mac,
        "SecurityGroupIds": {"SecurityGroupId": list(eni.security_group_ids)},
        "PrivateIpSets": _ip_sets(eni),
        "Ipv6Sets": {"Ipv6Set": []}, "Ipv4PrefixSets": {"Ipv4PrefixSet": []},
        "Ipv6PrefixSets": {"Ipv6PrefixSet": []},
        "AssociatedPublicIp": dict(_NO_PUBLIC_IP),
        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in eni.tags.items()]},
        "Description": eni.description, "InstanceId": eni.instance_id,
        "CreationTime": eni.creation_time, "ResourceGroupId": eni.resource_group_id,
        "OwnerId": str(ACCOUNT_ID), "SourceDestCheck": eni.source_dest_check,
        "DeleteOnRelease": eni.eni_type == "Primary", "ServiceManaged": False,
    }
    if eni.instance_id:
        body["Attachment"] = {"InstanceId": eni.instance_id, "DeviceIndex": eni.device_index}
    return body


def _type_body(t: InstanceType) -> Body:
    return {
        "InstanceTypeId": t.instance_type_id, "InstanceTypeFamily": t.family,
        "CpuCoreCount": t.cpu, "MemorySize": t.memory_gib,
        "EniQuantity": t.eni_quantity, "EniPrivateIpAddressQuantity": t.eni_private_ip_quantity,
        "EniTotalQuantity": t.eni_total_quantity, "EniTrunkSupported": t.trunk_supported,
        "EniIpv6AddressQuantity": 0,
    }


def _instance_body(cloud: Cloud, inst: InstanceView) -> Body:
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
             "Type": e.eni_type, "PrivateIpSets": _ip_sets(e, public=False)}
            for e in enis if e.status in ("InUse", "Detaching")]},
    }


# -- ECS: ENIs -----------------------------------------------------------------------------------
# CreateNetworkInterface's response has none of these (its SDK model declares none of them).
_NOT_IN_CREATE = ("Attachment", "CreationTime", "InstanceId", "AssociatedPublicIp",
                  "DeleteOnRelease")


def _create_eni(cloud: Cloud, p: Params) -> Body:
    eni = cloud.create_network_interface(
        p.required("VSwitchId"), _sg_ids(p),
        secondary_ip_count=p.integer("SecondaryPrivateIpAddressCount", 0),
        primary_ip=p.get("PrimaryIpAddress") or None,
        private_ips=p.items("PrivateIpAddress"),
        tags=p.tags(), description=p.get("Description"),
        name=p.get("NetworkInterfaceName"), client_token=p.get("ClientToken") or None,
        resource_group_id=p.get("ResourceGroupId"),
        source_dest_check=p.boolean("SourceDestCheck"))
    body = _eni_body(eni)
    for key in _NOT_IN_CREATE:
        body.pop(key, None)
    body["PrivateIpSets"] = _ip_sets(eni, public=False)
    return body


def _attach_eni(cloud: Cloud, p: Params) -> Body:
    cloud.attach_network_interface(p.required("NetworkInterfaceId"), p.required("InstanceId"))
    return {}


def _detach_eni(cloud: Cloud, p: Params) -> Body:
    cloud.detach_network_interface(p.required("NetworkInterfaceId"), p.get("InstanceId") or None)
    return {}


def _delete_eni(cloud: Cloud, p: Params) -> Body:
    cloud.delete_network_interface(p.required("NetworkInterfaceId"))
    return {}


def _assign_ips(cloud: Cloud, p: Params) -> Body:
    eni_id = p.required("NetworkInterfaceId")
    ips = cloud.assign_private_ips(eni_id, p.integer("SecondaryPrivateIpAddressCount", 0),
                                   p.items("PrivateIpAddress"),
                                   client_token=p.get("ClientToken") or None)
    return {"AssignedPrivateIpAddressesSet": {"NetworkInterfaceId": eni_id,
                                              "PrivateIpSet": {"PrivateIpAddress": ips}}}


def _unassign_ips(cloud: Cloud, p: Params) -> Body:
    cloud.unassign_private_ips(p.required("NetworkInterfaceId"), p.items("PrivateIpAddress"))
    return {}


def _describe_enis(cloud: Cloud, p: Params) -> Body:
    """Every documented filter: NetworkInterfaceId.N, InstanceId, VSwitchId, VpcId, Status,
    Type, Tag.N, PrivateIpAddress.N, PrimaryIpAddress, NetworkInterfaceName, SecurityGroupId,
    ResourceGroupId, ServiceManaged, Ipv6Address.N."""
    service_managed = p.boolean("ServiceManaged") if p.get("ServiceManaged") else None
    enis = cloud.describe_network_interfaces(
        p.items("NetworkInterfaceId") or None, instance_id=p.get("InstanceId") or None,
        vswitch_id=p.get("VSwitchId") or None, vpc_id=p.get("VpcId") or None,
        status=p.get("Status") or None, eni_type=p.get("Type") or None,
        tags=p.tags() or None, private_ips=p.items("PrivateIpAddress") or None,
        security_group_id=p.get("SecurityGroupId") or None,
        primary_ip=p.get("PrimaryIpAddress") or None,
        name=p.get("NetworkInterfaceName") or None,
        resource_group_id=p.get("ResourceGroupId") or None,
        service_managed=service_managed,
        ipv6_addresses=p.items("Ipv6Address") or None)
    chunk, paging = _page(enis, p, 500)
    paging.pop("MaxResults", None)
    return {"NetworkInterfaceSets": {"NetworkInterfaceSet": [_eni_body(e) for e in chunk]},
            **paging}


def _describe_eni_attribute(cloud: Cloud, p: Params) -> Body:
    return _eni_body(cloud.get_network_interface(p.required("NetworkInterfaceId")))


# -- ECS: instances, types, security groups, regions -------------------------------------------
def _describe_types(cloud: Cloud, p: Params) -> Body:
    wanted = set(p.items("InstanceTypes"))
    family = p.get("InstanceTypeFamily")
    types = [t for t in cloud.instance_types()
             if (not wanted or t.instance_type_id in wanted)
             and (not family or t.family == family)]
    size = p.integer("MaxResults", 1600, 1, 1600)
    start = p.integer("NextToken", 0, 0) if p.get("NextToken") else 0
    chunk = types[start:start + size]
    token = str(start + size) if start + size < len(types) else ""
    return {"InstanceTypes": {"InstanceType": [_type_body(t) for t in chunk]}, "NextToken": token}


def _run_instances(cloud: Cloud, p: Params) -> Body:
    ids = cloud.run_instances(
        p.required("InstanceType"), p.required("VSwitchId"), _sg_ids(p),
        p.integer("Amount", 1), name=p.get("InstanceName"), zone_id=p.get("ZoneId") or None,
        private_ip=p.get("PrivateIpAddress") or None, client_token=p.get("ClientToken") or None)
    return {"InstanceIdSets": {"InstanceIdSet": ids}}


def _describe_instances(cloud: Cloud, p: Params) -> Body:
    insts = [] if _matches_nothing(
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
    chunk, paging = _page(insts, p, 100)
    paging.pop("MaxResults", None)
    return {"Instances": {"Instance": [_instance_body(cloud, i) for i in chunk]}, **paging}


def _name_matches(pattern: str, name: str) -> bool:
    """InstanceName's documented wildcard: ``*`` matches any run of characters."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "[[]").replace("?", "[?]"))


def _delete_instance(cloud: Cloud, p: Params) -> Body:
    cloud.delete_instance(p.required("InstanceId"), force=p.boolean("Force"))
    return {}


def _delete_instances(cloud: Cloud, p: Params) -> Body:
    ids = p.items("InstanceId")
    if not ids:
        raise codes.missing("InstanceId.N")
    cloud.delete_instances(ids, force=p.boolean("Force"),
                           client_token=p.get("ClientToken") or None)
    return {}


def _create_sg(cloud: Cloud, p: Params) -> Body:
    sg = cloud.create_security_group(p.required("VpcId"), name=p.get("SecurityGroupName"),
                                     description=p.get("Description"),
                                     client_token=p.get("ClientToken") or None)
    return {"SecurityGroupId": sg.security_group_id}


def _describe_sgs(cloud: Cloud, p: Params) -> Body:
    ids = p.json_items("SecurityGroupIds") + ([p.get("SecurityGroupId")]
                                               if p.get("SecurityGroupId") else [])
    sgs = [] if _matches_nothing(p, "Tag", "ResourceGroupId", "ServiceManaged") else (
        cloud.describe_security_groups(ids or None, vpc_id=p.get("VpcId") or None))
    name, kind, network = (p.get("SecurityGroupName"), p.get("SecurityGroupType"),
                           p.get("NetworkType"))
    fuzzy = p.boolean("FuzzyQuery")
    sgs = [s for s in sgs
           if (not name or (name in s.name if fuzzy else s.name == name))
           and (not kind or kind == "normal") and (not network or network == "vpc")]
    chunk, paging = _page(sgs, p, 50)
    paging.pop("MaxResults", None)
    return {"RegionId": p.get("RegionId", cloud.region_id), "SecurityGroups": {"SecurityGroup": [
        {"SecurityGroupId": s.security_group_id, "SecurityGroupName": s.name, "VpcId": s.vpc_id,
         "Description": s.description, "SecurityGroupType": "normal"} for s in chunk]}, **paging}


def _describe_regions(cloud: Cloud, p: Params) -> Body:
    return {"Regions": {"Region": [
        {"RegionId": r, "LocalName": cloud.region_name(r),
         "RegionEndpoint": f"ecs.{r}.aliyuncs.com"} for r in cloud.regions()]}}


def _describe_zones(cloud: Cloud, p: Params) -> Body:
    region = p.get("RegionId", cloud.region_id)
    return {"Zones": {"Zone": [{"ZoneId": z, "LocalName": z} for z in REGIONS[region]]}}


# -- VPC -----------------------------------------------------------------------------------------
def _create_vpc(cloud: Cloud, p: Params) -> Body:
    vpc = cloud.create_vpc(p.get("CidrBlock") or "172.16.0.0/12", name=p.get("VpcName"),
                           description=p.get("Description"),
                           client_token=p.get("ClientToken") or None,
                           region_id=p.get("RegionId") or None)
    return {"VpcId": vpc.vpc_id, "VRouterId": vpc.vrouter_id, "RouteTableId": "",
            "ResourceGroupId": ""}


def _describe_vpcs(cloud: Cloud, p: Params) -> Body:
    ids = [i.strip() for i in p.get("VpcId").split(",") if i.strip()]
    nothing = _matches_nothing(p, "Tag", "ResourceGroupId", "IsDefault", "EnableIpv6")
    vpcs = [] if nothing or not _owner_matches(p, "VpcOwnerId") else cloud.describe_vpcs(
        ids or None, name=p.get("VpcName") or None, region_id=p.get("RegionId") or None)
    chunk, paging = _page(vpcs, p, 50)
    paging.pop("MaxResults", None)
    return {"Vpcs": {"Vpc": [
        {"VpcId": v.vpc_id, "RegionId": v.region_id, "CidrBlock": v.cidr_block,
         "VpcName": v.name, "Description": v.description, "Status": v.status,
         "VRouterId": v.vrouter_id, "IsDefault": False, "CreationTime": v.creation_time,
         "OwnerId": ACCOUNT_ID, "ResourceGroupId": "",
         "VSwitchIds": {"VSwitchId": list(v.vswitch_ids)}} for v in chunk]}, **paging}


def _delete_vpc(cloud: Cloud, p: Params) -> Body:
    cloud.delete_vpc(p.required("VpcId"), client_token=p.get("ClientToken") or None)
    return {}


def _create_vswitch(cloud: Cloud, p: Params) -> Body:
    vsw = cloud.create_vswitch(p.required("VpcId"), p.required("ZoneId"),
                               p.required("CidrBlock"), name=p.get("VSwitchName"),
                               description=p.get("Description"),
                               client_token=p.get("ClientToken") or None)
    return {"VSwitchId": vsw.vswitch_id}


def _describe_vswitches(cloud: Cloud, p: Params) -> Body:
    ids = [i.strip() for i in p.get("VSwitchId").split(",") if i.strip()]
    nothing = _matches_nothing(p, "Tag", "ResourceGroupId", "IsDefault", "EnableIpv6")
    vsws = [] if nothing or not _owner_matches(p, "VSwitchOwnerId") else (
        cloud.describe_vswitches(ids or None, vpc_id=p.get("VpcId") or None,
                                 zone_id=p.get("ZoneId") or None,
                                 name=p.get("VSwitchName") or None))
    chunk, paging = _page(vsws, p, 50)
    paging.pop("MaxResults", None)
    return {"VSwitches": {"VSwitch": [
        {"VSwitchId": v.vswitch_id, "VpcId": v.vpc_id, "ZoneId": v.zone_id,
         "CidrBlock": v.cidr_block, "AvailableIpAddressCount": v.available_ip_count,
         "VSwitchName": v.name, "Description": v.description, "Status": v.status,
         "IsDefault": False, "CreationTime": v.creation_time, "OwnerId": ACCOUNT_ID,
         "ResourceGroupId": ""} for v in chunk]}, **paging}


def _delete_vswitch(cloud: Cloud, p: Params) -> Body:
    cloud.delete_vswitch(p.required("VSwitchId"))
    return {}


_VPC_ACTIONS: dict[str, Handler] = {
    "CreateVpc": _create_vpc, "DescribeVpcs": _describe_vpcs, "DeleteVpc": _delete_vpc,
    "CreateVSwitch": _create_vswitch, "DescribeVSwitches": _describe_vswitches,
    "DeleteVSwitch": _delete_vswitch, "DescribeZones": _describe_zones,
    "DescribeRegions": _describe_regions,
}
_ECS_ACTIONS: dict[str, Handler] = {
    **_VPC_ACTIONS,  # the 2014-05-26 ECS API also answers the VPC basics
    "CreateNetworkInterface": _create_eni, "AttachNetworkInterface": _attach_eni,
    "DetachNetworkInterface": _detach_eni, "DeleteNetworkInterface": _delete_eni,
    "AssignPrivateIpAddresses": _assign_ips, "UnassignPrivateIpAddresses": _unassign_ips,
    "DescribeNetworkInterfaces": _describe_enis,
    "DescribeNetworkInterfaceAttribute": _describe_eni_attribute,
    "DescribeInstanceTypes": _describe_types, "RunInstances": _run_instances,
    "DescribeInstances": _describe_instances, "DeleteInstance": _delete_instance,
    "DeleteInstances": _delete_instances, "CreateSecurityGroup": _create_sg,
    "DescribeSecurityGroups": _describe_sgs,
}
_PRODUCTS: dict[str, dict[str, Handler]] = {"ecs": _ECS_ACTIONS, "vpc": _VPC_ACTIONS}
