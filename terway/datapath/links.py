"""Small netlink helpers shared by the datapaths: lookups, idempotent add/delete, rules."""

from __future__ import annotations

import errno
import socket
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from terway.datapath.netns import write_sysctls
from terway.datapath.types import DatapathError

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTNH_F_ONLINK = 4
NUD_PERMANENT = 0x80


def ifindex(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def link_attr(ipr: IPRoute, index: int, attr: str) -> Any:
    return ipr.get_links(index)[0].get_attr(attr)


def mac_of(ipr: IPRoute, index: int) -> str:
    return str(link_attr(ipr, index, "IFLA_ADDRESS"))


def find_by_mac(ipr: IPRoute, mac: str) -> int | None:
    """The link carrying ``mac`` (an ENI), skipping link kinds that copy a parent's MAC."""
    mac = mac.lower()
    for link in ipr.get_links():
        if str(link.get_attr("IFLA_ADDRESS") or "").lower() != mac:
            continue
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        if kind in ("ipvlan", "macvlan", "vlan"):
            continue
        return int(link["index"])
    return None


def require_eni(ipr: IPRoute, mac: str, where: str) -> int:
    index = find_by_mac(ipr, mac)
    if index is None:
        raise DatapathError(f"ENI with MAC {mac} not found in {where}")
    return index


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete ``name`` if it exists; True when something was deleted."""
    index = ifindex(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise
    return True


def ignore_exists(fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def ignore_missing(fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL):
            raise


def rules_for(ipr: IPRoute, ip: str, priority: int, direction: str) -> list[Any]:
    """IPv4 rules at ``priority`` matching ``ip`` as ``dst``/``src`` (direction) /32."""
    key = "FRA_DST" if direction == "dst" else "FRA_SRC"
    out = []
    for rule in ipr.get_rules(family=socket.AF_INET):
        if rule.get_attr("FRA_PRIORITY") != priority or rule.get_attr(key) != ip:
            continue
        if rule[f"{direction}_len"] == 32:
            out.append(rule)
    return out


def rule_table(rule: Any) -> int:
    return int(rule.get_attr("FRA_TABLE") or rule["table"])


def ensure_rule(ipr: IPRoute, ip: str, priority: int, direction: str, table: int) -> None:
    """Exactly one rule ``<direction> ip/32 lookup table`` at ``priority``."""
    existing = rules_for(ipr, ip, priority, direction)
    if any(rule_table(r) == table for r in existing) and len(existing) == 1:
        return
    for rule in existing:
        ignore_missing(ipr.rule, "del", **_rule_key(ip, priority, direction, rule_table(rule)))
    ipr.rule("add", **_rule_key(ip, priority, direction, table))


def delete_rules(ipr: IPRoute, ip: str, priority: int, direction: str) -> set[int]:
    """Remove matching rules; the tables they pointed at."""
    tables = set()
    for rule in rules_for(ipr, ip, priority, direction):
        tables.add(rule_table(rule))
        ignore_missing(ipr.rule, "del", **_rule_key(ip, priority, direction, rule_table(rule)))
    return tables


def _rule_key(ip: str, priority: int, direction: str, table: int) -> dict[str, Any]:
    return {
        "family": socket.AF_INET,
        "priority": priority,
        direction: ip,
        f"{direction}_len": 32,
        "table": table,
    }


def table_in_use(ipr: IPRoute, table: int) -> bool:
    return any(rule_table(r) == table for r in ipr.get_rules(family=socket.AF_INET))


def flush_table(ipr: IPRoute, table: int) -> None:
    for route in ipr.get_routes(family=socket.AF_INET, table=table):
        if route.get_attr("RTA_TABLE") == table:
            ignore_missing(ipr.route, "del", table=table, dst=_dst(route), dst_len=route["dst_len"])


def _dst(route: Any) -> str:
    return str(route.get_attr("RTA_DST") or "0.0.0.0")


def host_sysctls(netns: str | None, ifnames: list[str]) -> None:
    """Forwarding on, reverse-path filtering off on the interfaces pod traffic crosses."""
    values = {"net.ipv4.ip_forward": "1"}
    values.update({f"net.ipv4.conf.{name}.rp_filter": "0" for name in ifnames})
    write_sysctls(netns, values)


def link_up(ipr: IPRoute, index: int) -> None:
    ipr.link("set", index=index, state="up")


def lo_up(ipr: IPRoute) -> None:
    """Loopback up: also creates the local FIB table that ``onlink`` gateway checks consult."""
    lo = ifindex(ipr, "lo")
    if lo is not None and link_attr(ipr, lo, "IFLA_OPERSTATE") not in ("UNKNOWN", "UP"):
        link_up(ipr, lo)


def node_ip(ipr: IPRoute, skip: int | None = None) -> str | None:
    """The node's IPv4 address as Kubernetes picks it: the first global address on the
    interface of the default route (without one, the first global address of the netns).
    Addresses on link ``skip`` are not candidates (an ENI's own)."""
    addrs = [a for a in ipr.get_addr(family=socket.AF_INET)
             if a["scope"] == RT_SCOPE_UNIVERSE and a["index"] != skip]
    oifs = {r.get_attr("RTA_OIF") for r in ipr.get_default_routes(family=socket.AF_INET)}
    preferred = [a for a in addrs if a["index"] in oifs] or addrs
    return str(preferred[0].get_attr("IFA_ADDRESS")) if preferred else None
