"""Exclusive ENI: the whole ENI moves into the pod as its eth0.

Pod: ENI renamed ``eth0``, podIP/32, ``default via gw onlink``. Unless ``disable_host_peer``, a
veth (host ``caliX`` ↔ pod ``veth1``) carries service-CIDR traffic to the host stack: pod route
``service_cidr via 169.254.1.1 dev veth1 onlink src podIP`` (same for each of the netconf's
``host_stack_cidrs`` and for the node's own IP), permanent neighbour 169.254.1.1 →
host veth MAC; host route ``podIP/32 dev caliX``. Egress shaping on the pod's eth0 (ingress
arrives on the ENI directly: not shaped in this mode).
"""

from __future__ import annotations

import os
import socket

from pyroute2 import IPRoute

from terway.datapath import links, nl, tc
from terway.datapath.modes import EXCLUSIVE
from terway.datapath.naming import POD_GATEWAY, host_veth_name, parked_eni_name
from terway.datapath.netns import iproute, netns_exists, netns_path, open_netns
from terway.datapath.types import DatapathError, PodLinks, PodNetwork, PodSpec
from terway.datapath.veth import ensure_pair, paired

PEER_IFNAME = "veth1"


def setup(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Move the ENI into the pod and configure it; a retry finds it already moved."""
    eni_host_index = 0
    with iproute(host_netns) as host:
        index = links.find_by_mac(host, net.eni_mac)
        if index is not None:
            eni_host_index = index
            move_link(host, index, pod.netns)
    with iproute(pod.netns) as podr:
        index = links.require_eni(podr, net.eni_mac, f"host netns or pod netns {pod.netns}")
        _rename(podr, index, pod.ifname)
        links.lo_up(podr)
        podr.link("set", index=index, mtu=net.mtu, state="up")
        links.ignore_exists(podr.addr, "add", index=index, address=net.pod_ip, prefixlen=32)
        podr.route(
            "replace", dst="0.0.0.0/0", gateway=net.gateway, oif=index, flags=links.RTNH_F_ONLINK
        )
        tc.set_rate(podr, index, net.egress_bps, net.mtu)
        pod_mac = links.mac_of(podr, index)
    host_if = host_mac = ""
    if not net.disable_host_peer:
        host_if, host_mac = _host_peer(pod, net, host_netns)
    return PodLinks(EXCLUSIVE, pod.ifname, pod_mac, host_if, host_mac, eni_host_index, 0)


def move_link(ipr: IPRoute, index: int, netns: str) -> None:
    fd = open_netns(netns)
    try:
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, net_ns_fd=fd)
    finally:
        os.close(fd)


def _rename(ipr: IPRoute, index: int, name: str) -> None:
    if links.link_attr(ipr, index, "IFLA_IFNAME") == name:
        return
    other = links.ifindex(ipr, name)
    if other is not None:
        raise DatapathError(f"interface {name} already exists in the pod")
    ipr.link("set", index=index, state="down")
    ipr.link("set", index=index, ifname=name)


def _host_peer(pod: PodSpec, net: PodNetwork, host_netns: str | None) -> tuple[str, str]:
    host_if = host_veth_name(pod.pod_namespace, pod.pod_name)
    peer = PodSpec(pod.pod_namespace, pod.pod_name, pod.netns, PEER_IFNAME)
    with nl.host_socket(host_netns) as hsock, nl.pod_socket(pod.netns) as psock:
        if paired(hsock, psock, host_if, PEER_IFNAME) is None:  # kept when intact (re-sync)
            psock.del_link(name=PEER_IFNAME)
        hlink, _ = ensure_pair(hsock, psock, host_if, peer, net.mtu)
    host_idx, host_mac = hlink.index, hlink.mac
    with iproute(host_netns) as host:
        node_ip = links.node_ip(host)
        links.link_up(host, host_idx)
        links.host_sysctls(host_netns, [host_if])
        host.route("replace", dst=f"{net.pod_ip}/32", oif=host_idx, scope=links.RT_SCOPE_LINK)
    with iproute(pod.netns) as podr:
        index = links.ifindex(podr, PEER_IFNAME)
        if index is None:
            raise DatapathError(f"{PEER_IFNAME} vanished during setup")
        podr.link("set", index=index, state="up")
        podr.neigh(
            "replace",
            dst=POD_GATEWAY,
            lladdr=host_mac,
            ifindex=index,
            state=links.NUD_PERMANENT,
            family=socket.AF_INET,
        )
        node = [f"{node_ip}/32"] if node_ip else []   # as upstream: the node via the host
        for cidr in [net.service_cidr, *net.host_stack_cidrs, *node]:
            if not cidr:
                continue
            podr.route(
                "replace",
                dst=cidr,
                gateway=POD_GATEWAY,
                oif=index,
                prefsrc=net.pod_ip,
                flags=links.RTNH_F_ONLINK,
            )
    return host_if, host_mac


def teardown(pod: PodSpec, eni_mac: str, host_netns: str | None = None) -> None:
    """Give the ENI back to the host (from the pod, or from the root netns when the pod netns
    is gone and the kernel returned it there) and remove the host peer; idempotent."""
    with iproute(host_netns) as host:
        links.delete_link(host, host_veth_name(pod.pod_namespace, pod.pod_name))
    host_path = host_netns or f"/proc/{os.getpid()}/ns/net"
    if pod.netns and netns_exists(pod.netns):
        _park(pod.netns, eni_mac, host_path)
    if host_netns is not None:
        _park(None, eni_mac, host_path)  # a destroyed netns returns devices to the root netns


def _park(where: str | None, mac: str, host_path: str) -> None:
    with iproute(where) as ipr:
        index = links.find_by_mac(ipr, mac)
        if index is None:
            return
        if where is not None:
            _rename(ipr, index, parked_eni_name(mac))
        tc.clear(ipr, index)
        for addr in ipr.get_addr(index=index, family=socket.AF_INET):
            links.ignore_missing(
                ipr.addr,
                "del",
                index=index,
                address=addr.get_attr("IFA_ADDRESS"),
                prefixlen=addr["prefixlen"],
            )
        if os.path.realpath(host_path) != _own_path(where):
            move_link(ipr, index, host_path)


def _own_path(where: str | None) -> str:
    return os.path.realpath(netns_path(where)) if where else ""


def check(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> list[str]:
    if not netns_exists(pod.netns):
        return [f"pod netns {pod.netns} missing"]
    with iproute(pod.netns) as podr:
        index = links.find_by_mac(podr, net.eni_mac)
        if index is None:
            return [f"ENI {net.eni_mac} is not in the pod"]
        problems = []
        if links.link_attr(podr, index, "IFLA_IFNAME") != pod.ifname:
            problems.append(f"ENI is not named {pod.ifname} in the pod")
        addrs = [a.get_attr("IFA_ADDRESS") for a in podr.get_addr(index=index)]
        if net.pod_ip not in addrs:
            problems.append(f"{pod.ifname} lacks {net.pod_ip}")
    return problems
