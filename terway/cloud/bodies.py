"""Wire-shaped response dicts (``body.to_map()`` of the SDK) → the boundary's dataclasses.

Parsing plain dicts keeps this independent of the SDK's model classes and testable on canned JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terway.cloud.api import Eni, InstanceTypeLimits, VSwitch

Wire = Mapping[str, Any]


def _list(d: Wire, outer: str, inner: str) -> list[Any]:
    """``{"Outer": {"Inner": [...]}}`` → the list (absent or null → [])."""
    box = d.get(outer) or {}
    items = box.get(inner) if isinstance(box, Mapping) else None
    if items is None:
        return []
    return list(items) if isinstance(items, list) else [items]


def eni_from_wire(d: Wire) -> Eni:
    ip_sets = _list(d, "PrivateIpSets", "PrivateIpSet")
    primary = str(d.get("PrivateIpAddress") or "")
    if not primary:
        primary = next(
            (str(s.get("PrivateIpAddress", "")) for s in ip_sets if s.get("Primary")), "")
    others = [str(s.get("PrivateIpAddress", "")) for s in ip_sets]
    ips = ([primary] if primary else []) + [ip for ip in others if ip and ip != primary]
    tags = {str(t.get("TagKey", "")): str(t.get("TagValue", ""))
            for t in _list(d, "Tags", "Tag")}
    return Eni(
        eni_id=str(d.get("NetworkInterfaceId", "")),
        mac=str(d.get("MacAddress", "")),
        vswitch_id=str(d.get("VSwitchId", "")),
        zone_id=str(d.get("ZoneId", "")),
        status=str(d.get("Status", "")),
        primary_ip=primary,
        private_ips=tuple(ips),
        instance_id=str(d.get("InstanceId") or ""),
        eni_type=str(d.get("Type") or "Secondary"),
        security_group_ids=tuple(str(s) for s in _list(d, "SecurityGroupIds", "SecurityGroupId")),
        tags=tags,
        resource_group_id=str(d.get("ResourceGroupId") or ""),
    )


def enis_from_page(d: Wire) -> list[Eni]:
    return [eni_from_wire(x) for x in _list(d, "NetworkInterfaceSets", "NetworkInterfaceSet")]


def vswitches_from_wire(d: Wire) -> list[VSwitch]:
    return [
        VSwitch(
            vswitch_id=str(v.get("VSwitchId", "")),
            zone_id=str(v.get("ZoneId", "")),
            cidr=str(v.get("CidrBlock", "")),
            available_ip_count=int(v.get("AvailableIpAddressCount") or 0),
            vpc_id=str(v.get("VpcId") or ""),
        )
        for v in _list(d, "VSwitches", "VSwitch")
    ]


def instance_types_from_wire(d: Wire) -> list[InstanceTypeLimits]:
    return [
        InstanceTypeLimits(
            instance_type=str(t.get("InstanceTypeId", "")),
            eni_quantity=int(t.get("EniQuantity") or 0),
            ips_per_eni=max(int(t.get("EniPrivateIpAddressQuantity") or 0), 0),
            eni_total_quantity=int(t.get("EniTotalQuantity") or 0),
            trunk_supported=bool(t.get("EniTrunkSupported")),
        )
        for t in _list(d, "InstanceTypes", "InstanceType")
    ]


def assigned_ips_from_wire(d: Wire) -> list[str]:
    box = d.get("AssignedPrivateIpAddressesSet") or {}
    return [str(ip) for ip in _list(box, "PrivateIpSet", "PrivateIpAddress")]
