"""The node datapath: wire a pod's netns for one of upstream's three modes (pyroute2).

The daemon calls these (never the CNI plugin): ``setup_pod`` on AllocIP, ``teardown_pod`` on
ReleaseIP, ``check_pod`` on GetIPInfo. Every function takes ``host_netns``: the node's network
namespace by name or path, or None for the daemon's own, so several emulated nodes can share a
machine. All are blocking (netlink round trips, a few ms): call them from a worker thread
(``asyncio.to_thread``).
"""

from __future__ import annotations

from terway.datapath import exclusive, ipvlan, veth
from terway.datapath.naming import eni_table, host_veth_name
from terway.datapath.netns import NetnsGone
from terway.datapath.tc import tbf_burst, tbf_limit
from terway.datapath.types import (
    EXCLUSIVE,
    IPVLAN,
    MODES,
    VETH,
    DatapathError,
    PodLinks,
    PodNetwork,
    PodSpec,
)

__all__ = [
    "EXCLUSIVE",
    "IPVLAN",
    "MODES",
    "VETH",
    "DatapathError",
    "NetnsGone",
    "PodLinks",
    "PodNetwork",
    "PodSpec",
    "check_pod",
    "eni_table",
    "host_veth_name",
    "setup_pod",
    "tbf_burst",
    "tbf_limit",
    "teardown_pod",
    "wired_pods",
]


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise DatapathError(f"unknown datapath mode {mode!r} (want one of {', '.join(MODES)})")
    return mode


def setup_pod(mode: str, pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Wire the pod. Safe to retry after a partial failure. Raises DatapathError, NetnsGone."""
    _mode(mode)
    if mode == VETH:
        return veth.setup(pod, net, host_netns)
    if mode == IPVLAN:
        return ipvlan.setup(pod, net, host_netns)
    return exclusive.setup(pod, net, host_netns)


def wired_pods(host_netns: str | None = None) -> dict[str, str]:
    """{pod IP: host interface} of the pods the node's routes lead to (veth datapath)."""
    return veth.wired_pods(host_netns)


def teardown_pod(mode: str, pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> None:
    """Undo ``setup_pod``; idempotent, and works when ``pod.netns`` is gone or empty."""
    _mode(mode)
    if mode == VETH:
        veth.teardown(pod, net.pod_ip, host_netns)
    elif mode == IPVLAN:
        ipvlan.teardown(pod, net.pod_ip, host_netns)
    else:
        exclusive.teardown(pod, net.eni_mac, host_netns)


def check_pod(mode: str, pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> list[str]:
    """Findings for CNI CHECK (empty list: all in place)."""
    _mode(mode)
    if mode == VETH:
        return veth.check(pod, net, host_netns)
    if mode == IPVLAN:
        return ipvlan.check(pod, net, host_netns)
    return exclusive.check(pod, net, host_netns)
