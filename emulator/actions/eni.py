"""ECS ENI actions: create, attach, detach, delete, assign/unassign private IPs, describe."""

from __future__ import annotations

from emulator.model import Cloud, EniView
from emulator.model.params import Params

from .common import ACCOUNT_ID, NO_PUBLIC_IP, ip_sets, page, sg_ids
from .registry import Body, action

# CreateNetworkInterface's response has none of these (its SDK model declares none of them).
_NOT_IN_CREATE = ("Attachment", "CreationTime", "InstanceId", "AssociatedPublicIp",
                  "DeleteOnRelease")


def eni_body(eni: EniView) -> Body:
    body: Body = {
        "NetworkInterfaceId": eni.eni_id, "NetworkInterfaceName": eni.name,
        "Status": eni.status, "Type": eni.eni_type, "VpcId": eni.vpc_id,
        "VSwitchId": eni.vswitch_id, "ZoneId": eni.zone_id,
        "PrivateIpAddress": eni.primary_ip, "MacAddress": eni.mac,
        "SecurityGroupIds": {"SecurityGroupId": list(eni.security_group_ids)},
        "PrivateIpSets": ip_sets(eni),
        "Ipv6Sets": {"Ipv6Set": []}, "Ipv4PrefixSets": {"Ipv4PrefixSet": []},
        "Ipv6PrefixSets": {"Ipv6PrefixSet": []},
        "AssociatedPublicIp": dict(NO_PUBLIC_IP),
        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in eni.tags.items()]},
        "Description": eni.description, "InstanceId": eni.instance_id,
        "CreationTime": eni.creation_time, "ResourceGroupId": eni.resource_group_id,
        "OwnerId": str(ACCOUNT_ID), "SourceDestCheck": eni.source_dest_check,
        "DeleteOnRelease": eni.eni_type == "Primary", "ServiceManaged": False,
    }
    if eni.instance_id:
        body["Attachment"] = {"InstanceId": eni.instance_id, "DeviceIndex": eni.device_index}
    return body


@action("CreateNetworkInterface")
def create_network_interface(cloud: Cloud, p: Params) -> Body:
    eni = cloud.create_network_interface(
        p.required("VSwitchId"), sg_ids(p),
        secondary_ip_count=p.integer("SecondaryPrivateIpAddressCount", 0),
        primary_ip=p.get("PrimaryIpAddress") or None,
        private_ips=p.items("PrivateIpAddress"),
        tags=p.tags(), description=p.get("Description"),
        name=p.get("NetworkInterfaceName"), client_token=p.get("ClientToken") or None,
        resource_group_id=p.get("ResourceGroupId"),
        source_dest_check=p.boolean("SourceDestCheck"))
    body = eni_body(eni)
    for key in _NOT_IN_CREATE:
        body.pop(key, None)
    body["PrivateIpSets"] = ip_sets(eni, public=False)
    return body


@action("AttachNetworkInterface")
def attach_network_interface(cloud: Cloud, p: Params) -> Body:
    cloud.attach_network_interface(p.required("NetworkInterfaceId"), p.required("InstanceId"))
    return {}


@action("DetachNetworkInterface")
def detach_network_interface(cloud: Cloud, p: Params) -> Body:
    cloud.detach_network_interface(p.required("NetworkInterfaceId"), p.get("InstanceId") or None)
    return {}


@action("DeleteNetworkInterface")
def delete_network_interface(cloud: Cloud, p: Params) -> Body:
    cloud.delete_network_interface(p.required("NetworkInterfaceId"))
    return {}


@action("AssignPrivateIpAddresses")
def assign_private_ip_addresses(cloud: Cloud, p: Params) -> Body:
    eni_id = p.required("NetworkInterfaceId")
    ips = cloud.assign_private_ips(eni_id, p.integer("SecondaryPrivateIpAddressCount", 0),
                                   p.items("PrivateIpAddress"),
                                   client_token=p.get("ClientToken") or None)
    return {"AssignedPrivateIpAddressesSet": {"NetworkInterfaceId": eni_id,
                                              "PrivateIpSet": {"PrivateIpAddress": ips}}}


@action("UnassignPrivateIpAddresses")
def unassign_private_ip_addresses(cloud: Cloud, p: Params) -> Body:
    cloud.unassign_private_ips(p.required("NetworkInterfaceId"), p.items("PrivateIpAddress"))
    return {}


@action("DescribeNetworkInterfaces")
def describe_network_interfaces(cloud: Cloud, p: Params) -> Body:
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
    chunk, paging = page(enis, p, 500)
    paging.pop("MaxResults", None)
    return {"NetworkInterfaceSets": {"NetworkInterfaceSet": [eni_body(e) for e in chunk]},
            **paging}


@action("DescribeNetworkInterfaceAttribute")
def describe_network_interface_attribute(cloud: Cloud, p: Params) -> Body:
    return eni_body(cloud.get_network_interface(p.required("NetworkInterfaceId")))
