"""Pool sync jitter: upstream's ``wait.JitterUntil(syncPool, ip_pool_sync_period, 1.0, true)``.

Each wait is ``period * (1 + U[0, 1))`` from the core's seeded RNG; skipping quiet syncs (the
simulator's lazy driver) must give the very same schedule as ticking every one of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

from terway.config import parse_eni_conf
from terway.ipam import IpamCore, PoolPlan, PoolState, TerwayPolicy, execute, feed
from terway.ipam.settings import IpamSettings, NodeIdentity
from terway.limits import NodeCapacity
from tests.ipam.fakecloud import FakeCloud
from tests.ipam.helpers import settings, settle


@dataclass
class Recording:
    """Plans nothing and remembers when it was asked: the pool sync times."""

    asked: list[float] = field(default_factory=list)

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        self.asked.append(now)
        return PoolPlan()


@dataclass(frozen=True)
class EveryTick(TerwayPolicy):
    """Upstream's policy with quiet-sync skipping off: the core wakes for every sync."""

    time_invariant: ClassVar[bool] = False


def drive(core: IpamCore, cloud: FakeCloud, until: float,
          seen: list[tuple[float, str]] | None = None) -> None:
    """Tick at every wake-up the core asks for, running its commands, up to ``until``."""
    while (t := core.next_wakeup()) is not None and t <= until:
        cmds = core.tick(t)
        if seen is not None:
            seen += [(t, type(c).__name__) for c in cmds]
        for c in cmds:
            feed(core, c, execute(c, cloud), t)
        core.drain_notices()


def test_each_wait_is_the_period_stretched_by_up_to_its_length() -> None:
    policy = Recording()
    core = IpamCore(settings(sync_jitter=1.0), id_prefix="n1", rng=random.Random(5),
                    policy=policy)
    cloud = FakeCloud({"vsw-a": 100})
    settle(core, cloud, 0.0)
    drive(core, cloud, 3000.0)
    draws = random.Random(5)
    want = [0.0]
    while len(want) < len(policy.asked):
        want.append(want[-1] + 120.0 * (1.0 + draws.random()))
    assert len(policy.asked) >= 12
    assert policy.asked == want
    gaps = [b - a for a, b in zip(policy.asked, policy.asked[1:], strict=False)]
    assert all(120.0 <= g < 240.0 for g in gaps) and len(set(gaps)) == len(gaps)


def test_no_jitter_keeps_the_fixed_period() -> None:
    policy = Recording()
    core = IpamCore(settings(sync_jitter=0.0), id_prefix="n1", rng=random.Random(5),
                    policy=policy)
    cloud = FakeCloud({"vsw-a": 100})
    settle(core, cloud, 0.0)
    drive(core, cloud, 600.0)
    assert policy.asked == [0.0, 120.0, 240.0, 360.0, 480.0, 600.0]


def test_skipping_quiet_syncs_gives_the_same_jittered_schedule() -> None:
    runs = []
    for policy in (TerwayPolicy(2, 4), EveryTick(2, 4)):
        core = IpamCore(settings(sync_jitter=1.0, min_pool_size=2, max_pool_size=4),
                        id_prefix="n1", rng=random.Random(9), policy=policy)
        cloud = FakeCloud({"vsw-a": 100})
        seen: list[tuple[float, str]] = []
        settle(core, cloud, 0.0)
        wakeups = []
        while (t := core.next_wakeup()) is not None and t <= 1000.0:
            wakeups.append(t)
            drive(core, cloud, t, seen)
        core.request_ip("ns/a", 1000.5)     # the pool drops below min_pool_size
        core.request_ip("ns/b", 1000.5)
        drive(core, cloud, 3000.0, seen)
        runs.append((wakeups, seen))
    (lazy_wakeups, lazy), (eager_wakeups, eager) = runs
    assert len(eager_wakeups) > len(lazy_wakeups)     # the lazy core slept through syncs
    assert lazy == eager
    top_up = next(t for t, name in lazy if name == "AssignIps")
    assert top_up > 1000.5 and top_up % 120.0 != 0.0   # at a jittered sync, not on a grid


def test_eni_conf_key_reaches_the_core() -> None:
    node = NodeIdentity("i-1", "cn-hangzhou-k", "vsw-1", ("sg-1",))
    cap = NodeCapacity(instance_type="ecs.g6.large", eni_quantity=3, ips_per_eni=10,
                       max_enis=2, capacity=20, max_pods_shared=20, max_pods_exclusive=2,
                       max_pool_size=5, min_pool_size=0, min_enis=0)
    default = IpamSettings.from_config(parse_eni_conf({}), cap, node)
    fixed = IpamSettings.from_config(parse_eni_conf({"ip_pool_sync_jitter_factor": 0}), cap,
                                     node)
    assert (default.sync_jitter, fixed.sync_jitter) == (1.0, 0.0)
