"""Upstream's per-ENI limiters: at most 10 operations a minute, bursts of 2, per ENI slot.

Upstream (pkg/eni/local.go) gives every ENI slot of the node (one ``Local`` per possible
secondary ENI) three ``rate.NewLimiter(rate.Every(6s), 2)``: one for its ENI's life cycle
(``CreateNetworkInterface`` = create + attach, and ``DeleteNetworkInterface`` = detach + delete),
one for ``AssignPrivateIpAddresses`` on it, one for IPv6 assigns. Unassigning is not limited.
A slot keeps its limiters when its ENI is deleted and the next ENI is made in it.

Sans-IO like ``terway.cloud.ratelimit``: drivers ask ``reserve(cmd, now)`` how long to wait
before running a command, and ``settle(cmd, outcome)`` once it finished, so the daemon (real
sleeps) and the simulator (simpy time) make the same cloud calls at the same times. Our core's
ENIs have no slot of their own: a new ENI takes the free slot with the most tokens left (a fresh
one if none is free), an ENI found at start gets a fresh slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from terway.cloud.api import Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.ratelimit import TokenBucket
from terway.ipam.commands import AssignIps, Command, CreateEni, DeleteEni, DetachEni

PER_MINUTE = 10.0   # rate.Every(1 * time.Minute / 10)
BURST = 2


@dataclass
class _Slot:
    eni: TokenBucket    # create (+ attach), detach (+ delete)
    ips: TokenBucket    # AssignPrivateIpAddresses


class EniOpLimiter:
    """Per-ENI-slot token buckets; ``reserve`` takes a token and says how long to wait."""

    def __init__(self, per_minute: float = PER_MINUTE, burst: int = BURST) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._bound: dict[str, _Slot] = {}     # ENI id, or "create:<cmd id>" while creating
        self._free: list[_Slot] = []

    def __repr__(self) -> str:
        return f"EniOpLimiter(per_minute={self.rate * 60:g}, burst={self.burst})"

    def reserve(self, cmd: Command, now: float) -> float:
        """Seconds to wait before making ``cmd``'s cloud call (0.0: at once)."""
        match cmd:
            case AssignIps():
                return self._slot(cmd.eni_id, now).ips.reserve(now)
            case CreateEni():
                slot = self._take_free(now)
                self._bound[_creating(cmd.cmd_id)] = slot
                return slot.eni.reserve(now)
            case DetachEni():
                return self._slot(cmd.eni_id, now).eni.reserve(now)
        return 0.0

    def settle(self, cmd: Command, outcome: object) -> None:
        """``cmd`` finished with ``outcome`` (its result, or the ``CloudError``): a created ENI
        keeps its slot, a deleted one frees it for the next ENI."""
        match cmd:
            case CreateEni():
                slot = self._bound.pop(_creating(cmd.cmd_id), None)
                if slot is None:
                    return
                if isinstance(outcome, Eni):
                    self._bound[outcome.eni_id] = slot
                else:
                    self._free.append(slot)
            case DeleteEni():
                gone = not isinstance(outcome, CloudError) or \
                    outcome.error_class is ErrorClass.NOT_FOUND
                slot = self._bound.pop(cmd.eni_id, None) if gone else None
                if slot is not None:
                    self._free.append(slot)

    def _slot(self, eni_id: str, now: float) -> _Slot:
        slot = self._bound.get(eni_id)
        if slot is None:
            slot = self._bound[eni_id] = self._new(now)
        return slot

    def _take_free(self, now: float) -> _Slot:
        if not self._free:
            return self._new(now)
        best = max(range(len(self._free)), key=lambda i: (self._free[i].eni.tokens(now), -i))
        return self._free.pop(best)

    def _new(self, now: float) -> _Slot:
        return _Slot(TokenBucket(self.rate, self.burst, now),
                     TokenBucket(self.rate, self.burst, now))


def _creating(cmd_id: str) -> str:
    return f"create:{cmd_id}"
