"""Stickiness, exclusive ENIs, restart/restore, vSwitch choice, determinism, policies."""

from __future__ import annotations

import random

from terway.cloud.api import Eni
from terway.ipam import (
    Allocation,
    AwsWarmPolicy,
    CiliumPolicy,
    CreateEni,
    IpamCore,
    PoolState,
    TerwayPolicy,
    execute,
    feed,
    run_sync,
    selection,
)
from tests.ipam.fakecloud import FakeCloud
from tests.ipam.helpers import make, ready_keys, settings, settle


def test_sticky_pod_gets_its_ip_back_and_nobody_else_does() -> None:
    core, cloud = make(ips_per_eni=2, max_enis=1, sticky_ttl=300.0)
    first = core.request_ip("sts/web-0", 0.0, sticky=True)
    core.request_ip("ns/other", 0.0)
    settle(core, cloud, 0.3)
    first = core.allocation("sts/web-0")
    assert first is not None
    core.release_ip("sts/web-0", 10.0)
    taker = core.request_ip("ns/newcomer", 11.0)
    assert not isinstance(taker, Allocation)  # the reserved IP is not handed out
    again = core.request_ip("sts/web-0", 20.0, sticky=True)
    assert isinstance(again, Allocation) and again.ip == first.ip


def test_sticky_reservation_expires() -> None:
    core, cloud = make(ips_per_eni=1, max_enis=1, sticky_ttl=300.0)
    core.request_ip("sts/web-0", 0.0, sticky=True)
    settle(core, cloud, 0.3)
    ip = core.allocation("sts/web-0").ip  # type: ignore[union-attr]
    core.release_ip("sts/web-0", 10.0)
    core.request_ip("ns/newcomer", 11.0)
    assert core.next_wakeup() is not None and core.next_wakeup() <= 310.0  # type: ignore[operator]
    notices = settle(core, cloud, 310.0)
    assert ready_keys(notices) == ["ns/newcomer"]
    assert core.allocation("ns/newcomer").ip == ip  # type: ignore[union-attr]


def test_exclusive_mode_one_eni_per_pod() -> None:
    core, cloud = make(exclusive=True, max_enis=2, ips_per_eni=10)
    for key in ("ns/a", "ns/b", "ns/c"):
        core.request_ip(key, 0.0)
    cmds = core.tick(0.3)
    creates = [c for c in cmds if isinstance(c, CreateEni)]
    assert [c.secondary_ip_count for c in creates] == [0, 0]
    for c in cmds:
        feed(core, c, execute(c, cloud), 0.3)
    settle(core, cloud, 0.3)
    a, b = core.allocation("ns/a"), core.allocation("ns/b")
    assert a is not None and b is not None and a.exclusive and a.eni_id != b.eni_id
    assert a.ip == cloud.enis[a.eni_id].primary_ip
    assert core.pending_keys() == ["ns/c"]
    core.release_ip("ns/a", 1.0)
    assert ready_keys(core.drain_notices()) == ["ns/c"]


def test_exclusive_mode_releases_whole_enis() -> None:
    core, cloud = make(exclusive=True, max_enis=2, max_pool_size=0)
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    core.release_ip("ns/a", 1.0)
    settle(core, cloud, 121.0)
    assert cloud.enis == {}


def test_restore_rebuilds_from_cloud_and_store() -> None:
    core, _cloud = make(max_pool_size=10)
    eni = Eni("eni-9", "00:16:3e:00:00:09", "vsw-a", "cn-hangzhou-k", "InUse", "10.1.0.10",
              ("10.1.0.10", "10.1.0.11", "10.1.0.12"))
    primary = Eni("eni-0", "00:16:3e:00:00:00", "vsw-a", "cn-hangzhou-k", "InUse", "10.1.0.2",
                  ("10.1.0.2", "10.1.0.3"), eni_type="Primary")
    report = core.restore([primary, eni], {"10.1.0.11": "ns/a", "10.9.9.9": "ns/gone",
                                           "10.1.0.3": "ns/on-primary"}, 0.0)
    assert report.freed == ("10.1.0.10", "10.1.0.12")
    assert report.dropped == {"ns/gone": "10.9.9.9", "ns/on-primary": "10.1.0.3"}
    assert core.allocation("ns/a") is not None
    assert [e.eni_id for e in core.enis()] == ["eni-9"]
    assert isinstance(core.request_ip("ns/b", 1.0), Allocation)


