"""Pool sizing policies: how many IPs to add or release at a pool sync. Pure arithmetic.

Upstream Terway's watermarks are the default; AWS VPC CNI's warm targets and Cilium's
pre-allocate/watermark are here so the simulator can compare them on the same core. Two timers
of those products are parameters here too (0 in the classes, the products' defaults in the
registry, ``terway.ipam.policies``): AWS's freed-IP cooldown, which the core applies where it
hands addresses out (``cooldown_of``), and Cilium's delayed release of excess addresses.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from terway.ipam.settings import IpamSettings


@dataclass(frozen=True)
class PoolState:
    """Pool units (IPs, or ENIs in exclusive mode) at decision time."""

    total: int        # on usable ENIs
    used: int         # owned by pods
    idle: int         # free to hand out
    reserved: int     # held for sticky pods
    in_flight: int    # being assigned / created / attached
    pending: int      # requests waiting
    capacity: int
    units_per_eni: int
    eni_count: int
    # the cached AvailableIpAddressCount summed over the node's vSwitches (None: not known yet)
    vswitch_free: int | None = None

    @property
    def available(self) -> int:
        """Free units once in-flight work lands and pending requests are served."""
        return self.idle + self.in_flight - self.pending


@dataclass(frozen=True)
class PoolPlan:
    ips_to_add: int = 0
    ips_to_release: int = 0


class PoolPolicy(Protocol):
    def plan(self, state: PoolState, now: float) -> PoolPlan: ...


class DemandObserver(Protocol):
    """Optional hooks a policy may have; the core calls them when it does (AdaptivePolicy)."""

    def on_request(self, now: float) -> bool | None: ...   # a new pod asked; True: sync now
    def on_release(self, now: float) -> None: ...      # a pod gave its address back
    def on_served(self, waited: float, now: float) -> None: ...   # a waiting pod got one


@dataclass(frozen=True)
class TerwayPolicy:
    """Upstream: top up to ``min_pool_size`` idle, release idle above ``max_pool_size``."""

    time_invariant: ClassVar[bool] = True   # plan() ignores now: quiet syncs can be skipped

    min_pool_size: int
    max_pool_size: int

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        add = max(0, self.min_pool_size - state.available)
        release = 0
        if state.pending == 0:
            release = min(state.idle, max(0, state.available - self.max_pool_size))
        return PoolPlan(add, release)


@dataclass(frozen=True)
class AwsWarmPolicy:
    """AWS VPC CNI: short = max(WARM_IP - available, MIN_IP - total); WARM_ENI when no IP target."""

    time_invariant: ClassVar[bool] = True   # plan() ignores now: quiet syncs can be skipped

    warm_ip_target: int = 0
    minimum_ip_target: int = 0
    warm_eni_target: int = 1
    # IP_COOLDOWN_PERIOD (s): a freed address is not handed to another pod before it has passed;
    # it stays on the ENI and counts as available to the targets, as in ipamd. Read by the core.
    ip_cooldown_period: int = 0

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        total = state.total + state.in_flight
        if self.warm_ip_target or self.minimum_ip_target:
            short = max(self.warm_ip_target - state.available, self.minimum_ip_target - total)
            warm = max(self.warm_ip_target, self.minimum_ip_target - state.used - state.pending)
        else:
            warm = self.warm_eni_target * state.units_per_eni
            short = warm - state.available
        release = 0
        if state.pending == 0 and short < 0:
            excess = state.available - warm
            floor = max(0, total - self.minimum_ip_target) if self.minimum_ip_target else excess
            release = min(state.idle, max(0, excess), floor)
        return PoolPlan(max(0, short), release)


@dataclass(frozen=True)
class CiliumPolicy:
    """Cilium ENI IPAM: needed = pre - available (at least min - total), capped by max;
    excess = available - pre - max_above_watermark, released only once it has stayed excess
    for ``excess_ip_release_delay`` seconds (the operator flag; 0 = at the first sync)."""

    pre_allocate: int = 8
    min_allocate: int = 0
    max_allocate: int = 0
    max_above_watermark: int = 0
    excess_ip_release_delay: int = 0
    # when each excess unit became excess, oldest first (only with a delay): the operator's marks
    _marks: deque[float] = field(default_factory=deque, init=False, compare=False, repr=False)

    @property
    def time_invariant(self) -> bool:
        """Without a delay, plan() ignores now (quiet syncs can be skipped); with one, the
        marks age and every sync must run."""
        return self.excess_ip_release_delay == 0

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        total = state.total + state.in_flight
        needed = max(self.pre_allocate - state.available, self.min_allocate - total, 0)
        if self.max_allocate:
            needed = min(needed, max(0, self.max_allocate - total))
        release = 0
        if state.pending == 0:
            excess = state.available - self.pre_allocate - self.max_above_watermark
            if self.min_allocate:
                excess = min(excess, total - self.min_allocate)
            release = min(state.idle, max(0, excess))
        if self.excess_ip_release_delay:
            release = self._held(release, now)
        return PoolPlan(needed, release)

    def _held(self, excess: int, now: float) -> int:
        """How many of ``excess`` units have been excess for the whole delay. Cilium's operator
        marks each excess address with the time it became excess, forgets the mark when the
        address is no longer excess, and releases it once the mark is older than the delay.
        The pool counts units, not addresses: one mark per unit, the newest forgotten first
        when the excess shrinks (a pod took one), the due ones spent by the release."""
        marks = self._marks
        while len(marks) > excess:
            marks.pop()
        marks.extend(itertools.repeat(now, excess - len(marks)))
        due = 0
        while marks and now - marks[0] >= self.excess_ip_release_delay:
            marks.popleft()
            due += 1
        return due


def hooks_of(policy: PoolPolicy) -> tuple[DemandObserver | None, float, float]:
    """What the core asks of a policy beyond its plan: the policy itself when it wants the
    demand hooks (``DemandObserver``), its freed-address cooldown (``cooldown_of``) and its
    dry-vSwitch recheck (``recheck_of``)."""
    wants = callable(getattr(policy, "on_request", None))
    observer = policy if wants else None
    return observer, cooldown_of(policy), recheck_of(policy)  # type: ignore[return-value]


def cooldown_of(policy: PoolPolicy) -> float:
    """Seconds an address freed by a pod waits before another pod may have it (AWS's
    IP_COOLDOWN_PERIOD, ``AwsWarmPolicy.ip_cooldown_period``); 0 for every other policy, so
    the core's hand-out is unchanged for them."""
    return float(getattr(policy, "ip_cooldown_period", 0) or 0)


def recheck_of(policy: PoolPolicy) -> float:
    """Seconds after which the node's vSwitches are described again while all are dry
    (IpNotEnough, or a count of 0), doubling per describe that still finds them dry
    (``Supply.refresh_ttl``); 0 (the describe waits for ``vswitch_cache_ttl``, as upstream) for
    every policy but the adaptive one (``AdaptivePolicy.recheck_seconds``)."""
    return float(getattr(policy, "recheck_seconds", 0) or 0)


def make_policy(settings: IpamSettings) -> PoolPolicy:
    """The policy named in the settings, built from the registry (``terway.ipam.policies``)."""
    from terway.ipam.policies import make_policy as build  # the registry imports this module
    return build(settings)
