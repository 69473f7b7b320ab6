"""What the fabric should look like, read from the cloud model as plain frozen values.

The fabric is level-triggered: whatever the events were, it reads the model's current state into
a ``Desired`` and converges the kernel to it. Missed or coalesced events therefore never leave a
stale interface behind, and a restart of the worker is harmless.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

IN_USE = "InUse"
RUNNING = "Running"


@dataclass(frozen=True, slots=True)
class EniWant:
    """One ENI plugged into a node: its MAC, its vSwitch's gateway and every IP it owns."""

    eni_id: str
    mac: str
    vswitch_id: str
    gateway: str
    prefixlen: int
    ips: tuple[str, ...]    # primary first


@dataclass(frozen=True, slots=True)
class NodeWant:
    """A running instance: its netns (named after it) and ENIs, primary (``eth0``) first."""

    instance_id: str
    vpc_id: str
    enis: tuple[EniWant, ...]

    @property
    def primary(self) -> EniWant:
        return self.enis[0]


@dataclass(frozen=True, slots=True)
class Desired:
    nodes: dict[str, NodeWant]       # by instance id

    def vpcs(self) -> set[str]:
        return {n.vpc_id for n in self.nodes.values()}


def _views(cloud: Any, *names: str) -> list[Any]:
    """The first listing method the model offers among ``names`` (the model's API may evolve)."""
    for name in names:
        method = getattr(cloud, name, None)
        if callable(method):
            result = method()
            return list(result.values() if isinstance(result, dict) else result)
    raise TypeError(f"cloud model offers none of {names}")


def read(cloud: Any) -> Desired:
    """Snapshot the model: running instances and their attached (InUse) ENIs."""
    settle = getattr(cloud, "settle", None)
    if callable(settle):
        settle()   # the model applies due Attaching/Detaching transitions lazily
    vswitches = {v.vswitch_id: v for v in _views(cloud, "describe_vswitches")}
    enis = {e.eni_id: e for e in _views(cloud, "describe_network_interfaces")}
    nodes: dict[str, NodeWant] = {}
    for inst in _views(cloud, "describe_instances"):
        if inst.status != RUNNING or inst.primary_eni_id not in enis:
            continue
        wants = list(_plugged(inst, enis, vswitches))
        if wants and wants[0].eni_id == inst.primary_eni_id:
            nodes[inst.instance_id] = NodeWant(inst.instance_id, inst.vpc_id, tuple(wants))
    return Desired(nodes)


def _plugged(inst: Any, enis: dict[str, Any], vswitches: dict[str, Any]) -> Iterable[EniWant]:
    ordered = [inst.primary_eni_id, *(e for e in inst.eni_ids if e != inst.primary_eni_id)]
    for eni_id in ordered:
        eni = enis.get(eni_id)
        if eni is None or eni.instance_id != inst.instance_id:
            continue
        if eni_id != inst.primary_eni_id and eni.status != IN_USE:
            continue
        vsw = vswitches.get(eni.vswitch_id)
        if vsw is None:
            continue
        net = ipaddress.IPv4Network(vsw.cidr_block)
        yield EniWant(eni_id, eni.mac.lower(), eni.vswitch_id, vsw.gateway, net.prefixlen,
                      tuple(eni.private_ips))
