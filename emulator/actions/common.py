"""What several resource modules share: paging, filters that match nothing, owner ids, IP sets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emulator.model import EniView
from emulator.model.params import Params

from .registry import Body

ACCOUNT_ID = 1234567890123456   # the emulated account (``OwnerId``)
NO_PUBLIC_IP = {"PublicIpAddress": "", "AllocationId": ""}


def page(items: Sequence[Any], p: Params, max_size: int) -> tuple[list[Any], Body]:
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


def sg_ids(p: Params) -> list[str]:
    """``SecurityGroupId`` first, then ``SecurityGroupIds.N`` (without repeating it)."""
    ids = p.items("SecurityGroupIds")
    single = p.get("SecurityGroupId")
    return [single, *[i for i in ids if i != single]] if single else ids


def matches_nothing(p: Params, *names: str) -> bool:
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


def owner_matches(p: Params, name: str) -> bool:
    owner = p.get(name)
    return not owner or owner == str(ACCOUNT_ID)


def ip_sets(eni: EniView, public: bool = True) -> Body:
    sets: list[Body] = []
    for i, ip in enumerate(eni.private_ips):
        item: Body = {"PrivateIpAddress": ip, "Primary": i == 0}
        if public:
            item["AssociatedPublicIp"] = dict(NO_PUBLIC_IP)
        sets.append(item)
    return {"PrivateIpSet": sets}
