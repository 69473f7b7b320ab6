"""The adaptive pool policy: what it learns (rates, bursts and their period, lead time), its
cold start, and its selection through eni_conf. Safety properties: test_adaptive_safety.py."""

from __future__ import annotations

import random

import pytest

from terway.config import parse_eni_conf
from terway.ipam import AdaptivePolicy, IpamSettings, NodeIdentity, make_policy
from terway.ipam.adaptive import Bursts
from terway.ipam.policy import PoolState
from terway.limits import NodeCapacity
from tests.ipam.helpers import make, ready_keys, settle


def state(idle: int = 0, used: int = 0, pending: int = 0, in_flight: int = 0,
          free: int | None = None, per: int = 10, capacity: int = 40) -> PoolState:
    total = idle + used
    return PoolState(total=total, used=used, idle=idle, reserved=0, in_flight=in_flight,
                     pending=pending, capacity=capacity, units_per_eni=per,
                     eni_count=-(-total // per), vswitch_free=free)


def poisson_feed(p: AdaptivePolicy, rate: float, until: float, seed: int = 3,
                 life: float = 300.0, start: float = 0.0) -> float:
    """Arrivals at ``rate``/s from ``start``, each released ``life`` s later; the last time."""
    rng = random.Random(seed)
    t, releases = start, list[float]()
    while t < until:
        t += rng.expovariate(rate)
        while releases and releases[0] <= t:
            p.on_release(releases.pop(0))
        p.on_request(t)
        releases.append(t + life)
    return t


def burst(p: AdaptivePolicy, at: float, n: int) -> None:
    for i in range(n):
        p.on_request(at + i * 0.05)


# ---------------------------------------------------------------------- rates and lead time

def test_untrained_keeps_min_pool_size() -> None:
    p = AdaptivePolicy(min_pool_size=2)
    assert p.warm_target(state(), 0.0) == 2
    assert p.plan(state(idle=2), 0.0).ips_to_add == 0
    assert p.plan(state(idle=1), 0.0).ips_to_add >= 1


def test_target_grows_with_the_arrival_rate() -> None:
    slow, fast = AdaptivePolicy(), AdaptivePolicy()
    t1 = poisson_feed(slow, 0.02, 3600)
    t2 = poisson_feed(fast, 0.5, 3600)
    a, b = slow.warm_target(state(), t1), fast.warm_target(state(), t2)
    assert 1 <= a < b
    # p99 of demand over the lead time (5 s x 2 + 3 s): 0.5/s in and out -> about 9
    assert 6 <= b <= 12


def test_target_grows_with_the_measured_lead_time() -> None:
    quick, slow = AdaptivePolicy(), AdaptivePolicy()
    for p in (quick, slow):
        poisson_feed(p, 0.2, 1800)
    for _ in range(20):
        slow.on_served(30.0, 1800.0)
        quick.on_served(0.5, 1800.0)
    assert slow.lead_time() > quick.lead_time()
    assert slow.warm_target(state(), 1800.0) > quick.warm_target(state(), 1800.0)


def test_pods_placed_at_the_start_teach_neither_rate_nor_lead() -> None:
    """The node's first pods all come at once and wait for its first ENIs: neither a rate of
    arrivals to keep warm for, nor the time a top-up takes."""
    placed, quiet = AdaptivePolicy(), AdaptivePolicy()
    burst(placed, 0.0, 30)
    for _ in range(30):
        placed.on_served(6.0, 6.0)
    quiet.on_request(0.0)
    assert placed.lead_time() == quiet.lead_time()
    assert placed.single_demand(120.0) == 0            # no rate of single arrivals learned
    assert placed.burst_demand(120.0) == 0             # and no burst remembered
    placed.on_served(6.0, 200.0)       # a later pod that waited: measured
    assert placed.lead_time() > quiet.lead_time()


# ---------------------------------------------------------------------- bursts

def test_a_burst_without_a_period_is_kept_warm_and_fades() -> None:
    p = AdaptivePolicy(burst_memory=1800)
    t = poisson_feed(p, 0.01, 1800)
    burst(p, t + 1, 12)                 # a job fan-out of 12 pods
    assert p.burst_demand(t + 60) >= 11
    assert p.warm_target(state(), t + 60) >= 12
    assert p.burst_demand(t + 4 * 3600) == 0


def test_bursts_that_matter_little_are_not_kept() -> None:
    p = AdaptivePolicy()
    t = poisson_feed(p, 1.0, 3600)      # some 3,600 arrivals, then one burst of 3
    burst(p, t + 5, 3)
    assert p.burst_demand(t + 30) == 0


def test_recurring_bursts_are_prewarmed_just_before_they_are_due() -> None:
    """Bursts every 30 min: their size is warm from ``prewarm`` (600 s, plus the lead time)
    before the next one is due, not in between (the issue's "keeps remembered bursts warm all
    day")."""
    p = AdaptivePolicy()
    burst(p, 0.0, 10)                   # the node's pods being placed: not a pattern
    for k in (1, 2, 3):
        burst(p, k * 1800.0, 6)
    due = 4 * 1800.0
    assert p.burst_demand(due - 900) == 0
    assert p.burst_demand(due - 700) == 0
    assert p.burst_demand(due - 300) == 6
    assert p.burst_demand(due - 5) == 6
    assert p.warm_target(state(), due - 5) >= 6


def test_a_burst_that_does_not_come_ends_the_prewarm() -> None:
    p = AdaptivePolicy(burst_memory=600)
    for k in (1, 2, 3):
        burst(p, k * 1800.0, 6)
    due = 4 * 1800.0
    assert p.burst_demand(due) == 6
    assert p.burst_demand(due + 1800) == 0     # overdue: neither pre-warmed nor remembered


def test_clusters_and_the_burst_period() -> None:
    b = Bursts()
    b.arrive(0.0)                       # the node's first arrival
    assert b.placing(0.0)
    closed = [b.arrive(t) for t in (100.0, 100.5, 101.0, 200.0)]
    assert closed == [None, None, None, (100.0, 101.0, 3)]   # closed by the next arrival
    assert b.close_due(201.0) is None and b.close_due(203.0) is None   # one arrival: none
    for start in (100.0, 1900.0, 2500.0):
        b.record(start, 4)
    assert b.recurrence() is None       # 1800 then 600: no period
    b.record(3100.0, 4)
    assert b.recurrence() == pytest.approx((600.0, 0.0))
    assert b.next_due(3500.0) == pytest.approx((3700.0, 0.0, 4))
    assert b.next_due(3710.0) is None


# ---------------------------------------------------------------------- cold start

def test_first_request_asks_for_a_review_and_gets_a_cold_start_batch() -> None:
    p = AdaptivePolicy(cold_start=20)
    assert p.on_request(0.0) is True
    assert p.on_request(0.01) is False
    assert p.plan(state(pending=2), 0.01).ips_to_add == 20
    assert p.plan(state(pending=2, in_flight=20), 0.3).ips_to_add == 0


def test_cold_start_is_only_for_an_empty_node_with_shared_enis() -> None:
    restarted = AdaptivePolicy(cold_start=20)      # a restart: the pool has addresses
    restarted.on_request(0.0)
    assert restarted.plan(state(idle=3, used=10), 0.0).ips_to_add < 20
    exclusive = AdaptivePolicy(cold_start=20)
    exclusive.on_request(0.0)
    assert exclusive.plan(state(pending=1, per=1, capacity=30), 0.0).ips_to_add < 10
    capped = AdaptivePolicy(cold_start=20, max_pool_size=8)
    capped.on_request(0.0)
    assert capped.plan(state(pending=1), 0.0).ips_to_add <= 9


def test_in_the_core_the_first_request_is_reviewed_at_once() -> None:
    """The core's review-now hook: the node's first request makes the core sync at that very
    time (``next_wakeup`` says now), and the sync creates ENIs for the cold start batch
    instead of waiting for the batch window to ask for the one pod."""
    from terway.ipam import CreateEni, IpamCore
    from tests.ipam.helpers import settings
    s = settings(max_enis=3, sync_period=5.0, pool_policy="adaptive")
    core = IpamCore(s, id_prefix="n1", rng=random.Random(1))
    core.tick(0.0)                             # the node starts: a first sync, no demand
    core.request_ip("p0", 10.0)
    assert core.next_wakeup() == 10.0
    cmds = core.tick(10.0)
    created = [c for c in cmds if isinstance(c, CreateEni)]
    assert sum(c.secondary_ip_count + 1 for c in created) == 20, cmds
    core.request_ip("p1", 11.0)               # later requests: no review asked for
    assert core.next_wakeup() != 11.0


def test_in_the_core_learns_and_tops_up() -> None:
    """Through IpamCore: the hooks reach the policy; a review tops the pool up to the target."""
    s = IpamSettings(instance_id="i-1", zone_id="z", vswitch_ids=("vsw-a",),
                     security_group_ids=("sg",), max_enis=3, ips_per_eni=10,
                     sync_period=10.0, sync_jitter=0.0, pool_policy="adaptive")
    from terway.ipam import IpamCore
    from tests.ipam.fakecloud import FakeCloud
    core = IpamCore(s, id_prefix="n1", rng=random.Random(1))
    cloud = FakeCloud({"vsw-a": 100})
    policy = core._policy
    assert isinstance(policy, AdaptivePolicy)
    settle(core, cloud, 0.0)
    keys: list[str] = []
    t = 1.0
    for i in range(15):                       # the node's first pods
        keys.append(f"p{i}")
        core.request_ip(keys[-1], t + i * 0.01)
    assert len(ready_keys(settle(core, cloud, 2.0))) == 15
    for k in keys:
        core.release_ip(k, 600.0)
    settle(core, cloud, 601.0)
    assert core.stats().idle >= policy.warm_target(core._state(), 601.0)
    core.self_check()


# ---------------------------------------------------------------------- configuration

def test_selected_in_eni_conf() -> None:
    conf = parse_eni_conf({"version": "1", "pool_policy": "adaptive",
                           "pool_policy_params": {"pressure_free": 8, "review_seconds": 7,
                                                  "cold_start": 10, "band_min": 4,
                                                  "burst_memory_seconds": 60,
                                                  "eni_memory_seconds": 120},
                           "vswitches": {"z": ["vsw-a"]}, "max_pool_size": 12})
    cap = NodeCapacity(instance_type="t", eni_quantity=4, ips_per_eni=10, max_enis=3,
                       capacity=30, max_pods_shared=30, max_pods_exclusive=3,
                       max_pool_size=12, min_pool_size=0, min_enis=0)
    s = IpamSettings.from_config(conf, cap, NodeIdentity("i-1", "z", "vsw-n", ("sg",)))
    assert s.sync_period == 7.0
    p = make_policy(s)
    assert isinstance(p, AdaptivePolicy)
    assert (p.pressure_free, p.max_pool_size, p.review_seconds) == (8, 12, 7.0)
    assert (p.cold_start, p.band_min, p.burst_memory, p.eni_memory) == (10, 4, 60.0, 120.0)


def test_defaults_come_from_the_registry() -> None:
    from terway.ipam.policies import param_default
    conf = parse_eni_conf({"version": "1", "pool_policy": "adaptive",
                           "vswitches": {"z": ["vsw-a"]}})
    cap = NodeCapacity(instance_type="t", eni_quantity=4, ips_per_eni=10, max_enis=3,
                       capacity=30, max_pods_shared=30, max_pods_exclusive=3,
                       max_pool_size=0, min_pool_size=0, min_enis=0)
    p = make_policy(IpamSettings.from_config(conf, cap, NodeIdentity("i-1", "z", "vsw-n",
                                                                      ("sg",))))
    assert isinstance(p, AdaptivePolicy)
    assert p.review_seconds == param_default("adaptive", "review_seconds")
    assert p.cold_start == param_default("adaptive", "cold_start")
    assert p.band_min == param_default("adaptive", "band_min")
    assert p.hold_seconds == param_default("adaptive", "hold_seconds")


def test_unknown_param_is_refused() -> None:
    from terway.config import ConfigError
    with pytest.raises(ConfigError, match=r"pool_policy_params\.warm_ip_target"):
        parse_eni_conf({"version": "1", "pool_policy": "adaptive",
                        "pool_policy_params": {"warm_ip_target": 1}})


def test_same_inputs_same_plans() -> None:
    plans = []
    for _ in range(2):
        p = AdaptivePolicy()
        t = poisson_feed(p, 0.3, 1200, seed=9)
        plans.append([p.plan(state(idle=i % 13, used=5), t + i) for i in range(50)])
    assert plans[0] == plans[1]


def test_make_core_default_policy_untouched() -> None:
    core, _ = make()
    assert not isinstance(core._policy, AdaptivePolicy)


# ---------------------------------------------------------------------- bursts as a level

def recurring(p: AdaptivePolicy, sizes: tuple[int, ...], period: float = 900.0,
              base: int = 3, life: float = 120.0, t0: float = 0.0) -> float:
    """Bursts of short pods every ``period`` from ``t0`` on a node holding ``base`` pods: each
    burst's pods are seen in use at the reviews while they live, then gone. The last burst's
    start."""
    start = t0
    p.plan(state(used=base, idle=10, free=4000), t0)
    for k, n in enumerate(sizes, start=1):
        start = t0 + k * period
        burst(p, start, n)
        p.plan(state(used=base + n, idle=5, free=4000), start + 5)    # its pods in use
        p.plan(state(used=base, idle=n + 5, free=4000), start + life)  # and gone
    return start


def test_a_burst_is_a_level_net_of_its_pods_in_use() -> None:
    """The next burst's size is warm before it is due; while a burst's pods hold their
    addresses those count towards it (they come back when the pods end and are the next
    burst's warm pool), so a node that just served one does not warm a second set."""
    p = AdaptivePolicy()
    last = recurring(p, (6, 6, 6))
    due = last + 900.0
    assert p.burst_demand(due - 60) == 6
    assert p.burst_demand(due - 60, in_use=3) == 6          # the base level: all 6 warm
    assert p.burst_demand(due - 60, in_use=3 + 4) == 2      # 4 of them out still
    assert p.burst_demand(due - 60, in_use=3 + 9) == 0


def test_the_level_is_the_largest_of_the_last_bursts() -> None:
    p = AdaptivePolicy()
    last = recurring(p, (5, 9, 6))
    assert p.burst_demand(last + 900.0 - 60) == 9


def test_a_burst_level_is_filled_without_the_band() -> None:
    """A burst's size is a level, not a rate: the top-up before it is due fills to it, not
    to it plus half the hysteresis band (the band stays for releasing)."""
    p = AdaptivePolicy()
    last = recurring(p, (8, 8, 8))
    due = last + 900.0
    st = state(used=3, idle=2, free=4000)
    assert p.warm_target(st, due - 60) == 8
    assert p.plan(st, due - 60).ips_to_add == 8 - 2


def test_short_burst_pods_lend_their_addresses_to_the_rate() -> None:
    """When the last burst's pods were gone before the next came (short jobs), the pods of a
    burst in progress will give their addresses back: the rate's demand is netted by them
    and no top-up follows the burst (only to be released after it). A Deployment scaled up
    in steps keeps its pods: its steps are bursts whose pods stay, and nothing is netted."""
    short = AdaptivePolicy()
    poisson_feed(short, 0.05, 800.0, life=60.0)
    last = recurring(short, (10, 10, 10), t0=800.0)
    busy = state(used=3 + 10, idle=0, free=4000)
    assert short.plan(busy, last + 30).ips_to_add == 0
    steps = AdaptivePolicy()
    poisson_feed(steps, 0.05, 800.0, life=60.0)
    for k in (1, 2, 3):                     # reviews every minute see the level of the step
        burst(steps, 800.0 + k * 900.0, 10)
        for i in range(15):
            steps.plan(state(used=3 + 10 * k, idle=5, free=4000), 800.0 + k * 900.0 + 5 + 60 * i)
    assert steps.plan(state(used=33, idle=0, free=4000), last + 30).ips_to_add > 0
