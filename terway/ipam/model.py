"""The core's mutable state: ENI slots and the IPs on them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EniState(enum.Enum):
    ATTACHING = "attaching"   # created, AttachEni to do or in flight
    READY = "ready"           # InUse on this node: its IPs can be handed out
    DETACHING = "detaching"   # being released: DetachEni to do or in flight
    DELETING = "deleting"     # detached: DeleteEni to do or in flight


@dataclass
class IpSlot:
    ip: str
    owner: str | None = None          # pod key
    sticky: bool = False              # owner asked for stickiness
    reserved_for: str | None = None   # sticky pod key after release
    reserved_until: float = 0.0
    idle_since: float = 0.0
    releasing: bool = False           # UnassignIps in flight

    @property
    def idle(self) -> bool:
        return self.owner is None and self.reserved_for is None and not self.releasing


@dataclass
class EniSlot:
    eni_id: str
    mac: str
    vswitch_id: str
    primary_ip: str
    state: EniState
    ips: dict[str, IpSlot] = field(default_factory=dict)
    busy_cmd: str | None = None       # the one command touching this ENI now
    assigning: int = 0                # IPs asked by the in-flight AssignIps
    error: str = ""                   # last disposal failure (shown as Error in mapping)

    @property
    def ready(self) -> bool:
        return self.state is EniState.READY

    def idle_ips(self) -> list[IpSlot]:
        """Idle IPs, longest idle first (ties by address text, for determinism)."""
        return sorted((s for s in self.ips.values() if s.idle), key=lambda s: (s.idle_since, s.ip))

    @property
    def used(self) -> int:
        return sum(1 for s in self.ips.values() if s.owner is not None)

    @property
    def reserved(self) -> int:
        return sum(1 for s in self.ips.values() if s.reserved_for is not None)


@dataclass
class CreatingEni:
    """A CreateEni in flight: ``ip_count`` IPs (primary included) are on their way."""

    vswitch_id: str
    ip_count: int


@dataclass
class PendingRequest:
    since: float
    sticky: bool
