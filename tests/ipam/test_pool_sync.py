"""Pool sync: top-up to min_pool_size, release above max_pool_size, whole ENIs, idle reclaim."""

from __future__ import annotations

import itertools

from terway.ipam import DetachEni, UnassignIps, execute, feed
from tests.ipam.helpers import make, settle


def test_top_up_to_min_pool_size_at_start() -> None:
    core, cloud = make(min_pool_size=5, max_pool_size=8)
    settle(core, cloud, 0.0)
    assert core.stats().idle == 5
    # the pool is at its target: the sync at 120 s would do nothing, so the next wake-up is
    # the vSwitch cache refresh (10 min)
    assert core.next_wakeup() == 600.0


def test_quiet_syncs_are_skipped_but_keep_their_schedule() -> None:
    core, cloud = make(min_pool_size=2, max_pool_size=4)
    settle(core, cloud, 0.0)
    assert core.next_wakeup() == 600.0          # syncs at 120, 240 would be no-ops
    core.request_ip("ns/a", 250.0)               # the pool drops below min_pool_size
    core.request_ip("ns/b", 250.0)
    assert core.next_wakeup() == 360.0           # on the 120 s schedule, not 250 + 120
    assert core.tick(300.0) == []                # nothing due before the sync
    cmds = core.tick(360.0)
    assert [type(c).__name__ for c in cmds] == ["AssignIps"]


def test_a_tick_between_skipped_syncs_changes_nothing() -> None:
    a, cloud_a = make(min_pool_size=2, max_pool_size=4)
    b, cloud_b = make(min_pool_size=2, max_pool_size=4)
    settle(a, cloud_a, 0.0)
    settle(b, cloud_b, 0.0)
    assert b.next_wakeup() == 600.0              # b's driver sleeps through 120 and 240
    for t in (120.0, 240.0):                     # a driver that ticks at every sync anyway
        assert a.tick(t) == []
    for core in (a, b):
        core.request_ip("ns/a", 250.0)
        core.request_ip("ns/b", 250.0)
    assert a.next_wakeup() == b.next_wakeup() == 360.0
    assert repr(a.tick(360.0)) == repr(b.tick(360.0))


def test_top_up_again_after_pods_take_the_pool() -> None:
    core, cloud = make(min_pool_size=2, max_pool_size=4)
    settle(core, cloud, 0.0)
    core.request_ip("ns/a", 1.0)
    core.request_ip("ns/b", 1.0)
    assert core.stats().idle == 0
    settle(core, cloud, 60.0)
    assert core.stats().idle == 0  # not before the sync period
    settle(core, cloud, 120.0)
    assert core.stats().idle == 2


def test_release_above_max_pool_size_keeps_primary_ip() -> None:
    core, cloud = make(max_pool_size=1, ips_per_eni=10)
    for i in range(6):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    eni = core.enis()[0]
    primary = cloud.enis[eni.eni_id].primary_ip
    owner_of_primary = next(r.pod_key for r in core.mapping() if r.ip == primary)
    core.release_ip(owner_of_primary, 1.0)
    for i in range(6):
        core.release_ip(f"ns/p{i}", 1.0)
    cmds = core.tick(121.0)
    unassigns = [c for c in cmds if isinstance(c, UnassignIps)]
    assert unassigns and all(primary not in c.ips for c in unassigns)
    for c in cmds:
        feed(core, c, execute(c, cloud), 121.0)
    settle(core, cloud, 121.0)
    # 6 idle, max 1: budget 5, the ENI is not released whole (6 IPs > 5) and primary stays
    assert core.stats().idle == 1
    assert primary in cloud.enis[eni.eni_id].private_ips


def test_whole_eni_released_when_nothing_on_it_is_used() -> None:
    core, cloud = make(max_pool_size=0, ips_per_eni=4)
    for i in range(3):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    for i in range(3):
        core.release_ip(f"ns/p{i}", 1.0)
    cmds = core.tick(121.0)
    assert any(isinstance(c, DetachEni) for c in cmds)
    assert not any(isinstance(c, UnassignIps) for c in cmds)
    for c in cmds:
        feed(core, c, execute(c, cloud), 121.0)
    settle(core, cloud, 121.0)
    assert cloud.enis == {} and core.enis() == []
    assert cloud.free["vsw-a"] == 100


