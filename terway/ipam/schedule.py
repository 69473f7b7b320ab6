"""When the pool next has work: the pool-sync clock and ``next_wakeup``'s bookkeeping.

Two things keep the wake-up cheap on a thousand simulated nodes (docs/performance-sim.md):

- A pool sync that would do nothing (nothing pending or due, the policy's plan empty) is left out
  of the wake-up, and so are the quiet syncs after it up to the next other deadline; the sync
  clock is moved past them (the same RNG draws as ticking each) at the next input or tick.
- What only non-pod inputs can change (blocks, backoffs, ENI steps, the vSwitch cache) is
  memoised per *structure version*, bumped by every input but request/release/cancel.

The pool answers the questions in ``Agenda``; this module owns the clock and the memos (the
plan memo, ``PlanMemo``, is shared between pools of equal policy and size: see there).
"""

from __future__ import annotations

import math
import random
from typing import ClassVar, Protocol

from terway.ipam.policy import PoolPolicy
from terway.ipam.settings import IpamSettings

_PLAN_MEMO_SIZE = 65536


class Agenda(Protocol):
    """What the schedule asks the pool."""

    def has_pending(self) -> bool: ...

    def reservation_due(self, at: float) -> bool: ...

    def structure_quiet(self, at: float) -> bool:
        """No block, backoff or vSwitch refresh due by ``at``, no ENI step ready to go."""
        ...

    def structure_deadline(self, now: float) -> float:
        """The first deadline after ``now`` that pod inputs cannot move (math.inf: none)."""
        ...

    def pod_deadline(self, now: float) -> float:
        """The first batch window or reservation to end after ``now`` (math.inf: none)."""
        ...

    def counts(self) -> tuple[int, ...]:
        """The pool's counts: with a time-invariant policy, they alone decide its plan."""
        ...

    def plan_is_zero(self, at: float) -> bool:
        """The policy's plan now adds and releases nothing (not memoised)."""
        ...


class PlanMemo:
    """Whether a time-invariant policy's plan is empty, per pool counts (``zero``).

    One per (policy, capacity, units per ENI), shared by every pool of the process with those:
    the same few pool states recur all day on every node, and a thousand simulated nodes each
    learning them alone made a large run ~5 % slower. Values are pure functions of the key, so
    sharing changes nothing but the time; the table is cleared when it grows past 65,536.
    """

    _registry: ClassVar[dict[tuple[object, int, int], PlanMemo]] = {}

    def __init__(self) -> None:
        self.zero: dict[tuple[int, ...], bool] = {}

    @classmethod
    def shared(cls, policy: PoolPolicy, settings: IpamSettings) -> PlanMemo | None:
        """The memo for this policy and node size; None for a mutable (unhashable) policy,
        whose plan may change for the same counts."""
        key = (policy, settings.capacity, settings.units_per_eni)
        try:
            return cls._registry.setdefault(key, cls())
        except TypeError:
            return None


