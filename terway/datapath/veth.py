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

from terway.datapath import links, tc
from terway.datapath.naming import (
    MAIN_TABLE,
    POD_GATEWAY,
    PRIO_FROM_POD,
    PRIO_TO_POD,
    eni_table,
    host_veth_name,
)
from terway.datapath.netns import iproute, netns_exists, open_netns
from terway.datapath.types import VETH, DatapathError, PodLinks, PodNetwork, PodSpec


def setup(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Wire the pod; safe to retry (a half-made veth from an earlier try is replaced)."""
    host_if = host_veth_name(pod.pod_namespace, pod.pod_name)
    with iproute(host_netns) as host:
        eni = links.require_eni(host, net.eni_mac, f"host netns {host_netns or '(own)'}")
        links.lo_up(host)  # without a local table the kernel refuses `onlink` gateways
        links.link_up(host, eni)
        table = eni_table(eni)
        links.delete_link(host, host_if)  # leftover of an interrupted ADD
        host_idx = create_veth_pair(host, host_if, pod, net.mtu)
        host_mac = links.mac_of(host, host_idx)
        links.host_sysctls(host_netns, [str(links.link_attr(host, eni, "IFLA_IFNAME")), host_if])
        links.link_up(host, host_idx)
        host.route("replace", dst=f"{net.pod_ip}/32", oif=host_idx, scope=links.RT_SCOPE_LINK)
        links.ensure_rule(host, net.pod_ip, PRIO_TO_POD, "dst", MAIN_TABLE)
        links.ensure_rule(host, net.pod_ip, PRIO_FROM_POD, "src", table)
        host.route(
            "replace",
            dst="0.0.0.0/0",
            gateway=net.gateway,
            oif=eni,
            table=table,
            flags=links.RTNH_F_ONLINK,
        )
        tc.set_rate(host, host_idx, net.ingress_bps, net.mtu)
    with iproute(pod.netns) as podr:
        pod_idx = _require(podr, pod.ifname)
        configure_pod_side(podr, pod_idx, net, host_mac)
        pod_mac = links.mac_of(podr, pod_idx)
    return PodLinks(VETH, pod.ifname, pod_mac, host_if, host_mac, eni, table)


def create_veth_pair(host: IPRoute, host_if: str, pod: PodSpec, mtu: int) -> int:
    """veth ``host_if`` in the host with its peer created directly as ``pod.ifname`` in the pod."""
    with iproute(pod.netns) as podr:
        if links.ifindex(podr, pod.ifname) is not None:
            raise DatapathError(f"interface {pod.ifname} already exists in {pod.netns}")
    fd = open_netns(pod.netns)
    try:
        host.link(
            "add",
            ifname=host_if,
            kind="veth",
            mtu=mtu,
            peer={"ifname": pod.ifname, "net_ns_fd": fd, "mtu": mtu},
        )
    finally:
        os.close(fd)
    return _require(host, host_if)


def configure_pod_side(podr: IPRoute, index: int, net: PodNetwork, host_mac: str) -> None:
    links.lo_up(podr)
    podr.link("set", index=index, mtu=net.mtu, state="up")
    links.ignore_exists(podr.addr, "add", index=index, address=net.pod_ip, prefixlen=32)
    podr.neigh(
        "replace",
        dst=POD_GATEWAY,
        lladdr=host_mac,
        ifindex=index,
        state=links.NUD_PERMANENT,
        family=socket.AF_INET,
    )
    podr.route(
        "replace", dst="0.0.0.0/0", gateway=POD_GATEWAY, oif=index, flags=links.RTNH_F_ONLINK
    )
    tc.set_rate(podr, index, net.egress_bps, net.mtu)


def _require(ipr: IPRoute, name: str) -> int:
    index = links.ifindex(ipr, name)
    if index is None:
        raise DatapathError(f"interface {name} vanished during setup")
    return index


def teardown(pod: PodSpec, pod_ip: str, host_netns: str | None = None) -> None:
    """Remove everything ``setup`` made; idempotent; fine when the pod netns is gone."""
    host_if = host_veth_name(pod.pod_namespace, pod.pod_name)
    with iproute(host_netns) as host:
        links.delete_link(host, host_if)  # takes the pod's eth0, the /32 route and tc with it
        links.delete_rules(host, pod_ip, PRIO_TO_POD, "dst")
        for table in links.delete_rules(host, pod_ip, PRIO_FROM_POD, "src"):
            if not links.table_in_use(host, table):
                links.flush_table(host, table)
    if pod.netns and netns_exists(pod.netns):
        with iproute(pod.netns) as podr:
            index = links.ifindex(podr, pod.ifname)
            if index is not None and _is_veth(podr, index):
                links.ignore_missing(podr.link, "del", index=index)


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