def test_min_eni_keeps_the_last_enis() -> None:
    core, cloud = make(max_pool_size=0, ips_per_eni=1, min_enis=1)
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    core.release_ip("ns/a", 1.0)
    settle(core, cloud, 121.0)
    assert len(cloud.enis) == 1


def test_used_and_reserved_ips_are_never_released() -> None:
    core, cloud = make(max_pool_size=0, ips_per_eni=4, sticky_ttl=300.0)
    core.request_ip("ns/a", 0.0)
    core.request_ip("sts/web-0", 0.0, sticky=True)
    core.request_ip("ns/c", 0.0)
    settle(core, cloud, 0.3)
    core.release_ip("sts/web-0", 1.0)
    core.release_ip("ns/c", 1.0)
    settle(core, cloud, 121.0)
    rows = {r.pod_key or r.ip: r for r in core.mapping()}
    assert "ns/a" in rows
    assert core.stats().reserved == 1
    assert core.stats().total == 2


def test_no_release_while_requests_are_pending() -> None:
    core, cloud = make(max_pool_size=0, ips_per_eni=2, max_enis=1)
    core.request_ip("ns/a", 0.0)
    core.request_ip("ns/b", 0.0)
    settle(core, cloud, 0.3)
    core.request_ip("ns/c", 1.0)
    core.release_ip("ns/a", 2.0)  # c takes a's IP at once
    assert core.allocation("ns/c") is not None


def test_idle_reclaim_after_quiet_period_in_batches() -> None:
    core, cloud = make(min_pool_size=1, max_pool_size=10, ips_per_eni=10,
                       idle_reclaim_after=1800.0, idle_reclaim_interval=600.0,
                       idle_reclaim_batch=2, sync_period=100000.0)
    for i in range(8):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    for i in range(8):
        core.release_ip(f"ns/p{i}", 1.0)
    settle(core, cloud, 100.0)
    assert core.stats().idle == 9  # 8 released + min_pool_size 1, under max_pool_size: kept
    settle(core, cloud, 1799.0)
    assert core.stats().idle == 9  # quiet for less than idle_reclaim_after
    settle(core, cloud, 1800.0)
    assert core.stats().idle == 7
    settle(core, cloud, 2000.0)
    assert core.stats().idle == 7  # interval not elapsed
    settle(core, cloud, 2400.0 + 60.0)   # the interval, stretched by up to 10% (jitter)
    assert core.stats().idle == 5


def test_idle_reclaim_interval_is_jittered_as_upstream() -> None:
    """Issue 10: upstream waits interval * (1 + U[0, jitter_factor)) between reclaim steps."""
    core, cloud = make(min_pool_size=0, max_pool_size=10, ips_per_eni=10,
                       idle_reclaim_after=100.0, idle_reclaim_interval=600.0,
                       idle_reclaim_jitter=0.5, idle_reclaim_batch=1, sync_period=100000.0)
    for i in range(8):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    for i in range(8):
        core.release_ip(f"ns/p{i}", 1.0)
    drops, idle = [], core.stats().idle
    for t in range(101, 3000, 5):
        settle(core, cloud, float(t))
        if core.stats().idle < idle:
            drops.append(t)
            idle = core.stats().idle
    gaps = [b - a for a, b in itertools.pairwise(drops)]
    assert len(gaps) >= 3 and all(600 <= g <= 905 for g in gaps), drops
    assert len(set(gaps)) > 1, f"no jitter: {drops}"


def test_stats_and_mapping_rows() -> None:
    core, cloud = make(min_pool_size=3, max_pool_size=3)
    settle(core, cloud, 0.0)
    core.request_ip("ns/a", 1.0)
    rows = core.mapping()
    assert [r.status for r in rows].count("Normal") == 1
    assert [r.status for r in rows].count("Idle") == 2
    st = core.stats()
    assert (st.total, st.used, st.idle, st.eni_count) == (3, 1, 2, 1)
