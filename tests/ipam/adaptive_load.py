"""A node's pool as the adaptive policy sees it, for its tests: what the policy planned lands at
once, pods are served from idle addresses or wait for the next review. No core, no cloud: the
tests here are about the policy's decisions, which this makes easy to drive for hours."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

from terway.ipam.adaptive import AdaptivePolicy
from terway.ipam.policy import PoolPlan, PoolState


@dataclass
class MiniPool:
    """Idle, used and waiting units of one node; ``actions`` logs (time, "add"|"release", n)."""

    capacity: int = 30
    per_eni: int = 10
    vswitch_free: int | None = 1000
    idle: int = 0
    used: int = 0
    pending: int = 0
    actions: list[tuple[float, str, int]] = field(default_factory=list)

    def state(self) -> PoolState:
        total = self.idle + self.used
        return PoolState(total=total, used=self.used, idle=self.idle, reserved=0, in_flight=0,
                         pending=self.pending, capacity=self.capacity,
                         units_per_eni=self.per_eni, eni_count=math.ceil(total / self.per_eni),
                         vswitch_free=self.vswitch_free)

    def arrive(self, policy: AdaptivePolicy, now: float) -> None:
        policy.on_request(now)
        if self.idle and not self.pending:
            self.idle, self.used = self.idle - 1, self.used + 1
        else:
            self.pending += 1

    def leave(self, policy: AdaptivePolicy, now: float) -> None:
        policy.on_release(now)
        self.used, self.idle = self.used - 1, self.idle + 1
        self._serve(policy, now)

    def review(self, policy: AdaptivePolicy, now: float) -> PoolPlan:
        plan = policy.plan(self.state(), now)
        add = min(plan.ips_to_add, self.capacity - self.idle - self.used)
        if add > 0:
            self.idle += add
            self.actions.append((now, "add", add))
        self._serve(policy, now)
        release = min(plan.ips_to_release, self.idle)
        if release > 0:
            self.idle -= release
            self.actions.append((now, "release", release))
        return plan

    def _serve(self, policy: AdaptivePolicy, now: float) -> None:
        while self.pending and self.idle:
            self.pending, self.idle, self.used = self.pending - 1, self.idle - 1, self.used + 1
            policy.on_served(1.0, now)


def drive(policy: AdaptivePolicy, pool: MiniPool, arrivals: list[float],
          lifetimes: list[float], until: float, review: float = 5.0) -> MiniPool:
    """Arrivals at the given times, each pod living its lifetime (after it is served, roughly:
    from its arrival), reviews every ``review`` seconds; deterministic."""
    events: list[tuple[float, int, str]] = []
    for i, (t, life) in enumerate(zip(arrivals, lifetimes, strict=True)):
        heapq.heappush(events, (t, i, "arrive"))
        heapq.heappush(events, (t + life, i, "leave"))
    seq = len(arrivals)
    t = 0.0
    while t <= until:
        heapq.heappush(events, (t, seq, "review"))
        seq += 1
        t += review
    while events:
        now, _, what = heapq.heappop(events)
        if now > until:
            break
        if what == "arrive":
            pool.arrive(policy, now)
        elif what == "leave":
            if pool.used:
                pool.leave(policy, now)
        else:
            pool.review(policy, now)
    return pool


def poisson(rate: float, until: float, seed: int, life: float) -> tuple[list[float],
                                                                       list[float]]:
    """Arrival times at ``rate``/s up to ``until`` and exponential lifetimes of mean ``life``."""
    rng = random.Random(seed)
    times: list[float] = []
    t = rng.expovariate(rate)
    while t < until:
        times.append(t)
        t += rng.expovariate(rate)
    return times, [rng.expovariate(1.0 / life) for _ in times]
