"""Converges the kernel to a ``Desired``: router namespaces, node namespaces, ENI veth pairs.

Topology (see docs/fabric.md): one router namespace per VPC (named after the VPC id) holding every
vSwitch gateway on its ``lo`` and one veth end per plugged ENI; the other end is the ENI in the
node namespace (named after the instance id) with the ENI's MAC. Each IP the ENI owns gets, in the
router, a ``/32`` route and a permanent neighbour entry (IP → ENI MAC) on that veth: the router
"forwards each assigned IP to the ENI that owns it", with no ARP from nodes needed for pod IPs.
``proxy_arp`` on the router's veth ends makes any assigned IP reachable on-link from every node,
as the real vSwitch does; addresses nobody owns stay unanswered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .desired import Desired, EniWant, NodeWant
from .netns import (
    FabricError,
    ip,
    ip_batch,
    link_names,
    netns_add,
    netns_delete,
    netns_exists,
    write_sysctls,
)
from .registry import Registry

log = logging.getLogger("emulator.fabric")

ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.default.proxy_arp": "1",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
_ETH = re.compile(r"^eth(\d+)$")


@dataclass(slots=True)
class Plugged:
    """An ENI as it is in the kernel: the router-side and node-side link names."""

    want: EniWant
    router_link: str
    node_link: str


@dataclass(slots=True)
class NodeState:
    vpc_id: str
    enis: dict[str, Plugged] = field(default_factory=dict)


class Plumber:
    """Owns the fabric's namespaces; ``apply(desired)`` is idempotent and restartable."""

    def __init__(self, registry: Registry,
                 on_router: Callable[[str], None] | None = None) -> None:
        self.registry = registry
        self.on_router = on_router
        self.routers: set[str] = set()
        self.nodes: dict[str, NodeState] = {}
        self._gateways: dict[str, set[str]] = {}
        self._seq = 0

    # -- public -----------------------------------------------------------------------------
    def apply(self, desired: Desired) -> None:
        for instance_id in [i for i in self.nodes if not _same_vpc(desired, i, self.nodes[i])]:
            self._remove_node(instance_id)
        for vpc_id in sorted(desired.vpcs()):
            self._ensure_router(vpc_id)
        for _, want in sorted(desired.nodes.items()):
            self._converge_node(want)

    def owners(self) -> dict[str, str]:
        """Every plugged IP → the instance whose ENI owns it (for the metadata proxy)."""
        return {addr: iid for iid, node in self.nodes.items()
                for p in node.enis.values() for addr in p.want.ips}

    def teardown(self, keep_routers: bool = False) -> None:
        for instance_id in list(self.nodes):
            self._remove_node(instance_id)
        if not keep_routers:
            for router in list(self.routers):
                netns_delete(router)
                self.registry.discard(router)
            self.routers.clear()
            self._gateways.clear()

    # -- routers ----------------------------------------------------------------------------
    def _ensure_router(self, vpc_id: str) -> None:
        if vpc_id in self.routers:
            return
        self._reclaim(vpc_id)
        netns_add(vpc_id)
        self.registry.add(vpc_id)
        write_sysctls(vpc_id, ROUTER_SYSCTLS)
        self.routers.add(vpc_id)
        self._gateways[vpc_id] = set()
        if self.on_router is not None:
            self.on_router(vpc_id)

    def _ensure_gateway(self, vpc_id: str, gateway: str) -> None:
        if gateway not in self._gateways[vpc_id]:
            ip("addr", "replace", f"{gateway}/32", "dev", "lo", ns=vpc_id)
            self._gateways[vpc_id].add(gateway)

    def _reclaim(self, name: str) -> None:
        """Delete a stale namespace of ``name`` (a crashed run of ours), never one that another
        running fabric made: two clouds with one seed name their instances alike."""
        owner = self.registry.held_elsewhere(name)
        if owner is not None:
            raise FabricError(f"netns {name} belongs to the running fabric of process {owner} "
                              f"(another cloud with this seed?): not deleting it")
        netns_delete(name)

    # -- nodes ------------------------------------------------------------------------------
    def _converge_node(self, want: NodeWant) -> None:
        state = self.nodes.get(want.instance_id)
        if state is None:
            state = self._create_node(want)
        wanted = {e.eni_id: e for e in want.enis}
        for eni_id in [e for e in state.enis if e not in wanted]:
            self._unplug(want.instance_id, state, eni_id)
        for eni in want.enis:
            have = state.enis.get(eni.eni_id)
            if have is None:
                self._plug(want.instance_id, state, eni, primary=eni.eni_id == want.primary.eni_id)
            elif have.want != eni:
                self._update_ips(state.vpc_id, have, eni)

    def _create_node(self, want: NodeWant) -> NodeState:
        ns = want.instance_id
        self._reclaim(ns)
        netns_add(ns)
        self.registry.add(ns)
        state = NodeState(want.vpc_id)
        self.nodes[ns] = state
        log.info("node up", extra={"fields": {"instance": ns, "vpc": want.vpc_id}})
        return state

    def _remove_node(self, instance_id: str) -> None:
        self.nodes.pop(instance_id, None)
        netns_delete(instance_id)
        self.registry.discard(instance_id)
        log.info("node down", extra={"fields": {"instance": instance_id}})

    def _plug(self, node: str, state: NodeState, eni: EniWant, *, primary: bool) -> None:
        router = state.vpc_id
        self._seq += 1
        rlink = f"fe{self._seq}"
        nlink = "eth0" if primary else _free_eth(node)
        ip("link", "add", rlink, "type", "veth", "peer", "name", nlink, "address", eni.mac,
           "netns", node, ns=router)
        # answer proxied ARP at once, not after a random ~0.8 s (per link: no "default" in a netns)
        write_sysctls(router, {f"net.ipv4.neigh.{rlink}.proxy_delay": "0"})
        ip("link", "set", rlink, "up", ns=router)
        self._ensure_gateway(router, eni.gateway)
        plugged = Plugged(eni, rlink, nlink)
        state.enis[eni.eni_id] = plugged
        ip_batch(_ip_lines(rlink, eni.mac, eni.ips, add=True), ns=router)
        if primary:
            ip_batch([f"addr add {eni.ips[0]}/{eni.prefixlen} dev {nlink}",
                      f"link set {nlink} up",
                      f"route add default via {eni.gateway} dev {nlink}"], ns=node)
        log.info("eni plugged", extra={"fields": {"instance": node, "eni": eni.eni_id,
                                              "link": nlink, "mac": eni.mac}})

    def _unplug(self, node: str, state: NodeState, eni_id: str) -> None:
        plugged = state.enis.pop(eni_id)
        ip("link", "del", plugged.router_link, ns=state.vpc_id, check=False)
        log.info("eni unplugged", extra={"fields": {"instance": node, "eni": eni_id,
                                                "link": plugged.node_link}})

    def _update_ips(self, router: str, have: Plugged, want: EniWant) -> None:
        gone = [a for a in have.want.ips if a not in want.ips]
        new = [a for a in want.ips if a not in have.want.ips]
        lines = (_ip_lines(have.router_link, want.mac, gone, add=False)
                 + _ip_lines(have.router_link, want.mac, new, add=True))
        have.want = want
        ip_batch(lines, ns=router, force=True)


def _ip_lines(rlink: str, mac: str, ips: tuple[str, ...] | list[str], *, add: bool) -> list[str]:
    if add:
        return [line for a in ips for line in (
            f"route replace {a}/32 dev {rlink}",
            f"neigh replace {a} lladdr {mac} dev {rlink} nud permanent")]
    return [line for a in ips for line in (
        f"route del {a}/32 dev {rlink}", f"neigh del {a} dev {rlink}")]


def _free_eth(node: str) -> str:
    """The name the kernel would give a hot-plugged NIC: the lowest free ``ethN``."""
    if not netns_exists(node):
        raise FabricError(f"node netns {node} vanished")
    used = {int(m.group(1)) for n in link_names(node) if (m := _ETH.match(n))}
    n = 0
    while n in used:
        n += 1
    return f"eth{n}"


def _same_vpc(desired: Desired, instance_id: str, state: NodeState) -> bool:
    want = desired.nodes.get(instance_id)
    return want is not None and want.vpc_id == state.vpc_id
