"""veth + policy routing (upstream's default ENIIP datapath).

Pod: ``eth0`` podIP/32, ``default via 169.254.1.1 onlink``, permanent neighbour 169.254.1.1 →
host veth MAC. Host: ``podIP/32 dev caliX scope link``; rule ``to podIP lookup main`` (512);
rule ``from podIP lookup 1000+ENI ifindex`` (2048); that table ``default via gw dev ENI onlink``.
Pod egress is shaped on the pod's eth0, pod ingress on the host veth.
"""

from __future__ import annotations

import os
import socket

from pyroute2 import IPRoute

from terway.datapath import links, nl, tc
from terway.datapath.eni import eni_cache
from terway.datapath.modes import VETH
from terway.datapath.naming import (
    HOST_VETH_PREFIX,
    MAIN_TABLE,
    POD_GATEWAY,
    PRIO_FROM_POD,
    PRIO_TO_POD,
    eni_table,
    host_veth_name,
)
from terway.datapath.netns import iproute, netns_exists, open_netns
from terway.datapath.types import DatapathError, PodLinks, PodNetwork, PodSpec


def setup(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Wire the pod; safe to retry, and to re-run on a live pod (GC's re-sync): an intact veth
    pair is kept, so the pod's traffic never stops; a half-made one is replaced.

    Raw rtnetlink (terway.datapath.nl): ~16 round trips, one pooled socket in the node's
    namespace and one fresh socket in the pod's; tc (only with a bandwidth limit) on pyroute2.
    """
    host_if = host_veth_name(pod.pod_namespace, pod.pod_name)
    with nl.host_socket(host_netns) as host, nl.pod_socket(pod.netns) as podr:
        eni = eni_cache.lookup(host, host_netns, net.eni_mac, net.mtu)
        table = eni_table(eni.index)
        hlink, plink = ensure_pair(host, podr, host_if, pod, net.mtu)
        host.set_link(hlink.index, rp_filter=0)
        host.replace_route(net.pod_ip, 32, hlink.index, scope=nl.RT_SCOPE_LINK)
        _ensure_rules(host, net.pod_ip, table)
        host.replace_route(
            "0.0.0.0", 0, eni.index, gateway=net.gateway, table=table, flags=links.RTNH_F_ONLINK
        )
        podr.set_link(name="lo")
        podr.set_link(plink.index)
        podr.add_addr(plink.index, net.pod_ip, 32)
        podr.replace_neigh(plink.index, POD_GATEWAY, hlink.mac, links.NUD_PERMANENT)
        podr.replace_route(
            "0.0.0.0", 0, plink.index, gateway=POD_GATEWAY, flags=links.RTNH_F_ONLINK
        )
    if net.ingress_bps > 0:  # fresh links carry no qdisc; a kept pair has this pod's own
        with iproute(host_netns) as ipr:
            tc.set_rate(ipr, hlink.index, net.ingress_bps, net.mtu)
    if net.egress_bps > 0:
        with iproute(pod.netns) as ipr:
            tc.set_rate(ipr, plink.index, net.egress_bps, net.mtu)
    return PodLinks(VETH, pod.ifname, plink.mac, host_if, hlink.mac, eni.index, table)


def paired(host: nl.Socket, podr: nl.Socket, host_if: str,
           pod_if: str) -> tuple[nl.Link, nl.Link] | None:
    """(host end, pod end) when ``host_if`` and the pod's ``pod_if`` are one veth pair."""
    hlink, plink = host.link(name=host_if), podr.link(name=pod_if)
    if hlink is not None and plink is not None and hlink.kind == plink.kind == "veth" and \
            hlink.peer == plink.index and plink.peer == hlink.index:
        return hlink, plink
    return None


def ensure_pair(host: nl.Socket, podr: nl.Socket, host_if: str, pod: PodSpec,
                mtu: int) -> tuple[nl.Link, nl.Link]:
    """The pod's veth pair (host end, pod end ``pod.ifname``): the existing one when intact,
    else a new one (a leftover host end goes first: deleting it takes its pod end too)."""
    pair = paired(host, podr, host_if, pod.ifname)
    if pair is not None:
        return pair
    host.del_link(name=host_if)
    if podr.link(name=pod.ifname) is not None:
        raise DatapathError(f"interface {pod.ifname} already exists in {pod.netns}")
    fd = open_netns(pod.netns)
    try:
        host.add_veth(host_if, mtu, pod.ifname, fd)
    finally:
        os.close(fd)
    return _require_nl(host, host_if), _require_nl(podr, pod.ifname)


def _require_nl(sock: nl.Socket, name: str) -> nl.Link:
    link = sock.link(name=name)
    if link is None:
        raise DatapathError(f"interface {name} vanished during setup")
    return link


def _ensure_rules(host: nl.Socket, ip: str, table: int) -> None:
    """Exactly one ``to ip lookup main`` (512) and one ``from ip lookup table`` (2048)."""
    want = {(PRIO_TO_POD, "dst"): MAIN_TABLE, (PRIO_FROM_POD, "src"): table}
    found: dict[tuple[int, str], list[int]] = {key: [] for key in want}
    for rule in host.rules():
        for prio, direction in want:
            if rule.priority == prio and getattr(rule, direction) == ip:
                found[(prio, direction)].append(rule.table)
    for (prio, direction), tables in found.items():
        if tables == [want[(prio, direction)]]:
            continue
        for old in tables:
            host.rule(False, prio, ip, direction, old)
        host.rule(True, prio, ip, direction, want[(prio, direction)])


def teardown(pod: PodSpec, pod_ip: str, host_netns: str | None = None) -> None:
    """Remove everything ``setup`` made; idempotent; fine when the pod netns is gone.

    Deleting the host veth takes the pod's eth0, the /32 route and both qdiscs with it; then
    the two rules (one rule dump, one delete each) and, if no rule uses it any more, the table.
    """
    host_if = host_veth_name(pod.pod_namespace, pod.pod_name)
    with nl.host_socket(host_netns) as host:
        deleted = host.del_link(name=host_if)
        rules = host.rules()
        tables = set()
        for rule in rules:
            if rule.priority == PRIO_TO_POD and rule.dst == pod_ip:
                host.rule(False, PRIO_TO_POD, pod_ip, "dst", rule.table)
            elif rule.priority == PRIO_FROM_POD and rule.src == pod_ip:
                host.rule(False, PRIO_FROM_POD, pod_ip, "src", rule.table)
                tables.add(rule.table)
        for table in tables:
            users = [r for r in rules if r.table == table and r.src != pod_ip]
            if not users:
                for dst, dst_len in host.routes(table):
                    host.del_route(dst, dst_len, table)
    if deleted or not pod.netns or not netns_exists(pod.netns):
        return  # the peer went with the host veth (or there is no pod netns)
    with iproute(pod.netns) as podr:  # rare: a pod-side veth whose host end is gone
        index = links.ifindex(podr, pod.ifname)
        if index is not None and _is_veth(podr, index):
            links.ignore_missing(podr.link, "del", index=index)


def wired_pods(host_netns: str | None = None) -> dict[str, str]:
    """{pod IP: host veth} of every pod the node routes to through a ``cali*`` veth: what a
    daemon without records (a migration from upstream Terway, whose datapath is the same) must
    not hand out again."""
    with nl.host_socket(host_netns) as host:
        names = {link.index: link.name for link in host.links()}
        return {dst: names[oif] for dst, dst_len, oif in host.routes_via(MAIN_TABLE)
                if dst_len == 32 and names.get(oif, "").startswith(HOST_VETH_PREFIX)}


def _is_veth(ipr: IPRoute, index: int) -> bool:
    info = links.link_attr(ipr, index, "IFLA_LINKINFO")
    return bool(info and info.get_attr("IFLA_INFO_KIND") == "veth")


def check(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> list[str]:
    """What is missing or wrong, as short sentences (empty: all in place)."""
    problems: list[str] = []
    host_if = host_veth_name(pod.pod_namespace, pod.pod_name)
    with iproute(host_netns) as host:
        host_idx = links.ifindex(host, host_if)
        if host_idx is None:
            problems.append(f"host veth {host_if} missing")
        if not links.rules_for(host, net.pod_ip, PRIO_TO_POD, "dst"):
            problems.append(f"rule to {net.pod_ip} (prio {PRIO_TO_POD}) missing")
        from_rules = links.rules_for(host, net.pod_ip, PRIO_FROM_POD, "src")
        if not from_rules:
            problems.append(f"rule from {net.pod_ip} (prio {PRIO_FROM_POD}) missing")
        eni = links.find_by_mac(host, net.eni_mac)
        if eni is None:
            problems.append(f"ENI {net.eni_mac} missing from the host")
        elif from_rules and links.rule_table(from_rules[0]) != eni_table(eni):
            problems.append(f"rule from {net.pod_ip} does not use table {eni_table(eni)}")
    if not netns_exists(pod.netns):
        return [*problems, f"pod netns {pod.netns} missing"]
    with iproute(pod.netns) as podr:
        index = links.ifindex(podr, pod.ifname)
        if index is None:
            return [*problems, f"{pod.ifname} missing in the pod"]
        addrs = [a.get_attr("IFA_ADDRESS") for a in podr.get_addr(index=index)]
        if net.pod_ip not in addrs:
            problems.append(f"{pod.ifname} lacks {net.pod_ip} (has {addrs})")
        if not podr.get_default_routes(family=socket.AF_INET):
            problems.append("pod has no default route")
    return problems
