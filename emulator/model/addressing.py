"""The address pool of one vSwitch: O(1) amortised allocation, O(log n) reuse of freed addresses.

Usable addresses are the CIDR minus its first address and its last three (the gateway is the
third from last, ``.253`` of a /24), as on Alibaba Cloud. Fresh addresses are handed out in
ascending order by a cursor; freed ones go to a min-heap and are reused lowest first. Nothing
scans the CIDR, so a /16 costs the same as a /29.
"""

from __future__ import annotations

import heapq
import ipaddress


class AddressPool:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr, strict=True)
        base = int(self.network.network_address)
        self.first = base + 1
        self.last = base + self.network.num_addresses - 4   # inclusive
        self.gateway = str(ipaddress.IPv4Address(base + self.network.num_addresses - 3))
        self.cidr = str(self.network)        # the text views show (formatted once)
        self._capacity = max(0, self.last - self.first + 1)
        self._cursor = self.first
        self._freed: list[int] = []
        self._used: set[int] = set()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def available(self) -> int:
        return self._capacity - len(self._used)

    def usable(self, ip: str) -> bool:
        try:
            value = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        return self.first <= value <= self.last

    def in_use(self, ip: str) -> bool:
        return int(ipaddress.IPv4Address(ip)) in self._used

    def allocate(self, count: int) -> list[str]:
        """Take ``count`` addresses, or none at all when fewer are free (returns [])."""
        if count > self.available:
            return []
        out: list[int] = []
        while len(out) < count:
            out.append(self._take_one())
        return [str(ipaddress.IPv4Address(v)) for v in out]

    def _take_one(self) -> int:
        while self._freed:
            value = heapq.heappop(self._freed)
            if value not in self._used:
                self._used.add(value)
                return value
        while self._cursor in self._used:
            self._cursor += 1
        value = self._cursor
        self._cursor += 1
        self._used.add(value)
        return value

    def claim(self, ip: str) -> None:
        """Take one named address (caller checked ``usable`` and not ``in_use``)."""
        self._used.add(int(ipaddress.IPv4Address(ip)))

    def release(self, ips: list[str] | tuple[str, ...]) -> None:
        for ip in ips:
            value = int(ipaddress.IPv4Address(ip))
            if value in self._used:
                self._used.discard(value)
                if value < self._cursor:
                    heapq.heappush(self._freed, value)

    def used(self) -> list[str]:
        return [str(ipaddress.IPv4Address(v)) for v in sorted(self._used)]
