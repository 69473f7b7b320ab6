"""Seeded churn with injected failures: the core's bookkeeping never drifts from the cloud."""

from __future__ import annotations

import random

import pytest

from terway.cloud.errors import CloudError
from terway.ipam import IpamCore, run_sync
from tests.ipam.fakecloud import FakeCloud, ip_not_enough
from tests.ipam.helpers import settings

FAILURES = [
    ("assign", lambda: ip_not_enough("vsw-a")),
    ("assign", lambda: CloudError("Throttling", "slow", http_status=400)),
    ("create", lambda: ip_not_enough("vsw-b")),
    ("create", lambda: CloudError("InternalError", "boom", http_status=500)),
    ("attach", lambda: CloudError("InternalError", "boom", http_status=500)),
    ("unassign", lambda: CloudError("Operation.Conflict", "busy", http_status=400)),
    ("detach", lambda: CloudError("Throttling", "slow", http_status=400)),
    ("delete", lambda: CloudError("InternalError", "boom", http_status=500)),
]


def _check(core: IpamCore, cloud: FakeCloud, max_enis: int) -> None:
    core.self_check()   # running counters and reservation heap == a full rescan
    owned = [r for r in core.mapping() if r.status == "Normal"]
    assert len({r.ip for r in owned}) == len(owned)
    for r in owned:
        assert r.ip in cloud.enis[r.eni_id].private_ips
        alloc = core.allocation(r.pod_key)
        assert alloc is not None and alloc.ip == r.ip
    assert len(cloud.enis) <= max_enis
    for view in core.enis():
        assert set(view.ips) <= set(cloud.enis[view.eni_id].private_ips)


@pytest.mark.parametrize("seed", range(8))
def test_random_churn_keeps_core_and_cloud_consistent(seed: int) -> None:
    rng = random.Random(seed)
    cloud = FakeCloud({"vsw-a": 25, "vsw-b": 40})
    core = IpamCore(settings(vswitch_ids=("vsw-a", "vsw-b"), ips_per_eni=6, max_enis=3,
                             min_pool_size=2, max_pool_size=5, sync_period=30.0),
                    id_prefix="n1", rng=random.Random(seed))
    live: set[str] = set()
    t = 0.0
    for _ in range(300):
        t += rng.choice([0.1, 0.5, 3.0, 20.0])
        if rng.random() < 0.15:
            action, make_err = rng.choice(FAILURES)
            cloud.fail.setdefault(action, []).append(make_err())
        key = f"ns/p{rng.randrange(40)}"
        if key in live and rng.random() < 0.5:
            core.release_ip(key, t)
            live.discard(key)
        elif key not in live:
            core.request_ip(key, t, sticky=rng.random() < 0.2)
            live.add(key)
        run_sync(core, cloud, t)
        core.drain_notices()
        _check(core, cloud, 3)
    # quiesce: no pods, failures cleared, a long time passes: everything above max is released
    cloud.fail.clear()
    for key in sorted(live):
        core.release_ip(key, t)
        core.cancel_request(key, t)
    for _ in range(60):
        t += 60.0
        run_sync(core, cloud, t)
    _check(core, cloud, 3)
    st = core.stats()
    assert st.used == 0 and st.pending == 0
    assert st.idle <= 5
    assert set(cloud.enis) == {v.eni_id for v in core.enis()}
    # liveness: with blocks expired and room left, new pods are all served
    for i in range(12):
        core.request_ip(f"ns/new{i}", t)
    for dt in (0.3, 1.0, 2.0, 5.0, 10.0):
        run_sync(core, cloud, t + dt)
    assert all(core.allocation(f"ns/new{i}") is not None for i in range(12))
    assert core.condition() is True


def test_self_check_catches_a_drifted_counter() -> None:
    core = IpamCore(settings(min_pool_size=2), id_prefix="n1", rng=random.Random(1))
    cloud = FakeCloud({"vsw-a": 20})
    core.request_ip("ns/a", 0.0)
    run_sync(core, cloud, 0.0)
    run_sync(core, cloud, 0.5)
    core.self_check()
    eni = next(iter(core._enis.values()))
    eni.n_idle += 1                       # what a missed update would leave behind
    with pytest.raises(AssertionError, match="counters"):
        core.self_check()


def test_sticky_reservations_expire_from_the_heap() -> None:
    core = IpamCore(settings(sticky_ttl=300.0), id_prefix="n1", rng=random.Random(1))
    cloud = FakeCloud({"vsw-a": 20})
    core.request_ip("ns/db-0", 0.0, sticky=True)
    run_sync(core, cloud, 0.0)
    run_sync(core, cloud, 0.5)
    alloc = core.allocation("ns/db-0")
    assert alloc is not None
    core.release_ip("ns/db-0", 10.0)
    core.self_check()
    assert core.next_wakeup() == 310.0          # the reservation's expiry (quiet syncs skipped)
    core.tick(240.0)
    assert core.stats().reserved == 1
    assert core.next_wakeup() == 310.0
    core.tick(310.0)
    core.self_check()
    assert core.stats().reserved == 0
    core.request_ip("ns/other", 311.0)
    assert core.allocation("ns/other") is not None
