"""Seeded generators for resource IDs, MAC addresses and request IDs.

Deterministic: the same seed and the same sequence of calls give the same IDs. Request IDs draw
from their own generator so that read-only calls never shift the IDs of resources created later.
"""

from __future__ import annotations

import random

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_HEX = "0123456789ABCDEF"


class IdGenerator:
    """Makes ``vpc-bp1…``-style IDs (never repeated), ``00:16:3e:…`` MACs and request IDs."""

    def __init__(self, seed: int, region_code: str = "bp1") -> None:
        self.region_code = region_code
        self._issued: set[str] = set()
        self._macs: set[str] = set()
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the generators; IDs already issued are still never repeated."""
        self._rng = random.Random(f"ids:{seed}")
        self._req_rng = random.Random(f"requests:{seed}")

    def forget(self) -> None:
        """Drop the memory of issued IDs (used by ``Cloud.reset``)."""
        self._issued.clear()
        self._macs.clear()

    def new_id(self, prefix: str, region_code: str | None = None) -> str:
        """``<prefix>-<region code><17 chars>``; ``region_code`` is the resource's region's
        (default: the generator's). The draws do not depend on it."""
        code = self.region_code if region_code is None else region_code
        while True:
            body = "".join(self._rng.choice(_ALPHABET) for _ in range(17))
            rid = f"{prefix}-{code}{body}"
            if rid not in self._issued:
                self._issued.add(rid)
                return rid

    def new_mac(self) -> str:
        while True:
            tail = ":".join(f"{self._rng.randrange(256):02x}" for _ in range(3))
            mac = f"00:16:3e:{tail}"
            if mac not in self._macs:
                self._macs.add(mac)
                return mac

    def request_id(self) -> str:
        """An uppercase UUID-shaped request id, like the real API's ``RequestId``."""
        chars = f"{self._req_rng.getrandbits(128):032X}"  # one draw: this runs on every call
        return f"{chars[:8]}-{chars[8:12]}-{chars[12:16]}-{chars[16:20]}-{chars[20:]}"
