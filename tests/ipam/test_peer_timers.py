"""The peers' timers in the core: AWS's freed-IP cooldown (where the core hands addresses out)
and Cilium's delayed release of excess addresses (in ``CiliumPolicy``). Both off for terway."""

from __future__ import annotations

import random

from terway.ipam import Allocation, IpamCore, IpReady, Pending
from terway.ipam.policies import make_policy
from terway.ipam.policy import AwsWarmPolicy, CiliumPolicy, PoolState, cooldown_of
from tests.ipam.fakecloud import FakeCloud
from tests.ipam.helpers import settings, settle


def _full_pool(cooldown: int) -> tuple[IpamCore, list[str]]:
    """One ENI of two addresses (the node's whole capacity: nothing can be added), both held by
    pods a and b from t=1; one pool sync only (t=0), so only the hand-out decides."""
    s = settings(max_enis=1, ips_per_eni=2, sync_period=1e6)
    policy = AwsWarmPolicy(warm_ip_target=2, ip_cooldown_period=cooldown)
    core = IpamCore(s, id_prefix="n1", rng=random.Random(1), policy=policy)
    settle(core, FakeCloud({"vsw-a": 100}), 0.0)
    ips = []
    for key in ("ns/a", "ns/b"):
        res = core.request_ip(key, 1.0)
        assert isinstance(res, Allocation)
        ips.append(res.ip)
    return core, ips


def test_a_freed_address_is_not_handed_out_before_the_cooldown_ends() -> None:
    core, (ip_a, _) = _full_pool(cooldown=30)
    core.release_ip("ns/a", 10.0)
    assert core.stats().idle == 1                  # still on the ENI, counted available
    assert isinstance(core.request_ip("ns/c", 20.0), Pending)
    assert core.tick(20.5) == [] and core.allocation("ns/c") is None
    assert core.next_wakeup() == 40.0              # the waiting pod is served when it cools
    core.tick(39.9)
    assert core.allocation("ns/c") is None
    core.tick(40.0)
    ready = [n for n in core.drain_notices() if isinstance(n, IpReady)]
    assert [(n.pod_key, n.allocation.ip) for n in ready] == [("ns/c", ip_a)]


def test_after_the_cooldown_the_address_is_handed_out_at_once() -> None:
    core, (ip_a, _) = _full_pool(cooldown=30)
    core.release_ip("ns/a", 10.0)
    res = core.request_ip("ns/c", 40.0)
    assert isinstance(res, Allocation) and res.ip == ip_a


def test_without_a_cooldown_the_address_is_reused_at_once() -> None:
    core, (ip_a, _) = _full_pool(cooldown=0)
    core.release_ip("ns/a", 10.0)
    res = core.request_ip("ns/c", 10.0)
    assert isinstance(res, Allocation) and res.ip == ip_a


def test_the_pod_that_freed_it_gets_its_sticky_address_back_during_the_cooldown() -> None:
    s = settings(max_enis=1, ips_per_eni=2, sync_period=1e6)
    core = IpamCore(s, id_prefix="n1", policy=AwsWarmPolicy(warm_ip_target=2,
                                                             ip_cooldown_period=30))
    settle(core, FakeCloud({"vsw-a": 100}), 0.0)
    first = core.request_ip("ns/sts-0", 1.0, sticky=True)
    core.release_ip("ns/sts-0", 10.0)
    again = core.request_ip("ns/sts-0", 12.0, sticky=True)
    assert isinstance(first, Allocation) and isinstance(again, Allocation)
    assert again.ip == first.ip                    # the cooldown is about other pods


def test_only_the_aws_policy_asks_for_a_cooldown() -> None:
    assert cooldown_of(make_policy(settings(pool_policy="aws"))) == 30.0   # IP_COOLDOWN_PERIOD
    aws = settings(pool_policy="aws", pool_policy_params={"ip_cooldown_period": 0})
    assert cooldown_of(make_policy(aws)) == 0.0
    for name in ("terway", "cilium", "adaptive"):
        assert cooldown_of(make_policy(settings(pool_policy=name))) == 0.0


def _state(idle: int, used: int = 0, pending: int = 0) -> PoolState:
    return PoolState(total=idle + used, used=used, idle=idle, reserved=0, in_flight=0,
                     pending=pending, capacity=40, units_per_eni=10, eni_count=1)


def test_cilium_holds_an_excess_until_the_delay_passes_then_releases_it() -> None:
    p = CiliumPolicy(pre_allocate=2, excess_ip_release_delay=180)
    assert not p.time_invariant                    # the marks age: every sync must run
    assert p.plan(_state(idle=5), 0.0).ips_to_release == 0        # 3 excess, marked at 0
    assert p.plan(_state(idle=5), 179.0).ips_to_release == 0
    assert p.plan(_state(idle=5), 180.0).ips_to_release == 3
    assert p.plan(_state(idle=2), 195.0).ips_to_release == 0      # released: nothing left


def test_cilium_reuses_a_held_excess_for_a_spike_inside_the_delay() -> None:
    p = CiliumPolicy(pre_allocate=2, excess_ip_release_delay=180)
    assert p.plan(_state(idle=5), 0.0).ips_to_release == 0
    spike = p.plan(_state(idle=2, used=3), 60.0)   # three pods took the held addresses
    assert spike.ips_to_add == 0 and spike.ips_to_release == 0
    assert p.plan(_state(idle=5), 200.0).ips_to_release == 0      # excess again: marked anew
    assert p.plan(_state(idle=5), 379.0).ips_to_release == 0
    assert p.plan(_state(idle=5), 380.0).ips_to_release == 3


def test_cilium_keeps_the_oldest_marks_when_the_excess_shrinks() -> None:
    p = CiliumPolicy(pre_allocate=2, excess_ip_release_delay=180)
    p.plan(_state(idle=5), 0.0)                    # 3 marked at 0
    p.plan(_state(idle=3, used=2), 100.0)          # 1 left excess: its mark stays 0
    assert p.plan(_state(idle=3, used=2), 180.0).ips_to_release == 1


def test_cilium_without_a_delay_releases_at_once_and_is_time_invariant() -> None:
    p = CiliumPolicy(pre_allocate=2)
    assert p.time_invariant
    assert p.plan(_state(idle=5), 0.0).ips_to_release == 3
    built = make_policy(settings(pool_policy="cilium"))
    assert isinstance(built, CiliumPolicy) and built.excess_ip_release_delay == 180
