"""Sticky addresses held for their pod key after its release, until ``sticky_ttl`` runs out.

Deadlines sit in a heap so the wake-up and expiry never scan the slots; an entry goes stale when
its slot is taken back, dropped or re-reserved, and stale entries are skipped when popped.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping

from terway.ipam.model import EniSlot, IpSlot


class Reservations:
    def __init__(self, enis: Mapping[str, EniSlot]) -> None:
        self.held: dict[str, tuple[str, str]] = {}        # sticky pod key -> (eni id, ip)
        self._enis = enis                                 # the pool's ENIs, to judge entries
        # (until, seq, slot, key); read-only for others (the pool's wake-up checks emptiness)
        self.heap: list[tuple[float, int, IpSlot, str]] = []
        self._seq = 0

    def hold(self, key: str, eni_id: str, slot: IpSlot, until: float) -> None:
        slot.reserved_for, slot.reserved_until = key, until
        self.held[key] = (eni_id, slot.ip)
        self._seq += 1
        heapq.heappush(self.heap, (until, self._seq, slot, key))

    def take(self, key: str) -> tuple[str, str] | None:
        return self.held.pop(key, None)

    def forget(self, key: str) -> None:
        self.held.pop(key, None)

    def due_by(self, at: float) -> bool:
        heap = self.heap
        return bool(heap) and heap[0][0] <= at

    def expire(self, now: float) -> None:
        """End every reservation due by ``now``: its address is idle from now on."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            until, _, s, key = heapq.heappop(heap)
            if self._live(s, key, until):
                self.held.pop(key, None)
                s.reserved_for, s.idle_since = None, now

    def next_expiry(self, now: float) -> float:
        """The first live deadline after ``now`` (math.inf: none)."""
        heap = self.heap
        while heap and not self._live(heap[0][2], heap[0][3], heap[0][0]):
            heapq.heappop(heap)
        if not heap:
            return math.inf
        if heap[0][0] > now:
            return heap[0][0]
        # due but not yet expired (no tick since): the next one after now, by a scan (rare)
        return min((u for u, _, s, k in heap if u > now and self._live(s, k, u)),
                   default=math.inf)

    def deadlines(self) -> list[float]:
        """Every live deadline, sorted (the self-check compares them with the slots)."""
        return sorted(u for u, _, s, k in self.heap if self._live(s, k, u))

    def _live(self, s: IpSlot, key: str, until: float) -> bool:
        """A heap entry still describes a reservation on an ENI the pool manages."""
        eni = s.eni
        return (eni is not None and self._enis.get(eni.eni_id) is eni
                and s.reserved_for == key and s.reserved_until == until)