def _run(seed: int) -> list[object]:
    cloud = FakeCloud({"vsw-a": 100, "vsw-b": 100, "vsw-c": 100})
    core = IpamCore(settings(vswitch_ids=("vsw-a", "vsw-b", "vsw-c"), ips_per_eni=3,
                             max_enis=4, min_pool_size=2, max_pool_size=4),
                    id_prefix="n1", rng=random.Random(seed))
    out: list[object] = []
    t = 0.0
    for i in range(30):
        t += 7.0
        core.request_ip(f"ns/p{i}", t)
        if i >= 4:
            core.release_ip(f"ns/p{i - 4}", t)
        out += run_sync(core, cloud, t + 0.3)
    return out


def test_same_inputs_same_commands() -> None:
    assert _run(3) == _run(3)
    assert len(_run(3)) > 5


def test_random_selection_depends_on_seed_ordered_on_counts() -> None:
    counts = {"vsw-a": 10, "vsw-b": 300, "vsw-c": 50}
    ids = ["vsw-a", "vsw-b", "vsw-c"]
    assert selection.order_vswitches(ids, counts, "ordered", random.Random(0)) == [
        "vsw-b", "vsw-c", "vsw-a"]
    orders = {tuple(selection.order_vswitches(ids, counts, "random", random.Random(s)))
              for s in range(20)}
    assert len(orders) > 1
    assert selection.order_vswitches(ids, {**counts, "vsw-b": 0}, "ordered",
                                     random.Random(0)) == ["vsw-c", "vsw-a"]


def test_ordered_policy_creates_on_vswitch_with_most_free_addresses() -> None:
    core, cloud = make({"vsw-a": 20, "vsw-b": 500}, vswitch_ids=("vsw-a", "vsw-b"),
                       vswitch_selection="ordered")
    settle(core, cloud, 0.0)  # DescribeVSwitches fills the cache
    core.request_ip("ns/a", 1.0)
    settle(core, cloud, 1.3)
    assert core.allocation("ns/a").vswitch_id == "vsw-b"  # type: ignore[union-attr]


def _state(**kw: int) -> PoolState:
    base = dict(total=0, used=0, idle=0, reserved=0, in_flight=0, pending=0, capacity=40,
                units_per_eni=10, eni_count=0)
    base.update(kw)
    return PoolState(**base)


def test_policies_plan() -> None:
    terway = TerwayPolicy(min_pool_size=5, max_pool_size=8)
    assert terway.plan(_state(idle=2), 0.0).ips_to_add == 3
    assert terway.plan(_state(idle=2, in_flight=3), 0.0).ips_to_add == 0
    assert terway.plan(_state(idle=12, total=12), 0.0).ips_to_release == 4
    assert terway.plan(_state(idle=12, total=12, pending=1), 0.0).ips_to_release == 0
    aws = AwsWarmPolicy(warm_ip_target=4, minimum_ip_target=10)
    assert aws.plan(_state(total=2, idle=2), 0.0).ips_to_add == 8
    assert aws.plan(_state(total=20, idle=15, used=5), 0.0).ips_to_release == 10
    cil = CiliumPolicy(pre_allocate=8, max_above_watermark=2)
    assert cil.plan(_state(idle=3, total=3), 0.0).ips_to_add == 5
    assert cil.plan(_state(idle=13, total=13), 0.0).ips_to_release == 3
