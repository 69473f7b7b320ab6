"""The core's mutable state: ENI slots and the IPs on them.

Each ENI keeps running counts of its used, reserved and idle IPs, updated whenever an IP's
``owner``, ``reserved_for`` or ``releasing`` changes or an IP is added/removed, and forwards every
change to the core's ``PoolCounts`` (totals over usable ENIs) while it is attached to them, so the
core never rescans slots to size the pool (it did: a quarter of a 1,000-node simulation). Add and
remove IPs only through ``EniSlot.add_ip``/``pop_ip``; ``EniSlot.recount()`` rebuilds the counts
from scratch for the core's self-check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EniState(enum.Enum):
    ATTACHING = "attaching"   # created, AttachEni to do or in flight
    READY = "ready"           # InUse on this node: its IPs can be handed out
    DETACHING = "detaching"   # being released: DetachEni to do or in flight
    DELETING = "deleting"     # detached: DeleteEni to do or in flight


class IpSlot:
    """One address on an ENI. Setting ``owner``/``reserved_for``/``releasing`` keeps the ENI's
    counts right; ``sticky``, ``reserved_until``, ``idle_since`` and ``cool_until`` are plain
    fields."""

    __slots__ = ("_owner", "_releasing", "_reserved_for", "cool_until", "eni", "gone",
                 "idle_since", "ip", "reserved_until", "sticky")

    def __init__(self, ip: str, owner: str | None = None, sticky: bool = False,
                 reserved_for: str | None = None, reserved_until: float = 0.0,
                 idle_since: float = 0.0, releasing: bool = False) -> None:
        self.ip = ip
        self.eni: EniSlot | None = None       # set by EniSlot.add_ip
        self._owner = owner
        self.sticky = sticky
        self._reserved_for = reserved_for
        self.reserved_until = reserved_until
        self.idle_since = idle_since
        self._releasing = releasing
        self.gone = False          # vanished from the cloud while a pod held it: dropped on release
        self.cool_until = 0.0      # not handed to a pod before (freed-IP cooldown; 0: never set)

    @property
    def idle(self) -> bool:
        return self._owner is None and self._reserved_for is None and not self._releasing

    @property
    def owner(self) -> str | None:
        return self._owner

    @owner.setter
    def owner(self, value: str | None) -> None:
        eni = self.eni
        if eni is not None:
            eni._count(self, -1)
        self._owner = value
        if eni is not None:
            eni._count(self, 1)

    @property
    def reserved_for(self) -> str | None:
        return self._reserved_for

    @reserved_for.setter
    def reserved_for(self, value: str | None) -> None:
        eni = self.eni
        if eni is not None:
            eni._count(self, -1)
        self._reserved_for = value
        if eni is not None:
            eni._count(self, 1)

    @property
    def releasing(self) -> bool:
        return self._releasing

    @releasing.setter
    def releasing(self, value: bool) -> None:
        eni = self.eni
        if eni is not None:
            eni._count(self, -1)
        self._releasing = value
        if eni is not None:
            eni._count(self, 1)

    def __repr__(self) -> str:
        return (f"IpSlot(ip={self.ip!r}, owner={self._owner!r}, sticky={self.sticky!r}, "
                f"reserved_for={self._reserved_for!r}, reserved_until={self.reserved_until!r}, "
                f"idle_since={self.idle_since!r}, releasing={self._releasing!r})")


class PoolCounts:
    """Totals over the ENIs attached to it: addresses on READY ENIs (total, used, idle,
    reserved), IPs asked by their in-flight AssignIps (assigning), IPs on ATTACHING ENIs."""

    __slots__ = ("assigning", "attaching", "idle", "reserved", "total", "used")

    def __init__(self) -> None:
        self.total = self.used = self.idle = self.reserved = self.assigning = self.attaching = 0

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.total, self.used, self.idle, self.reserved, self.assigning, self.attaching)


class EniSlot:
    """One secondary ENI of the node. ``ips`` is read-only for callers: use add_ip/pop_ip."""

    __slots__ = ("_assigning", "_state", "busy_cmd", "changed_at", "eni_id", "error", "ips",
                 "mac", "n_idle", "n_reserved", "n_used", "pool", "primary_ip", "vswitch_id")

    def __init__(self, eni_id: str, mac: str, vswitch_id: str, primary_ip: str,
                 state: EniState) -> None:
        self.eni_id = eni_id
        self.mac = mac
        self.vswitch_id = vswitch_id
        self.primary_ip = primary_ip
        self._state = state
        self.ips: dict[str, IpSlot] = {}
        self.busy_cmd: str | None = None      # the one command touching this ENI now
        self._assigning = 0                   # IPs asked by the in-flight AssignIps
        self.error = ""                       # last disposal failure (Error in mapping)
        self.changed_at = 0.0                 # when its address list last changed (audits)
        self.n_used = 0
        self.n_reserved = 0
        self.n_idle = 0
        self.pool: PoolCounts | None = None   # the core's totals, while the core manages it

    # -- the core's totals ------------------------------------------------------------------
    def attach_pool(self, pool: PoolCounts) -> None:
        self.pool = pool
        self._contribute(pool, 1)

    def detach_pool(self) -> None:
        if self.pool is not None:
            self._contribute(self.pool, -1)
            self.pool = None

    def _contribute(self, p: PoolCounts, d: int) -> None:
        if self._state is _READY:
            p.total += d * len(self.ips)
            p.used += d * self.n_used
            p.idle += d * self.n_idle
            p.reserved += d * self.n_reserved
            p.assigning += d * self._assigning
        elif self._state is _ATTACHING:
            p.attaching += d * len(self.ips)

    @property
    def state(self) -> EniState:
        return self._state

    @state.setter
    def state(self, value: EniState) -> None:
        p = self.pool
        if p is not None:
            self._contribute(p, -1)
        self._state = value
        if p is not None:
            self._contribute(p, 1)

    @property
    def assigning(self) -> int:
        return self._assigning

    @assigning.setter
    def assigning(self, value: int) -> None:
        p = self.pool
        if p is not None and self._state is _READY:
            p.assigning += value - self._assigning
        self._assigning = value

    def _count(self, s: IpSlot, d: int) -> None:
        p = self.pool if self._state is _READY else None
        if s._owner is not None:
            self.n_used += d
            if p is not None:
                p.used += d
        if s._reserved_for is not None:
            self.n_reserved += d
            if p is not None:
                p.reserved += d
        if s._owner is None and s._reserved_for is None and not s._releasing:
            self.n_idle += d
            if p is not None:
                p.idle += d

    def _size_changed(self, d: int) -> None:
        p = self.pool
        if p is not None:
            if self._state is _READY:
                p.total += d
            elif self._state is _ATTACHING:
                p.attaching += d

    def add_ip(self, slot: IpSlot) -> IpSlot:
        """Add ``slot`` unless its IP is already here; return the slot kept."""
        have = self.ips.get(slot.ip)
        if have is not None:
            return have
        slot.eni = self
        self.ips[slot.ip] = slot
        self._count(slot, 1)
        self._size_changed(1)
        return slot

    def pop_ip(self, ip: str) -> IpSlot | None:
        slot = self.ips.pop(ip, None)
        if slot is not None:
            self._count(slot, -1)
            self._size_changed(-1)
            slot.eni = None
        return slot

    def recount(self) -> tuple[int, int, int]:
        """(used, reserved, idle) by a full scan: the reference for the counters."""
        ips = self.ips.values()
        return (sum(1 for s in ips if s.owner is not None),
                sum(1 for s in ips if s.reserved_for is not None),
                sum(1 for s in ips if s.idle))

    @property
    def ready(self) -> bool:
        return self._state is _READY

    def idle_ips(self) -> list[IpSlot]:
        """Idle IPs, longest idle first (ties by address text, for determinism)."""
        if not self.n_idle:
            return []
        return sorted((s for s in self.ips.values() if s.idle), key=_idle_order)

    def first_idle(self) -> IpSlot | None:
        """``idle_ips()[0]`` without sorting."""
        if not self.n_idle:
            return None
        best: IpSlot | None = None
        for s in self.ips.values():      # a plain loop: this runs for every pod served
            if s._owner is not None or s._reserved_for is not None or s._releasing:
                continue
            if (best is None or s.idle_since < best.idle_since
                    or (s.idle_since == best.idle_since and s.ip < best.ip)):
                best = s
        return best

    @property
    def used(self) -> int:
        return self.n_used

    @property
    def reserved(self) -> int:
        return self.n_reserved


_READY = EniState.READY
_ATTACHING = EniState.ATTACHING


def _idle_order(s: IpSlot) -> tuple[float, str]:
    return (s.idle_since, s.ip)


@dataclass(slots=True)
class CreatingEni:
    """A CreateEni in flight: ``ip_count`` IPs (primary included) are on their way."""

    vswitch_id: str
    ip_count: int


@dataclass(slots=True)
class PendingRequest:
    since: float
    sticky: bool
