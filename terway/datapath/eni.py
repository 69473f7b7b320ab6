"""Find an ENI's link by MAC without dumping every link per pod, and set the ENI up as upstream's
veth policy-routing datapath does.

The first pod on an ENI dumps the node's links once, brings the ENI (and ``lo``) up with the
pod's MTU (the CNI config's ``mtu``, default 1500: upstream's ``nic.Setup`` of the ENI), sets
the sysctls pod traffic needs (``ip_forward``; ``rp_filter`` off on all, default and the ENI)
and makes the node IP/32 the ENI's only global IPv4 address (upstream's ``EnsureAddr`` with its
``HostIPSet``: other global addresses on the ENI, e.g. one a DHCP client gave it, are removed;
link-local ones stay). The node IP is the first global address on the default route's link
(``links.node_ip``, Kubernetes' choice; without a default route the first global address of the
namespace, where upstream fails the ADD). The result is kept per (node namespace, MAC, MTU).
Every later pod validates the entry with one ``RTM_GETLINK`` by index (the MAC must still match
and the link be up), so a detached and re-attached ENI, which comes back with a new ifindex, is
found and set up again; a pod with another MTU sets the ENI up again too.
"""

from __future__ import annotations

import ipaddress
import socket
import threading

from pyroute2 import IPRoute

from terway.datapath import links, nl
from terway.datapath.netns import iproute, netns_path, write_sysctls
from terway.datapath.types import DatapathError

SKIP_KINDS = ("ipvlan", "macvlan", "vlan")  # link kinds that copy their parent's MAC
# The kernel applies max(conf.all.rp_filter, conf.<link>.rp_filter): zeroing it on the ENI alone
# drops pods' return traffic on distributions that set all=1. Upstream zeroes all and default.
NODE_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.default.rp_filter": "0"}


class EniCache:
    """(node netns, MAC) → the ENI's link (and the MTU it was set up with), validated on every
    use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._links: dict[tuple[nl.NetnsKey, str], tuple[nl.Link, int]] = {}

    def lookup(self, sock: nl.Socket, netns: str | None, mac: str, mtu: int = 0) -> nl.Link:
        """The ENI's link, up, with ``mtu`` (0: left as it is) and the node IP; DatapathError
        when no link carries ``mac``."""
        key = (nl.netns_key(netns), mac.lower())
        with self._lock:
            cached = self._links.get(key)
        if cached is not None and cached[1] == mtu:
            link = sock.link(index=cached[0].index)
            if link is not None and link.mac == key[1] and link.up:
                return link
        link = self._prepare(sock, netns, key[1], mtu)
        with self._lock:
            self._links[key] = (link, mtu)
        return link

    def forget(self, netns: str | None = None) -> None:
        """Drop entries of ``netns`` (None: all), e.g. after the namespace was recreated."""
        with self._lock:
            path = None if netns is None else netns_path(netns)
            for key in [k for k in self._links if path is None or (k[0] and k[0][0] == path)]:
                del self._links[key]

    def _prepare(self, sock: nl.Socket, netns: str | None, mac: str, mtu: int) -> nl.Link:
        found = [ln for ln in sock.links() if ln.mac == mac and ln.kind not in SKIP_KINDS]
        if not found:
            raise DatapathError(f"ENI with MAC {mac} not found in host netns {netns or '(own)'}")
        eni = found[0]
        sock.set_link(name="lo")  # without a local table the kernel refuses `onlink` gateways
        sock.set_link(eni.index, mtu=mtu, rp_filter=0)  # hot-plugged ENIs arrive down
        write_sysctls(netns, NODE_SYSCTLS)
        with iproute(netns) as ipr:   # once per ENI: pyroute2's cost does not matter here
            own_node_ip(ipr, eni.index)
        eni.up = True
        return eni


def own_node_ip(ipr: IPRoute, eni: int) -> str | None:
    """Make the node IP/32 the only global IPv4 address of link ``eni`` (upstream's
    ``EnsureAddr``: an address is kept when prefix and scope match, every other global unicast
    address goes); the node IP, or None when the namespace has none (nothing changed)."""
    ip = links.node_ip(ipr, skip=eni)
    if ip is None:
        return None
    found = False
    for addr in ipr.get_addr(family=socket.AF_INET, index=eni):
        local = str(addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS"))
        if addr["index"] != eni or not _global_unicast(local):
            continue
        if local == ip and addr["prefixlen"] == 32 and addr["scope"] == links.RT_SCOPE_UNIVERSE:
            found = True
            continue
        links.ignore_missing(ipr.addr, "del", index=eni, address=local,
                             prefixlen=addr["prefixlen"])
    if not found:
        links.ignore_exists(ipr.addr, "add", index=eni, address=ip, prefixlen=32)
    return ip


def _global_unicast(ip: str) -> bool:
    """Go's ``net.IP.IsGlobalUnicast`` for IPv4: not unspecified, loopback, link-local,
    multicast or the broadcast address (private ranges are global unicast)."""
    a = ipaddress.IPv4Address(ip)
    return not (a.is_unspecified or a.is_loopback or a.is_link_local or a.is_multicast
                or a == ipaddress.IPv4Address("255.255.255.255"))


eni_cache = EniCache()
