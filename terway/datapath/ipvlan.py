"""IPVLAN: the pod's eth0 is an L2 ipvlan slave of the ENI (needs the ipvlan kernel module).

Pod: ``eth0`` (ipvlan mode l2 on the ENI) with podIP/<vSwitch prefix>, ``default via gw``, and,
as upstream, ``nodeIP/32 dev eth0 scope link`` with a permanent neighbour nodeIP → the pod's own
MAC: ipvlan then hands the packet straight to the slave owning the node IP (below), no ARP.
Host: one more slave ``ipvl_<ENI ifindex>`` on the ENI, because an ipvlan master cannot talk to
its own slaves: ARP off (its neighbours resolve to its own MAC, which ipvlan delivers by IP; an
ARP exchange would fail when the node answers from an address no slave owns, e.g. a ClusterIP),
the node IP/32 on it, and ``podIP/32 dev ipvl_X`` lets the host reach the pod. Service-CIDR and
``host_stack_cidrs`` traffic is redirected from the ENI's egress to ``ipvl_X`` with tc, as
upstream's tc path does (terway/datapath/redirect.py), so it crosses the node's stack
(kube-proxy). Egress is shaped on the pod's eth0; ingress is not shaped (there is no per-pod
host link).
"""

from __future__ import annotations

import hashlib
import os
import socket

from pyroute2 import IPRoute

from terway.datapath import links, redirect, tc
from terway.datapath.modes import IPVLAN
from terway.datapath.naming import ipvlan_host_name
from terway.datapath.netns import iproute, netns_exists, open_netns
from terway.datapath.types import DatapathError, PodLinks, PodNetwork, PodSpec

IPVLAN_MODE_L2 = 0
IFF_NOARP = 0x80


