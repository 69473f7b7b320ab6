"""The adaptive pool policy: learning, targets, hysteresis, pressure, and its selection."""

from __future__ import annotations

import random

import pytest

from terway.config import parse_eni_conf
from terway.ipam import AdaptivePolicy, IpamSettings, NodeIdentity, make_policy
from terway.ipam.policy import PoolState
from terway.limits import NodeCapacity
from tests.ipam.helpers import make, ready_keys, settle


def state(idle: int = 0, used: int = 0, pending: int = 0, in_flight: int = 0,
          free: int | None = None) -> PoolState:
    total = idle + used
    return PoolState(total=total, used=used, idle=idle, reserved=0, in_flight=in_flight,
                     pending=pending, capacity=40, units_per_eni=10, eni_count=2,
                     vswitch_free=free)


def poisson_feed(p: AdaptivePolicy, rate: float, until: float, seed: int = 3,
                 life: float = 300.0) -> float:
    """Arrivals at ``rate``/s, each released ``life`` s later; returns the last time."""
    rng = random.Random(seed)
    t, releases = 0.0, []
    while t < until:
        t += rng.expovariate(rate)
        while releases and releases[0] <= t:
            p.on_release(releases.pop(0))
        p.on_request(t)
        releases.append(t + life)
    return t


def test_untrained_keeps_min_pool_size() -> None:
    p = AdaptivePolicy(min_pool_size=2)
    assert p.warm_target(state(), 0.0) == 2
    assert p.plan(state(), 0.0).ips_to_add == 2


def test_target_grows_with_the_arrival_rate() -> None:
    slow, fast = AdaptivePolicy(), AdaptivePolicy()
    t1 = poisson_feed(slow, 0.02, 3600)
    t2 = poisson_feed(fast, 0.5, 3600)
    a, b = slow.warm_target(state(), t1), fast.warm_target(state(), t2)
    assert 1 <= a < b
    # p99 of demand over the lead time (10 s x 2 + 3 s): 0.5/s in and out -> about 11
    assert 8 <= b <= 16


def test_target_grows_with_the_measured_lead_time() -> None:
    quick, slow = AdaptivePolicy(), AdaptivePolicy()
    for p in (quick, slow):
        poisson_feed(p, 0.2, 1800)
    for _ in range(20):
        slow.on_served(30.0, 1800.0)
        quick.on_served(0.5, 1800.0)
    assert slow.lead_time() > quick.lead_time()
    assert slow.warm_target(state(), 1800.0) > quick.warm_target(state(), 1800.0)


def test_remembers_bursts_that_matter_for_p99() -> None:
    p = AdaptivePolicy()
    t = poisson_feed(p, 0.01, 1800)
    for i in range(12):                 # a job fan-out of 12 pods
        p.on_request(t + 1 + i * 0.1)
    assert p.warm_target(state(), t + 60) >= 12
    # it fades: two hours of memory
    assert p.warm_target(state(), t + 6 * 3600) < 12


def test_bounded_by_min_and_max_pool_size() -> None:
    p = AdaptivePolicy(min_pool_size=3, max_pool_size=6)
    t = poisson_feed(p, 1.0, 1800)
    assert p.warm_target(state(), t) == 6
    assert p.plan(state(idle=0), t).ips_to_add == 6
    assert p.plan(state(idle=9), t).ips_to_release == 3      # above max: at once
    q = AdaptivePolicy(min_pool_size=3)
    assert q.plan(state(idle=0), 0.0).ips_to_add == 3


def test_never_below_what_pending_pods_need() -> None:
    p = AdaptivePolicy()
    plan = p.plan(state(pending=7, in_flight=2, free=0), 10.0)   # pressure too
    assert plan.ips_to_add >= 5
    assert plan.ips_to_release == 0
    assert p.plan(state(idle=20, pending=1), 10.0).ips_to_release == 0


def test_release_needs_hold_band_and_interval() -> None:
    p = AdaptivePolicy(hold_seconds=300, release_interval_seconds=60)
    t = poisson_feed(p, 0.05, 3600)
    target = p.warm_target(state(), t)
    band = max(2, -(-target // 2))
    assert p.plan(state(idle=target + band, used=20), t).ips_to_release == 0   # in the band
    big = state(idle=target + band + 10, used=20)    # 20 held / 0.05 per s: 400 s lifetime
    assert p.plan(big, t).ips_to_release == 0                             # hold starts
    assert p.plan(big, t + 100).ips_to_release == 0
    first = p.plan(big, t + 301).ips_to_release
    assert first > 0
    assert p.plan(big, t + 330).ips_to_release == 0                       # interval
    # a dip below the band resets the hold (no thrash on a short excess)
    q = AdaptivePolicy(hold_seconds=300)
    q.plan(big, 0.0)
    q.plan(state(idle=0), 200.0)
    assert q.plan(big, 301.0).ips_to_release == 0


def test_yields_under_vswitch_pressure() -> None:
    p = AdaptivePolicy(pressure_free=32, min_pool_size=1)
    t = poisson_feed(p, 0.2, 3600)
    calm = p.plan(state(idle=4, used=10, free=500), t)
    assert calm.ips_to_release == 0
    tight = p.plan(state(idle=8, used=10, free=5), t + 1)
    assert tight.ips_to_release == 7                                       # keeps min_pool_size
    assert p.plan(state(idle=0, used=10, free=5), t + 2).ips_to_add == 1  # no pre-warming


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
    for i in range(15):                       # a burst: most wait for the first top-up
        keys.append(f"p{i}")
        core.request_ip(keys[-1], t + i * 0.01)
    got = ready_keys(settle(core, cloud, 2.0))
    assert policy._lead < policy.lead_prior or got   # served ones fed the lead time
    for k in keys:
        core.release_ip(k, 600.0)
    settle(core, cloud, 601.0)
    assert core.stats().idle >= policy.warm_target(core._state(), 601.0)
    core.self_check()


def test_selected_in_eni_conf() -> None:
    conf = parse_eni_conf({"version": "1", "pool_policy": "adaptive",
                           "pool_policy_params": {"pressure_free": 8, "review_seconds": 5},
                           "vswitches": {"z": ["vsw-a"]}, "max_pool_size": 12})
    cap = NodeCapacity(instance_type="t", eni_quantity=4, ips_per_eni=10, max_enis=3,
                       capacity=30, max_pods_shared=30, max_pods_exclusive=3,
                       max_pool_size=12, min_pool_size=0, min_enis=0)
    s = IpamSettings.from_config(conf, cap, NodeIdentity("i-1", "z", "vsw-n", ("sg",)))
    assert s.sync_period == 5.0
    p = make_policy(s)
    assert isinstance(p, AdaptivePolicy)
    assert (p.pressure_free, p.max_pool_size, p.review_seconds) == (8, 12, 5.0)


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
