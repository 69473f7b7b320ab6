"""Addresses in use before this daemon kept records of them: adopted, never handed out again.

A daemon that starts with no record of a pod (upstream Terway replaced in place, or a lost state
directory) would otherwise see the pod's address on its ENI as idle and give it to the next pod
while the first still runs. Before the pool is rebuilt, the node's kernel is asked who is wired:
every /32 route to a pod through a ``cali*`` veth (upstream's datapath is the same) marks its
address as used. Such an address gets an *adopted* record keyed ``_adopted/<host veth>`` (not a
Kubernetes name, so it collides with no pod), and is released when the pod is deleted (its DEL
names the pod, whose veth name is ``host_veth_name(namespace, name)``) or when GC finds its veth
gone. Pods in IPVLAN or exclusive mode are not discovered this way (docs/daemon.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from terway.cloud.api import Eni
from terway.daemon.store import PodRecord, Resource, Store
from terway.datapath import modes
from terway.datapath.naming import host_veth_name

ADOPTED_NAMESPACE = "_adopted"
ADOPTED = "adopted"  # PodRecord.extra key


def is_adopted(rec: PodRecord) -> bool:
    return bool(rec.extra.get(ADOPTED))


def adopted_records(enis: Iterable[Eni], owners: Mapping[str, str],
                    wired: Mapping[str, str]) -> list[PodRecord]:
    """Records for the addresses of ``enis`` (primary too) that the node routes to a pod
    (``wired``: {ip: host veth}) and no record owns (``owners``: {ip: pod key})."""
    on_eni = {ip: eni for eni in enis for ip in eni.private_ips}   # the pool hands out all
    out = []
    for ip, veth in sorted(wired.items()):
        eni = on_eni.get(ip)
        if eni is None or ip in owners:
            continue
        out.append(PodRecord(
            namespace=ADOPTED_NAMESPACE, name=veth, container_id="", netns="", ifname="eth0",
            resources=(Resource("eniIp", eni.eni_id, eni.mac, ip),),
            extra={ADOPTED: "1", "host_ifname": veth, "datapath": modes.VETH}))
    return out


def adopted_for(store: Store, namespace: str, name: str) -> PodRecord | None:
    """The adopted record of this pod (its veth name matches), as the pod: keyed by the adopted
    key, named by the pod, so unwiring it deletes the right veth."""
    veth = host_veth_name(namespace, name)
    rec = store.get_pod(f"{ADOPTED_NAMESPACE}/{veth}")
    return rec if rec is not None and is_adopted(rec) else None