class Schedule:
    """The pool's clock: the time, the next pool sync, and the memos of ``next_wakeup``."""

    def __init__(self, settings: IpamSettings, policy: PoolPolicy, rng: random.Random) -> None:
        self.now = 0.0
        self.next_sync: float | None = None   # first sync at the first input
        self.struct = 0                       # structure version (see the module docstring)
        self._rng = rng
        self._ver = 0                         # bumped by every input and tick
        self._skip: tuple[int, float] | None = None   # (version, limit) of left-out syncs
        self._sync_owed = False       # a left-out sync fell due exactly at now, not yet run
        self._other_memo: tuple[int, float] = (-1, 0.0)          # (struct, deadline)
        self._quiet_memo: tuple[int, float, bool] = (-1, 0.0, False)  # (struct, at, quiet)
        self.configure(settings, policy)

    def configure(self, settings: IpamSettings, policy: PoolPolicy) -> None:
        """New settings or policy. Syncs are left out only with a positive period, no idle
        reclaim (its own clock) and an immutable policy whose plan ignores the time."""
        self._s = settings
        self._plans = PlanMemo.shared(policy, settings)
        self.quiet_ok = (self._plans is not None and settings.sync_period > 0
                         and settings.idle_reclaim_after is None
                         and bool(getattr(policy, "time_invariant", False)))

    def advance(self, now: float, pod: bool) -> None:
        """Move time on. ``pod``: a pod input (or a tick that may do nothing), which leaves the
        structure version alone."""
        if now < 0 or now < self.now:
            raise ValueError(f"now: must not go backwards ({now} < {self.now})")
        skip = self._skip
        if skip is not None:
            ns = self.next_sync
            if skip[0] != self._ver or ns is None:
                self._skip = None            # stale: what _catch_up would do, without the call
            elif ns > now:
                self._skip, self._sync_owed = None, False   # no left-out sync has passed yet
            else:
                self._catch_up(now)
        self._ver += 1
        if not pod:
            self.struct += 1
        self.now = now
        if self.next_sync is None:
            self.next_sync = now

    def take_sync(self, now: float) -> bool:
        """The pool sync is due at ``now``: schedule the next one and say so."""
        if self.next_sync is None or now < self.next_sync:
            return False
        self._sync_owed = False
        self.next_sync = now + self._sync_interval()
        return True

    def review_now(self, now: float) -> None:
        """A policy asked for a pool sync now (``DemandObserver.on_request`` said True): the
        next tick at ``now`` runs one, and ``next_wakeup`` returns ``now`` until it has."""
        self.next_sync = now
        self._sync_owed = True

    def nothing_due(self, pool: Agenda, now: float) -> bool:
        """tick(now) would change nothing (the common case: a pump after a result)."""
        if pool.has_pending() or self._s.idle_reclaim_after is not None:
            return False
        ns = self.next_sync
        if ns is None or now >= ns:
            return False
        return not pool.reservation_due(now) and pool.structure_quiet(now)

    def next_wakeup(self, pool: Agenda) -> float | None:
        """See ``IpamCore.next_wakeup``."""
        now = self.now
        other = self._other_deadline(pool, now)
        ns = self.next_sync
        self._skip = None
        if ns is None or ns >= other or ns < now or (ns == now and not self._sync_owed):
            return None if other == math.inf else other
        if self.quiet_ok and not pool.has_pending() and self._sync_quiet(pool, ns):
            self._skip = (self._ver, other)
            return None if other == math.inf else other
        return ns

    def _sync_quiet(self, pool: Agenda, at: float) -> bool:
        """tick(at) would only move the sync clock on, if nothing else happens first. The
        caller has checked ``quiet_ok`` and that nothing is pending."""
        if pool.reservation_due(at):
            return False
        memo = self._quiet_memo
        if memo[0] == self.struct and memo[1] == at:
            quiet = memo[2]
        else:
            quiet = pool.structure_quiet(at)
            self._quiet_memo = (self.struct, at, quiet)
        return quiet and self._plan_is_zero(pool, at)

    def _plan_is_zero(self, pool: Agenda, at: float) -> bool:
        key = pool.counts()
        memo = self._plans.zero if self._plans is not None else {}
        zero = memo.get(key)
        if zero is None:
            zero = pool.plan_is_zero(at)
            if len(memo) >= _PLAN_MEMO_SIZE:
                memo.clear()
            memo[key] = zero
        return zero

    def _other_deadline(self, pool: Agenda, now: float) -> float:
        """The earliest future deadline other than the pool sync (math.inf: none)."""
        memo = self._other_memo
        if memo[0] == self.struct and memo[1] > now:
            best = memo[1]   # still the first of those deadlines after now (all were > it)
        else:
            best = pool.structure_deadline(now)
            self._other_memo = (self.struct, best)
        pod = pool.pod_deadline(now)
        return pod if pod < best else best       # min() without the call: once per wake-up read

    def _catch_up(self, now: float) -> None:
        """Move the sync clock past the syncs ``next_wakeup`` left out (those before ``now``;
        one at ``now`` itself stays due: the input or tick at ``now`` comes first)."""
        skip, self._skip = self._skip, None
        ns = self.next_sync
        if skip is None or skip[0] != self._ver or ns is None:
            return
        while ns < skip[1] and ns < now:
            ns += self._sync_interval()  # what tick(ns) would have set, the same RNG draw
        self.next_sync = ns
        self._sync_owed = ns == now

    def _sync_interval(self) -> float:
        """Upstream's ``wait.JitterUntil(syncPool, period, 1.0, ...)`` waits ``period * (1 +
        U[0, 1))``, so nodes started together do not call the cloud in step. Drawn from the
        pool's seeded RNG: reproducible, and a left-out sync draws what ticking it would have."""
        period, jitter = self._s.sync_period, self._s.sync_jitter
        if jitter <= 0:
            return period
        return period * (1.0 + jitter * self._rng.random())
