"""Pods that run before our records: learn who holds which address before anything is freed.

A daemon that starts with no record of a pod (upstream Terway replaced in place, a lost or new
state directory) would see the pod's address on its ENI as idle and give it to the next pod while
the first still runs. So, before the pool is rebuilt, every address on an ENI we manage that no
record owns is looked up, in this order, the first source that names a holder wins:

1. our records (the store);
2. upstream's state files (``ResRelation.db``, then ``pod.db``: terway/daemon/upstream_state.py);
3. the Kubernetes API: the pod IPs of this node's pods (``Kube.node_pods``);
4. the node's ``cali*`` /32 routes (terway/daemon/adopt.py, run after this).

One address, one holder; one pod, one address (what the pool keeps per pod): a later claim on
an address or pod already held is logged and dropped. Addresses not on an ENI we manage are
someone else's and never touched. A pod known by name gets a record under its own key
``<namespace>/<name>``, marked adopted (``is_adopted``), with the sandbox and netns when
upstream's file says them: its own DEL releases it (any sandbox when the file did not say which),
a new sandbox of it keeps the address as for any known pod, and GC releases it once the pod no
longer exists (terway/daemon/gc.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from terway.cloud.api import Eni
from terway.daemon import logfmt
from terway.daemon.adopt import ADOPTED
from terway.daemon.ports import Kube
from terway.daemon.store import PodRecord, Resource
from terway.daemon.upstream_state import read_upstream_state
from terway.datapath import modes
from terway.datapath.naming import host_veth_name

log = logfmt.get("migrate")
SOURCE = "adopted_from"          # PodRecord.extra key: where the holder was learnt
FROM_UPSTREAM = "upstream-state"
FROM_KUBE = "kubernetes"


@dataclass(frozen=True)
class Claim:
    """A source's word that pod ``namespace/name`` holds ``ip``."""

    namespace: str
    name: str
    ip: str
    source: str
    container_id: str = ""
    netns: str = ""
    eni_mac: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Adoption:
    records: list[PodRecord] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)   # claims not taken, and why


def upstream_claims(directory: str) -> list[Claim]:
    """Upstream's files in ``directory`` ("": none); problems are logged, never raised."""
    if not directory:
        return []
    state = read_upstream_state(directory)
    for problem in state.problems[:20]:
        log.error("upstream Terway's state not read (ignored; the other sources still apply)",
                  extra=logfmt.fields(error=problem))
    return [Claim(p.namespace, p.name, p.ip, FROM_UPSTREAM, p.container_id, p.netns, p.eni_mac)
            for p in state.pods]


def kube_claims(kube: Kube) -> list[Claim]:
    """The pod IPs the API server knows on this node (none without a cluster)."""
    if not kube.enabled:
        return []
    try:
        pods = kube.node_pods()
    except Exception as exc:   # best effort, as every Kubernetes call
        log.warning("listing this node's pods failed", extra=logfmt.fields(error=str(exc)))
        return []
    return [Claim(p.namespace, p.name, ip, FROM_KUBE) for p in pods or [] for ip in p.ips]


def gather_claims(upstream_dir: str, kube: Kube) -> list[Claim]:
    """Every source's claims, the stronger first (blocking: run it in a thread)."""
    return upstream_claims(upstream_dir) + kube_claims(kube)


def claimed_records(enis: Iterable[Eni], owners: Mapping[str, str], claims: Iterable[Claim],
                    *, exclusive: bool, datapath: str) -> Adoption:
    """Records for the claims on addresses of ``enis`` the pool would hand out and no record
    owns (``owners``: {ip: pod key}), first claim first."""
    rtype = "eni" if exclusive else "eniIp"
    pool = {ip: eni for eni in enis
            for ip in ((eni.primary_ip,) if exclusive else eni.private_ips)}
    held = dict(owners)
    pods = set(owners.values())
    out = Adoption()
    for c in claims:
        eni = pool.get(c.ip)
        if eni is None:
            continue                       # not on an ENI we manage: not ours to hold
        if c.ip in held:
            if held[c.ip] != c.key:
                out.dropped.append(f"{c.ip} ({c.source}: {c.key}) is held by {held[c.ip]}")
            continue
        if c.key in pods:
            out.dropped.append(f"{c.ip} ({c.source}): {c.key} already holds another address")
            continue
        if c.eni_mac and c.eni_mac != eni.mac.lower():
            log.warning("upstream's state puts the address on another ENI; the cloud's word "
                        "is taken", extra=logfmt.fields(pod=c.key, ip=c.ip, mac=c.eni_mac,
                                                        eni=eni.eni_id))
        extra = {ADOPTED: "1", SOURCE: c.source, "datapath": datapath}
        if modes.get(datapath).host_veth:
            extra["host_ifname"] = host_veth_name(c.namespace, c.name)
        out.records.append(PodRecord(
            namespace=c.namespace, name=c.name, container_id=c.container_id, netns=c.netns,
            ifname="eth0", ip_type=rtype, resources=(Resource(rtype, eni.eni_id, eni.mac, c.ip),),
            extra=extra))
        held[c.ip] = c.key
        pods.add(c.key)
    return out