def setup(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Create the pod's slave straight inside its netns; a retry replaces a leftover slave, a
    re-run on a live pod (GC's re-sync) keeps its slave so its traffic never stops."""
    to_host = redirect.cidrs(net)  # bad CIDRs fail here, before anything changes
    with iproute(host_netns) as host:
        eni = links.require_eni(host, net.eni_mac, f"host netns {host_netns or '(own)'}")
        links.lo_up(host)
        host.link("set", index=eni, mtu=net.mtu, state="up")   # upstream: the ENI's MTU too
        host_slave = ensure_host_slave(host, eni, net.mtu)
        node_ip = links.node_ip(host, skip=host_slave)
        with iproute(pod.netns) as podr:
            index = _live_slave(podr, pod.ifname, eni, net.eni_mac)
        if index is None:
            _new_slave(host, eni, pod)
        host.route("replace", dst=f"{net.pod_ip}/32", oif=host_slave, scope=links.RT_SCOPE_LINK)
        redirect.ensure(host, eni, host_slave, to_host)
    with iproute(pod.netns) as podr:
        if index is None:
            tmp = temp_name(pod)
            index = links.ifindex(podr, tmp)
            if index is None:
                raise DatapathError(f"{tmp} vanished during setup")
            podr.link("set", index=index, ifname=pod.ifname)
        links.lo_up(podr)
        podr.link("set", index=index, mtu=net.mtu, state="up")
        links.ignore_exists(
            podr.addr, "add", index=index, address=net.pod_ip, prefixlen=net.prefix_len
        )
        podr.route("replace", dst="0.0.0.0/0", gateway=net.gateway, oif=index)
        tc.set_rate(podr, index, net.egress_bps, net.mtu)
        pod_mac = links.mac_of(podr, index)
        if node_ip is not None:
            _node_via_own_mac(podr, index, node_ip, pod_mac)
    return PodLinks(IPVLAN, pod.ifname, pod_mac, "", "", eni, 0)


def _node_via_own_mac(podr: IPRoute, index: int, node_ip: str, pod_mac: str) -> None:
    """``nodeIP/32 dev eth0 scope link`` + neighbour nodeIP → the pod's own MAC (upstream's):
    ipvlan sees its own MAC as destination and delivers by IP to ``ipvl_X``, which owns the
    node IP; ARP would get no answer (``ipvl_X`` has ARP off)."""
    podr.route("replace", dst=f"{node_ip}/32", oif=index, scope=links.RT_SCOPE_LINK)
    podr.neigh("replace", dst=node_ip, lladdr=pod_mac, ifindex=index,
               state=links.NUD_PERMANENT, family=socket.AF_INET)


def _live_slave(podr: IPRoute, name: str, eni: int, eni_mac: str) -> int | None:
    """The pod's ``name`` when it already is an ipvlan slave of this ENI (same MAC: slaves
    share their master's), else None."""
    index = links.ifindex(podr, name)
    if index is None or not _is_ipvlan(podr, index):
        return None
    link = podr.get_links(index)[0]
    same = link.get_attr("IFLA_LINK") == eni and link.get_attr("IFLA_ADDRESS") == eni_mac
    return index if same else None


def _new_slave(host: IPRoute, eni: int, pod: PodSpec) -> None:
    """A fresh slave in the pod, named ``temp_name(pod)`` (leftovers of earlier tries go)."""
    tmp = temp_name(pod)
    with iproute(pod.netns) as podr:
        for name in (pod.ifname, tmp):
            leftover = links.ifindex(podr, name)
            if leftover is not None:
                if not _is_ipvlan(podr, leftover):
                    raise DatapathError(f"interface {name} already exists in {pod.netns}")
                podr.link("del", index=leftover)
    # The kernel checks a new link's name in the *caller's* netns even when IFLA_NET_NS_FD
    # puts it elsewhere: "eth0" clashes with the node's own eth0 (EEXIST). So: a name unique
    # to the pod first, renamed inside the pod.
    fd = open_netns(pod.netns)
    try:
        host.link("add", ifname=tmp, kind="ipvlan", link=eni, ipvlan_mode=IPVLAN_MODE_L2,
                  net_ns_fd=fd)
    finally:
        os.close(fd)


def temp_name(pod: PodSpec) -> str:
    """The pod's slave's name until it is renamed inside the pod (15 chars, stable per pod)."""
    digest = hashlib.sha1(f"{pod.pod_namespace}.{pod.pod_name}".encode()).hexdigest()
    return "ipvt" + digest[:11]


def ensure_host_slave(host: IPRoute, eni: int, mtu: int) -> int:
    name = ipvlan_host_name(eni)
    index = links.ifindex(host, name)
    if index is None:
        links.ignore_exists(
            host.link, "add", ifname=name, kind="ipvlan", link=eni, ipvlan_mode=IPVLAN_MODE_L2
        )
        index = links.ifindex(host, name)
        if index is None:
            raise DatapathError(f"could not create {name}")
    host.link("set", index=index, mtu=mtu, state="up")
    # ARP off, as upstream: the host's neighbour entries on ipvl_X then resolve to its own MAC,
    # which ipvlan delivers by destination IP. With ARP, a reply from an address no slave owns
    # (a ClusterIP, a host_stack_cidrs address) waits forever: the pod's ARP answer is sent to
    # that address, which ipvlan hands to the ENI instead of ipvl_X. Only once the link is up:
    # ipvlan's open() turns ARP back on in L2 mode (upstream sets it before, so its first pod
    # on an ENI leaves ARP on until the next ADD).
    host.link("set", index=index, arp=False)
    # ipvlan hands unicast (ARP replies included) to the slave that owns the destination IP: a
    # host slave without an address never gets the pod's replies. Upstream gives it the node IP
    # (its GetHostIP: the default route's link's address, as links.node_ip picks it).
    ip = links.node_ip(host, skip=index)
    if ip is not None:
        links.ignore_exists(host.addr, "add", index=index, address=ip, prefixlen=32)
    return index


def _is_ipvlan(ipr: IPRoute, index: int) -> bool:
    info = links.link_attr(ipr, index, "IFLA_LINKINFO")
    return bool(info and info.get_attr("IFLA_INFO_KIND") == "ipvlan")


def teardown(pod: PodSpec, pod_ip: str, host_netns: str | None = None) -> None:
    """Remove the pod's slave (gone with its netns anyway) and the host route; idempotent.
    The host slave is removed when no pod route uses it any more, and the ENI's redirect
    filters (and clsact, unless something else uses it) with it."""
    if pod.netns and netns_exists(pod.netns):
        with iproute(pod.netns) as podr:
            index = links.ifindex(podr, pod.ifname)
            if index is not None and _is_ipvlan(podr, index):
                links.ignore_missing(podr.link, "del", index=index)
    with iproute(host_netns) as host:
        for route in host.get_routes(dst=pod_ip, dst_len=32):
            oif = route.get_attr("RTA_OIF")
            name = links.link_attr(host, oif, "IFLA_IFNAME") if oif else ""
            if str(name).startswith("ipvl_"):
                links.ignore_missing(
                    host.route, "del", dst=f"{pod_ip}/32", oif=oif, scope=links.RT_SCOPE_LINK
                )
                if not host.get_routes(oif=oif, scope=links.RT_SCOPE_LINK):
                    eni = links.link_attr(host, oif, "IFLA_LINK")
                    if eni:
                        redirect.remove(host, int(eni))
                    links.ignore_missing(host.link, "del", index=oif)


def check(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> list[str]:
    if not netns_exists(pod.netns):
        return [f"pod netns {pod.netns} missing"]
    with iproute(pod.netns) as podr:
        index = links.ifindex(podr, pod.ifname)
        if index is None or not _is_ipvlan(podr, index):
            return [f"{pod.ifname} in the pod is missing or not an ipvlan slave"]
        addrs = [a.get_attr("IFA_ADDRESS") for a in podr.get_addr(index=index)]
        if net.pod_ip not in addrs:
            return [f"{pod.ifname} lacks {net.pod_ip}"]
    return _check_host(net, host_netns)


def _check_host(net: PodNetwork, host_netns: str | None) -> list[str]:
    """The host slave and one redirect filter per service/host-stack CIDR on the ENI."""
    try:
        to_host = redirect.cidrs(net)
    except DatapathError as exc:
        return [str(exc)]
    with iproute(host_netns) as host:
        eni = links.find_by_mac(host, net.eni_mac)
        if eni is None:
            return [f"ENI {net.eni_mac} missing from the host netns"]
        name = ipvlan_host_name(eni)
        slave = links.ifindex(host, name)
        if slave is None:
            return [f"host slave {name} missing"]
        arp = not host.get_links(slave)[0]["flags"] & IFF_NOARP
        gone = redirect.missing(host, eni, slave, to_host)
    findings = [f"host slave {name} has ARP on"] if arp else []
    return findings + [f"no tc redirect of {cidr} to {name} on the ENI's egress" for cidr in gone]
