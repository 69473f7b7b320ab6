"""What the pool knows of its vSwitches' free addresses, so it asks the cloud only when stale.

The last DescribeVSwitches answer is kept ``vswitch_cache_ttl`` and decremented locally on every
create; a nearly dry vSwitch also remembers the largest batch it is known to take (calls are
all-or-nothing, see ``shrink_batch``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from terway.cloud.api import VSwitch
from terway.cloud.errors import CloudError, ErrorClass


class VSwitchCache:
    def __init__(self) -> None:
        self.available: dict[str, int | None] = {}
        self.fetched_at: float | None = None     # when last described (or asked)
        self._batch_cap: dict[str, int] = {}
        self._misses: dict[str, int] = {}  # describes in a row that found the vSwitch dry

    def fresh(self, at: float, ttl: float) -> bool:
        return self.fetched_at is not None and at < self.fetched_at + ttl

    def expiry_after(self, now: float, ttl: float) -> float:
        """When the cache goes stale, if after ``now`` (math.inf: not after now, or no TTL)."""
        if self.fetched_at is None or ttl <= 0:
            return math.inf
        t = self.fetched_at + ttl
        return t if now < t else math.inf

    def learn(self, v: VSwitch, max_per_call: int) -> None:
        """A described count: full batches again once the vSwitch has room for one."""
        self.available[v.vswitch_id] = v.available_ip_count
        dry = v.available_ip_count == 0
        self._misses[v.vswitch_id] = self._misses.get(v.vswitch_id, 0) + 1 if dry else 0
        if v.available_ip_count >= max_per_call:
            self._batch_cap.pop(v.vswitch_id, None)

    def took(self, vswitch: str, n: int) -> None:
        """A create asked ``n`` addresses of ``vswitch``: count them gone before the answer."""
        known = self.available.get(vswitch)
        if known is not None:
            self.available[vswitch] = max(0, known - n)

    def dry(self, vswitch: str) -> None:
        self.available[vswitch] = 0

    def free(self, vswitch_ids: Sequence[str]) -> int | None:
        """The cached free addresses of ``vswitch_ids`` (None: none known yet)."""
        known = [n for v in vswitch_ids if (n := self.available.get(v)) is not None]
        return sum(known) if known else None

    def dry_streak(self, vswitch_ids: Sequence[str]) -> int | None:
        """None while one of ``vswitch_ids`` may still have addresses (or none is configured);
        else how many describes in a row found them all dry (0: dry by a failed call or the
        local count, not yet described)."""
        counts = [self.available.get(v) for v in vswitch_ids]
        if not counts or any(n is None or n > 0 for n in counts):
            return None
        return min(self._misses.get(v, 0) for v in vswitch_ids)

    def batch_size(self, vswitch: str, max_per_call: int) -> int:
        return self._batch_cap.get(vswitch, max_per_call)

    def shrink_batch(self, vswitch: str, failed: int, error: CloudError) -> bool:
        """IpNotEnough on a batch of ``failed`` > 1 says only "fewer than that are left": halve
        the batch and retry at once instead of blocking, so the vSwitch's last addresses still
        reach pods (upstream blocks, leaving up to 9 of them unused). Beyond upstream, on purpose.
        """
        if error.error_class is not ErrorClass.EXHAUSTED or failed <= 1:
            return False
        self._batch_cap[vswitch] = failed // 2
        known = self.available.get(vswitch)
        self.available[vswitch] = failed - 1 if known is None else min(known, failed - 1)
        return True
