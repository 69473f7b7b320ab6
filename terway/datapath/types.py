"""What the daemon hands the datapath and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass


class DatapathError(Exception):
    """Setting up or checking a pod's network failed; the message says which step and why."""


@dataclass(frozen=True)
class PodSpec:
    """Which sandbox to wire: ``netns`` is CNI_NETNS (a path, or a name under /var/run/netns)."""

    pod_namespace: str
    pod_name: str
    netns: str
    ifname: str = "eth0"


@dataclass(frozen=True)
class PodNetwork:
    """The pod's address and what the datapath needs to wire it, in every mode.

    ``prefix_len`` is the prefix length of the vSwitch CIDR the pod's address comes from (32
    when unknown), not the prefix on the pod's interface: the mode decides that
    (``terway.datapath.modes.Mode.pod_prefix_len``; only IPVLAN puts podIP/prefix on eth0).
    """

    pod_ip: str
    gateway: str  # the vSwitch gateway
    eni_mac: str
    prefix_len: int = 32  # of the vSwitch CIDR
    mtu: int = 1500
    ingress_bps: int = 0  # bits/s, 0 = unlimited
    egress_bps: int = 0
    service_cidr: str = ""  # exclusive: via the host peer veth; ipvlan: tc redirect to the host
    host_stack_cidrs: tuple[str, ...] = ()  # the same, for node-local addresses
    disable_host_peer: bool = False  # exclusive mode: no veth to the host


@dataclass(frozen=True)
class PodLinks:
    """What was set up (for the CNI result and for teardown)."""

    mode: str
    ifname: str
    pod_mac: str
    host_ifname: str  # "" when there is no host-side link
    host_mac: str
    eni_ifindex: int  # in the host namespace (before an exclusive ENI moved)
    table: int  # policy routing table (veth), 0 otherwise
