"""Typed change notifications for observers (the fabric, recorders, tests)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class EventKind(enum.Enum):
    INSTANCE_CREATED = "instance_created"
    INSTANCE_DELETED = "instance_deleted"
    ENI_CREATED = "eni_created"
    ENI_ATTACHING = "eni_attaching"
    ENI_ATTACHED = "eni_attached"       # reached InUse: the interface exists in the instance
    ENI_DETACHING = "eni_detaching"     # left InUse: the interface is going away
    ENI_DETACHED = "eni_detached"       # back to Available
    ENI_DELETED = "eni_deleted"
    IPS_ASSIGNED = "ips_assigned"
    IPS_UNASSIGNED = "ips_unassigned"


@dataclass(frozen=True, slots=True)
class CloudEvent:
    kind: EventKind
    time: float
    instance_id: str = ""
    eni_id: str = ""
    mac: str = ""
    vswitch_id: str = ""
    ips: tuple[str, ...] = ()          # the addresses concerned (all of the ENI's for attach)


Subscriber = Callable[[CloudEvent], None]
