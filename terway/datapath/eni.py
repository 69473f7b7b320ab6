"""Find an ENI's link by MAC without dumping every link per pod.

The first pod on an ENI dumps the node's links once, brings the ENI (and ``lo``) up, and sets
the sysctls pod traffic needs (``ip_forward``; ``rp_filter`` off on all, default and the ENI);
the result is kept per (node namespace, MAC). Every later pod validates the entry with one
``RTM_GETLINK`` by index (the MAC must still match and the link be up), so a detached and
re-attached ENI, which comes back with a new ifindex, is found again.
"""

from __future__ import annotations

import threading

from terway.datapath import nl
from terway.datapath.netns import netns_path, write_sysctls
from terway.datapath.types import DatapathError

SKIP_KINDS = ("ipvlan", "macvlan", "vlan")  # link kinds that copy their parent's MAC
# The kernel applies max(conf.all.rp_filter, conf.<link>.rp_filter): zeroing it on the ENI alone
# drops pods' return traffic on distributions that set all=1. Upstream zeroes all and default.
NODE_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.default.rp_filter": "0"}


class EniCache:
    """(node netns, MAC) → the ENI's link, validated on every use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._links: dict[tuple[nl.NetnsKey, str], nl.Link] = {}

    def lookup(self, sock: nl.Socket, netns: str | None, mac: str) -> nl.Link:
        """The ENI's link, up; DatapathError when no link carries ``mac``."""
        key = (nl.netns_key(netns), mac.lower())
        with self._lock:
            cached = self._links.get(key)
        if cached is not None:
            link = sock.link(index=cached.index)
            if link is not None and link.mac == key[1] and link.up:
                return link
        link = self._prepare(sock, netns, key[1])
        with self._lock:
            self._links[key] = link
        return link

    def forget(self, netns: str | None = None) -> None:
        """Drop entries of ``netns`` (None: all), e.g. after the namespace was recreated."""
        with self._lock:
            path = None if netns is None else netns_path(netns)
            for key in [k for k in self._links if path is None or (k[0] and k[0][0] == path)]:
                del self._links[key]

    def _prepare(self, sock: nl.Socket, netns: str | None, mac: str) -> nl.Link:
        found = [ln for ln in sock.links() if ln.mac == mac and ln.kind not in SKIP_KINDS]
        if not found:
            raise DatapathError(f"ENI with MAC {mac} not found in host netns {netns or '(own)'}")
        eni = found[0]
        sock.set_link(name="lo")  # without a local table the kernel refuses `onlink` gateways
        sock.set_link(eni.index, rp_filter=0)  # hot-plugged ENIs arrive down
        write_sysctls(netns, NODE_SYSCTLS)
        eni.up = True
        return eni


eni_cache = EniCache()
