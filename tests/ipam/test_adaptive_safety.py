"""The adaptive policy's safety properties, each on states or loads built to break it: never
below what waiting pods need, no release/top-up oscillation under a steady load, a bounded
release rate, ``min_pool_size``/``max_pool_size`` respected, idle addresses yielded when the
vSwitch runs low, and no ENI emptied while the node's recent peak still needs it."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from terway.ipam.adaptive import AdaptivePolicy
from terway.ipam.policy import PoolPlan, PoolState
from tests.ipam.adaptive_load import MiniPool, drive, poisson


@dataclass(frozen=True)
class Review:
    at: float
    used: int
    target: int
    add: int
    release: int


class LoggedPool(MiniPool):
    """A MiniPool that logs every review that acted, with what it saw and its target."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Review] = []

    def review(self, policy: AdaptivePolicy, now: float) -> PoolPlan:
        used = self.used
        plan = super().review(policy, now)
        if plan.ips_to_add or plan.ips_to_release:
            self.log.append(Review(now, used, policy.warm_target(self.state(), now),
                                   plan.ips_to_add, plan.ips_to_release))
        return plan


def state(idle: int = 0, used: int = 0, pending: int = 0, in_flight: int = 0,
          free: int | None = 1000, capacity: int = 30, enis: int | None = None) -> PoolState:
    total = idle + used
    return PoolState(total=total, used=used, idle=idle, reserved=0, in_flight=in_flight,
                     pending=pending, capacity=capacity, units_per_eni=10,
                     eni_count=-(-total // 10) if enis is None else enis, vswitch_free=free)


def trained(seed: int = 1, rate: float = 0.1, **kw: float) -> tuple[AdaptivePolicy, float]:
    """A policy that has seen an hour of Poisson arrivals (and a burst now and then)."""
    p = AdaptivePolicy(**kw)   # type: ignore[arg-type]
    rng = random.Random(seed)
    t = 0.0
    while t < 3600:
        t += rng.expovariate(rate)
        p.on_request(t)
        if rng.random() < 0.7:
            p.on_release(t + 0.5)
        if rng.random() < 0.01:
            for i in range(8):
                p.on_request(t + 0.1 + i * 0.01)
    return p, t + 1


def random_states(seed: int, n: int = 400) -> list[PoolState]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        out.append(state(idle=rng.randint(0, 20), used=rng.randint(0, 10),
                         pending=rng.choice([0, 0, 0, rng.randint(1, 15)]),
                         in_flight=rng.choice([0, 0, rng.randint(1, 10)]),
                         free=rng.choice([None, 2, 40, 5000])))
    return out


# ---------------------------------------------------------------------- waiting pods

def test_never_plans_below_what_waiting_pods_need() -> None:
    """Whatever it learned and whatever the vSwitch says: every waiting pod not covered by an
    idle address or one on its way is added for, and nothing is released while pods wait or
    a top-up is in flight."""
    for seed in range(3):
        p, t = trained(seed)
        for i, st in enumerate(random_states(seed)):
            plan = p.plan(st, t + i)
            assert plan.ips_to_add >= st.pending - st.idle - st.in_flight, st
            if st.pending or st.in_flight:
                assert plan.ips_to_release == 0, st


def test_never_releases_more_than_is_idle() -> None:
    p, t = trained(4)
    for i, st in enumerate(random_states(4)):
        plan = p.plan(st, t + 400 * i)          # far apart: every hold and interval passed
        assert 0 <= plan.ips_to_release <= st.idle, st


# ---------------------------------------------------------------------- hysteresis

def test_a_load_wobbling_inside_the_band_makes_no_calls() -> None:
    """Used swings by 3 every few minutes, forever: after it settles, the pool neither tops up
    nor releases (a policy without the band would do both at every swing)."""
    p = AdaptivePolicy(review_seconds=5.0, sync_jitter=0.0)
    pool = MiniPool()
    arrivals, lives = [], []
    for k in range(40):                        # 12 long-lived pods, then 3 more every 6 min
        if k == 0:
            arrivals += [60.0 * i for i in range(12)]
            lives += [1e9] * 12
        arrivals += [900.0 + 360.0 * k + 40.0 * i for i in range(3)]
        lives += [180.0] * 3
    drive(p, pool, arrivals, lives, until=900.0 + 360.0 * 40)
    late = [a for a in pool.actions if a[0] > 3600.0]
    assert late == [], late
    assert pool.pending == 0


def test_no_release_then_top_up_under_a_steady_load() -> None:
    """Poisson arrivals at a steady rate for four hours: after a release, the next top-up
    comes only once pods took more than the release kept above the target (band/2): the
    demand moved, the pool did not flap. Reviews never add and release at once."""
    p = AdaptivePolicy(review_seconds=5.0, sync_jitter=0.0, hold_seconds=300.0)
    pool = LoggedPool()
    times, lives = poisson(0.03, 4 * 3600.0, seed=7, life=300.0)
    drive(p, pool, times, lives, until=4 * 3600.0)
    acts = pool.log
    assert any(a.release for a in acts) and any(a.add for a in acts)
    assert not any(a.add and a.release for a in acts)
    for first, second in itertools.pairwise(acts):
        if first.release and second.add:
            kept = first.target + p.band(first.target, 30) // 2
            taken = second.used - first.used        # pods that came net since the release
            assert taken > kept - second.target, (first, second)


def test_steady_load_calls_are_few() -> None:
    """Four hours of steady Poisson churn on one node: top-ups and releases stay a handful an
    hour (each a single call), far below one per pod."""
    p = AdaptivePolicy(review_seconds=5.0, sync_jitter=0.0)
    pool = MiniPool()
    times, lives = poisson(0.03, 4 * 3600.0, seed=11, life=300.0)
    drive(p, pool, times, lives, until=4 * 3600.0)
    settled = [a for a in pool.actions if a[0] > 1800.0]
    assert len(settled) <= 12 * 3.5, settled            # <= 12 an hour
    assert len(settled) < 0.1 * len(times)


# ---------------------------------------------------------------------- call rate

def test_releases_are_at_most_one_per_interval() -> None:
    """Reviews every second on a pool that swings between overfull and empty: releases come
    at most once per ``release_interval_seconds``, under vSwitch pressure too."""
    for free in (1000, 2):
        p, t = trained(5, hold_seconds=0.0, release_interval_seconds=60.0)
        releases = []
        for i in range(3600):
            st = state(idle=25, used=2, free=free) if i % 2 else state(idle=0, used=2,
                                                                       free=free)
            if p.plan(st, t + i).ips_to_release:
                releases.append(i)
        assert releases, free
        assert all(b - a >= 60 for a, b in itertools.pairwise(releases)), releases
        assert len(releases) <= 61


def test_an_excess_waits_the_hold_and_a_dip_restarts_it() -> None:
    p, t = trained(6, hold_seconds=300.0)
    target = p.warm_target(state(), t)
    big = state(idle=target + 20, used=5)
    assert p.plan(big, t).ips_to_release == 0                   # hold starts
    assert p.plan(big, t + 299).ips_to_release == 0
    assert p.plan(big, t + 301).ips_to_release > 0
    q, t = trained(6, hold_seconds=300.0)
    q.plan(big, t)
    q.plan(state(idle=0, used=5), t + 200)                       # the excess went away
    assert q.plan(big, t + 301).ips_to_release == 0


# ---------------------------------------------------------------------- bounds

def test_min_and_max_pool_size_bound_every_plan() -> None:
    """With bounds set, the target stays in [min, max]; a plan never tops the pool above max
    (beyond waiting pods) and never releases it below min; above max it releases at once."""
    for seed in range(3):
        p, t = trained(seed, rate=0.5, min_pool_size=3, max_pool_size=6)
        for i, st in enumerate(random_states(seed + 10)):
            now = t + 400 * i
            assert 3 <= p.warm_target(st, now) <= 6
            plan = p.plan(st, now)
            assert plan.ips_to_add <= max(0, 6 - st.available) + st.pending, st
            after = st.available - plan.ips_to_release
            assert after >= min(3, st.available), st
    p, t = trained(1, min_pool_size=3, max_pool_size=6)
    assert p.plan(state(idle=15, used=1), t).ips_to_release == 9   # above max: no hold


def test_target_never_exceeds_capacity() -> None:
    p, t = trained(2, rate=5.0)
    assert p.warm_target(state(capacity=8), t) <= 8


# ---------------------------------------------------------------------- vSwitch pressure

def test_yields_idle_addresses_when_the_vswitch_runs_low() -> None:
    """Below ``pressure_free`` free addresses on the node's vSwitches: no pre-warming, no hold,
    no band, and an ENI may be emptied; everything above ``min_pool_size`` goes back at once.
    Pods that wait are still added for."""
    p, t = trained(3, pressure_free=32, min_pool_size=1)
    calm = p.plan(state(idle=4, used=10, free=500), t)
    assert calm.ips_to_release == 0
    tight = p.plan(state(idle=8, used=10, free=5), t + 1)
    assert tight.ips_to_release == 7                               # keeps min_pool_size
    assert p.plan(state(idle=0, used=10, free=5), t + 2).ips_to_add == 1   # min only
    assert p.plan(state(idle=0, used=10, pending=4, free=5), t + 3).ips_to_add >= 4


def test_yields_more_than_a_calm_node_keeps() -> None:
    p, t = trained(8, hold_seconds=0.0)
    q, _ = trained(8, hold_seconds=0.0)
    calm = p.plan(state(idle=20, used=10, free=5000), t).ips_to_release
    tight = q.plan(state(idle=20, used=10, free=10), t).ips_to_release
    assert tight > calm


# ---------------------------------------------------------------------- ENIs

def test_does_not_empty_an_eni_the_recent_peak_needs() -> None:
    """Three ENIs (21 addresses: two full, one with 1), pods peaked at 19 a minute ago: a
    release may not take the third ENI's last address (which would give the ENI back and
    make a new one at the next peak); an hour later, with the peak down to 5, it may."""
    p, t = trained(9, hold_seconds=0.0, eni_memory=3600.0)
    p.plan(state(idle=2, used=19, enis=3), t)                          # the peak is seen
    low = state(idle=16, used=5, enis=3)
    assert p.plan(low, t + 60).ips_to_release == 0
    later = t + 3700
    p.plan(state(idle=16, used=5, enis=3), later - 60)
    assert p.plan(low, later).ips_to_release > 0


# ---------------------------------------------------------------------- a shared vSwitch

def test_keeps_at_most_its_share_of_a_small_vswitch() -> None:
    """A node does not know how many others draw from its vSwitches: it keeps warm at most
    1/``pressure_share`` of the free addresses above ``pressure_free`` (a /20 is unaffected),
    and what it holds above that share goes back without the hold."""
    p, t = trained(11, rate=0.5, hold_seconds=300.0)
    big = p.warm_target(state(used=5, free=4000), t)
    assert big >= 5
    room = (60 - 32) // 16
    assert p.room(state(free=60)) == room == 1
    assert p.room(state(free=20)) == 0 and p.room(state(free=None)) is None
    plan = p.plan(state(idle=0, used=5, free=60), t)
    assert plan.ips_to_add <= room                         # tops up only to its share
    hoard = state(idle=9, used=5, enis=1, free=60)
    assert p.plan(hoard, t + 1).ips_to_release == 9 - room  # no hold


def test_min_pool_size_is_kept_on_a_small_vswitch_too() -> None:
    p, t = trained(12, rate=0.5, min_pool_size=3)
    assert p.plan(state(idle=0, used=5, free=40), t).ips_to_add >= 3
    assert p.plan(state(idle=8, used=2, enis=1, free=40), t + 1).ips_to_release <= 5


def test_cold_start_is_bounded_by_the_share() -> None:
    """The first pods of a node on a small vSwitch: what they need plus its share, not the
    20 addresses that four nodes starting together would take from a /26."""
    p = AdaptivePolicy(cold_start=20)
    p.on_request(0.0)
    assert p.plan(state(pending=3, free=60), 0.0).ips_to_add == 3 + 1
    q = AdaptivePolicy(cold_start=20)
    q.on_request(0.0)
    assert q.plan(state(pending=3, free=4000), 0.0).ips_to_add == 20


def test_a_tight_vswitch_does_not_empty_an_eni_the_peak_needs() -> None:
    """Under pressure a release takes idle addresses at once, but not an ENI's last one while
    the recent peak needs that ENI (giving it back and making it again costs some ten calls
    on a vSwitch whose addresses others are waiting for)."""
    p, t = trained(13, hold_seconds=0.0)
    p.plan(state(idle=0, used=12, enis=2, free=5), t)          # the peak: two ENIs
    low = state(idle=4, used=7, enis=2, free=5)                 # 11 addresses, 2 ENIs
    assert p.plan(low, t + 61).ips_to_release == 0
    q, t = trained(13, hold_seconds=0.0)
    q.plan(state(idle=0, used=4, enis=2, free=5), t)            # the peak fits in one
    assert q.plan(state(idle=7, used=4, enis=2, free=5), t + 61).ips_to_release == 7


def test_under_pressure_with_nothing_idle_a_request_is_reviewed_at_once() -> None:
    """On a tight vSwitch the node keeps nothing warm, so a new pod waits for a top-up: the
    request asks for a review at once (the batch window would only add to its wait), and the
    review adds for it; with idle addresses, or a calm vSwitch, requests wait for the batch."""
    p, t = trained(14)
    p.plan(state(idle=0, used=8, free=5), t)
    assert p.on_request(t + 1) is True
    assert p.plan(state(idle=0, used=8, pending=1, free=5), t + 1).ips_to_add == 1
    p.plan(state(idle=2, used=8, free=5), t + 2)
    assert p.on_request(t + 3) is False
    p.plan(state(idle=0, used=8, free=5000), t + 4)
    assert p.on_request(t + 5) is False
