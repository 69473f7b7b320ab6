"""Serving: warm hits, batching, new ENIs, capacity, selection between ENIs."""

from __future__ import annotations

from terway.ipam import Allocation, AssignIps, CreateEni, Pending, selection
from terway.ipam.model import EniSlot, EniState, IpSlot
from tests.ipam.helpers import make, ready_keys, settle


def test_warm_hit_is_served_without_any_cloud_call() -> None:
    core, cloud = make(min_pool_size=3, max_pool_size=5)
    settle(core, cloud, 0.0)
    assert core.stats().idle == 3
    calls = len(cloud.calls)
    res = core.request_ip("ns/a", 1.0)
    assert isinstance(res, Allocation)
    assert core.tick(1.0) == []
    assert len(cloud.calls) == calls
    assert res.res_id == f"{res.mac}.{res.ip}"


def test_cold_request_waits_for_batch_window_then_creates_eni() -> None:
    core, cloud = make()
    settle(core, cloud, 0.0)
    res = core.request_ip("ns/a", 1.0)
    assert isinstance(res, Pending)
    assert not any(isinstance(c, CreateEni) for c in core.tick(1.1))
    assert core.next_wakeup() == 1.0 + 0.3
    cmds = core.tick(1.3)
    creates = [c for c in cmds if isinstance(c, CreateEni)]
    assert len(creates) == 1 and creates[0].secondary_ip_count == 0  # primary IP serves the pod
    # results come back through the run loop
    from terway.ipam import execute, feed
    feed(core, creates[0], execute(creates[0], cloud), 1.4)
    notices = settle(core, cloud, 1.5)
    assert ready_keys(notices) == ["ns/a"]
    alloc = core.allocation("ns/a")
    assert alloc is not None and alloc.ip == cloud.enis[alloc.eni_id].primary_ip


def test_batching_asks_at_most_ten_per_call_and_one_eni_when_it_fits() -> None:
    core, cloud = make(ips_per_eni=20)
    settle(core, cloud, 0.0)
    for i in range(15):
        core.request_ip(f"ns/p{i}", 1.0)
    cmds = core.tick(1.3)
    creates = [c for c in cmds if isinstance(c, CreateEni)]
    assert [c.secondary_ip_count for c in creates] == [9]  # 10 IPs, the rest on the same ENI
    notices = []
    from terway.ipam import execute, feed
    for c in cmds:
        feed(core, c, execute(c, cloud), 1.4)
    notices += settle(core, cloud, 1.7)
    assert sorted(ready_keys(notices)) == sorted(f"ns/p{i}" for i in range(15))
    assigns = [c for c in cloud.calls if c == "assign"]
    assert len(assigns) == 1
    assert len(cloud.enis) == 1


def test_assign_batches_are_capped_at_ten() -> None:
    core, cloud = make(ips_per_eni=20, min_pool_size=1, max_pool_size=30)
    settle(core, cloud, 0.0)
    core.request_ip("ns/warm", 0.5)
    for i in range(25):
        core.request_ip(f"ns/p{i}", 1.0)
    cmds = core.tick(1.3)
    counts = [c.count for c in cmds if isinstance(c, AssignIps)]
    assert counts and max(counts) <= 10


def test_new_eni_when_existing_ones_are_full() -> None:
    core, cloud = make(ips_per_eni=3, max_enis=2)
    for i in range(3):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    assert len(cloud.enis) == 1
    res = core.request_ip("ns/p3", 1.0)
    assert isinstance(res, Pending)
    notices = settle(core, cloud, 1.3)
    assert ready_keys(notices) == ["ns/p3"]
    assert len(cloud.enis) == 2


def test_max_enis_reached_keeps_request_pending_until_a_release() -> None:
    core, cloud = make(ips_per_eni=2, max_enis=1)
    for i in range(2):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    res = core.request_ip("ns/p2", 1.0)
    assert isinstance(res, Pending)
    settle(core, cloud, 2.0)
    assert core.pending_keys() == ["ns/p2"]
    assert "capacity" in core.pending_reason("ns/p2")
    assert not any(c == "create" for c in cloud.calls[2:])
    core.release_ip("ns/p0", 3.0)
    assert ready_keys(core.drain_notices()) == ["ns/p2"]


def test_cancel_request_drops_it() -> None:
    core, _cloud = make(max_enis=0)
    assert isinstance(core.request_ip("ns/a", 0.0), Pending)
    assert core.cancel_request("ns/a", 1.0) is True
    assert core.pending_keys() == []
    assert core.cancel_request("ns/a", 1.0) is False


def test_request_is_idempotent_per_pod_key() -> None:
    core, cloud = make(min_pool_size=2, max_pool_size=2)
    settle(core, cloud, 0.0)
    a = core.request_ip("ns/a", 1.0)
    b = core.request_ip("ns/a", 2.0)
    assert a == b


def _eni(eni_id: str, used: int, idle: int) -> EniSlot:
    e = EniSlot(eni_id, "mac-" + eni_id, "vsw-a", f"{eni_id}-ip0", EniState.READY)
    for k in range(used + idle):
        e.add_ip(IpSlot(f"{eni_id}-ip{k}", owner=f"p{k}" if k < used else None))
    return e


def test_most_ips_serves_from_fullest_eni_least_ips_from_emptiest() -> None:
    enis = [_eni("eni-a", 1, 2), _eni("eni-b", 5, 1), _eni("eni-c", 0, 0)]
    most = selection.pick_idle(enis, "most_ips")
    least = selection.pick_idle(enis, "least_ips")
    assert most is not None and most[0].eni_id == "eni-b"
    assert least is not None and least[0].eni_id == "eni-a"
    grow_most = [e.eni_id for e in selection.order_enis(enis, "most_ips")]
    grow_least = [e.eni_id for e in selection.order_enis(enis, "least_ips")]
    assert grow_most == ["eni-b", "eni-a", "eni-c"]
    assert grow_least == ["eni-c", "eni-a", "eni-b"]


def test_bad_inputs_raise_and_change_nothing() -> None:
    import pytest

    core, _cloud = make()
    core.tick(5.0)
    with pytest.raises(ValueError, match="pod_key"):
        core.request_ip("", 5.0)
    with pytest.raises(ValueError, match="backwards"):
        core.request_ip("ns/a", 4.0)
    assert core.pending_keys() == []
