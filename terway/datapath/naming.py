"""Interface names and table numbers derived from the pod, exactly as upstream Terway does."""

from __future__ import annotations

import hashlib

from terway.datapath.modes import LINK_LOCAL_GATEWAY

HOST_VETH_PREFIX = "cali"  # Calico Felix recognises (and polices) these
TABLE_BASE = 1000
POD_GATEWAY = LINK_LOCAL_GATEWAY  # the pod's next hop in veth mode; the host veth answers for it
PRIO_TO_POD = 512
PRIO_FROM_POD = 2048
MAIN_TABLE = 254


def host_veth_name(pod_namespace: str, pod_name: str) -> str:
    """``cali`` + the first 11 hex digits of sha1("<namespace>.<name>") (15 chars, IFNAMSIZ-1)."""
    digest = hashlib.sha1(f"{pod_namespace}.{pod_name}".encode()).hexdigest()
    return HOST_VETH_PREFIX + digest[:11]


def eni_table(eni_ifindex: int) -> int:
    """Policy routing table of an ENI: 1000 + its ifindex in the node's namespace."""
    return TABLE_BASE + eni_ifindex


def ipvlan_host_name(eni_ifindex: int) -> str:
    return f"ipvl_{eni_ifindex}"


def parked_eni_name(mac: str) -> str:
    """Name an exclusive ENI gets back in the host: ``eni`` + its MAC's 12 hex digits."""
    return "eni" + mac.replace(":", "").lower()[-12:]
