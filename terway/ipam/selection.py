"""Choices: which ENI serves or grows (eni_selection_policy), which vSwitch a new ENI uses."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence

from terway.ipam.model import EniSlot


def _fullness(eni: EniSlot) -> int:
    return len(eni.ips)


def order_enis(enis: Sequence[EniSlot], policy: str) -> list[EniSlot]:
    """most_ips: fullest first (upstream default), least_ips: emptiest first; ties by ENI id."""
    if policy == "least_ips":
        return sorted(enis, key=lambda e: (_fullness(e), e.eni_id))
    return sorted(enis, key=lambda e: (-_fullness(e), e.eni_id))


def pick_idle(enis: Iterable[EniSlot], policy: str,
              cooled_by: float | None = None) -> tuple[EniSlot, str] | None:
    """The (ENI, IP) to hand out next, or None. Fullness counts used IPs here. ``cooled_by``
    (a freed-IP cooldown is on): only addresses whose cooldown has ended by then."""
    with_idle = [e for e in enis if e.n_idle and e.ready]
    if not with_idle:
        return None
    if cooled_by is not None:
        return _pick_cooled(with_idle, policy, cooled_by)
    if len(with_idle) == 1:              # the common case (one ENI with room): no ordering
        eni = with_idle[0]
    elif policy == "least_ips":
        eni = min(with_idle, key=lambda e: (e.n_used, e.eni_id))
    else:
        eni = min(with_idle, key=lambda e: (-e.n_used, e.eni_id))
    first = eni.first_idle()
    assert first is not None
    return eni, first.ip


def _pick_cooled(with_idle: list[EniSlot], policy: str,
                 now: float) -> tuple[EniSlot, str] | None:
    """``pick_idle`` skipping cooling addresses: the same ENI order, the longest idle first."""
    sign = 1 if policy == "least_ips" else -1
    for eni in sorted(with_idle, key=lambda e: (sign * e.n_used, e.eni_id)):
        for slot in eni.idle_ips():
            if slot.cool_until <= now:
                return eni, slot.ip
    return None


def next_cooled(enis: Iterable[EniSlot], now: float) -> float:
    """When the first idle address still cooling after ``now`` may be handed out (math.inf:
    none): a pod waiting for one is served then."""
    best = math.inf
    for e in enis:
        if e.n_idle and e.ready:
            for s in e.idle_ips():
                if now < s.cool_until < best:
                    best = s.cool_until
    return best


def order_vswitches(
    candidates: Sequence[str],
    available: Mapping[str, int | None],
    policy: str,
    rng: random.Random,
) -> list[str]:
    """ordered: most AvailableIpAddressCount first (upstream's meaning; unknown counts last,
    ties in config order); random: a seeded shuffle. vSwitches known to be empty are dropped."""
    usable = [v for v in candidates if available.get(v) != 0]
    if policy == "ordered":
        rank = {v: i for i, v in enumerate(candidates)}
        return sorted(usable, key=lambda v: (-(available.get(v) or -1), rank[v]))
    shuffled = list(usable)
    rng.shuffle(shuffled)
    return shuffled
