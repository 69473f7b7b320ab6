"""IPVLAN: the pod's eth0 is an L2 ipvlan slave of the ENI (needs the ipvlan kernel module).

Pod: ``eth0`` (ipvlan mode l2 on the ENI) with podIP/<vSwitch prefix>, ``default via gw``.
Host: one more slave ``ipvl_<ENI ifindex>`` on the ENI, because an ipvlan master cannot talk to
its own slaves; ``podIP/32 dev ipvl_X`` lets the host reach the pod. Upstream also redirects
service-CIDR traffic from the ENI to the host stack with tc/eBPF: not done here (docs/datapath.md).
Egress is shaped on the pod's eth0; ingress is not shaped (there is no per-pod host link).
"""

from __future__ import annotations

import hashlib
import os

from pyroute2 import IPRoute

from terway.datapath import links, tc
from terway.datapath.naming import ipvlan_host_name
from terway.datapath.netns import iproute, netns_exists, open_netns
from terway.datapath.types import IPVLAN, DatapathError, PodLinks, PodNetwork, PodSpec

IPVLAN_MODE_L2 = 0


def setup(pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Create the pod's slave straight inside its netns; a retry replaces a leftover slave, a
    re-run on a live pod (GC's re-sync) keeps its slave so its traffic never stops."""
    with iproute(host_netns) as host:
        eni = links.require_eni(host, net.eni_mac, f"host netns {host_netns or '(own)'}")
        links.lo_up(host)
        host.link("set", index=eni, mtu=net.mtu, state="up")   # upstream: the ENI's MTU too
        host_slave = ensure_host_slave(host, eni, net.mtu)
        with iproute(pod.netns) as podr:
            index = _live_slave(podr, pod.ifname, eni, net.eni_mac)
        if index is None:
            _new_slave(host, eni, pod)
        host.route("replace", dst=f"{net.pod_ip}/32", oif=host_slave, scope=links.RT_SCOPE_LINK)
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
    return PodLinks(IPVLAN, pod.ifname, pod_mac, "", "", eni, 0)


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
    The host slave is removed when no pod route uses it any more."""
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
    return []
