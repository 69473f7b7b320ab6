"""Exhaustion memory: what is blocked (ENI, vSwitch, ENI creation), why, and until when.

Every block expires; nothing can wedge the node for good (upstream issue #100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from terway.cloud.errors import CloudError, ErrorClass

INSTANCE = "instance"


@dataclass(frozen=True)
class Block:
    until: float
    error: CloudError


class ExhaustionMemory:
    def __init__(self) -> None:
        self.enis: dict[str, Block] = {}
        self.vswitches: dict[str, Block] = {}
        self.create: Block | None = None

    def eni_blocked(self, eni_id: str, now: float) -> bool:
        b = self.enis.get(eni_id)
        return b is not None and b.until > now

    def vswitch_blocked(self, vswitch_id: str, now: float) -> bool:
        b = self.vswitches.get(vswitch_id)
        return b is not None and b.until > now

    def create_blocked(self, now: float) -> bool:
        return self.create is not None and self.create.until > now

    def any_blocked(self) -> bool:
        return bool(self.enis or self.vswitches or self.create)

    def last_error(self) -> CloudError | None:
        blocks = [*self.enis.values(), *self.vswitches.values()]
        if self.create:
            blocks.append(self.create)
        return max(blocks, key=lambda b: b.until).error if blocks else None

    def expire(self, now: float) -> bool:
        """Drop expired blocks; True if anything lifted."""
        if not (self.enis or self.vswitches or self.create):
            return False
        before = len(self.enis) + len(self.vswitches) + (self.create is not None)
        self.enis = {k: b for k, b in self.enis.items() if b.until > now}
        self.vswitches = {k: b for k, b in self.vswitches.items() if b.until > now}
        if self.create is not None and self.create.until <= now:
            self.create = None
        return len(self.enis) + len(self.vswitches) + (self.create is not None) < before

    def lift_vswitch(self, vswitch_id: str, eni_ids_on_it: list[str]) -> bool:
        """Addresses are back on the vSwitch: lift it and its ENIs' exhaustion blocks."""
        lifted = self.vswitches.pop(vswitch_id, None) is not None
        for eni_id in eni_ids_on_it:
            b = self.enis.get(eni_id)
            if b is not None and b.error.error_class is ErrorClass.EXHAUSTED:
                del self.enis[eni_id]
                lifted = True
        return lifted

    def earliest(self) -> float:
        """The first block's expiry (math.inf: nothing blocked)."""
        if not (self.enis or self.vswitches or self.create):
            return math.inf
        return min(self.deadlines())

    def deadlines(self) -> list[float]:
        out = [b.until for b in (*self.enis.values(), *self.vswitches.values())]
        if self.create:
            out.append(self.create.until)
        return out
