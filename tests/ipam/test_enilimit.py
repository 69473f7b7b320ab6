"""Upstream's per-ENI limiters (pkg/eni/local.go: ``rate.NewLimiter(rate.Every(6s), 2)``).

Per ENI slot: one for AssignPrivateIpAddresses, one shared by the ENI's creation (+ attach) and
its release (detach + delete). Unassigning is never limited.
"""

from __future__ import annotations

import pytest

from terway.cloud.api import Eni
from terway.cloud.errors import CloudError
from terway.ipam import AssignIps, CreateEni, DeleteEni, DetachEni, UnassignIps
from terway.ipam.enilimit import EniOpLimiter


def eni(eni_id: str) -> Eni:
    return Eni(eni_id=eni_id, mac="00:16:3e:00:00:01", vswitch_id="vsw-a",
               zone_id="cn-hangzhou-k", status="Available", primary_ip="10.0.0.1",
               private_ips=("10.0.0.1",))


def create(n: int) -> CreateEni:
    return CreateEni(f"c{n}", "vsw-a", 0, ("sg-1",))


def test_assigns_on_one_eni_burst_two_then_one_every_six_seconds() -> None:
    lim = EniOpLimiter()
    waits = [lim.reserve(AssignIps(f"a{i}", "eni-1", 1), 0.0) for i in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 6.0, 12.0])
    assert lim.reserve(AssignIps("b", "eni-2", 1), 0.0) == 0.0       # another ENI: its own
    assert lim.reserve(AssignIps("a5", "eni-1", 1), 60.0) == 0.0     # refilled by then


def test_unassign_and_delete_are_not_limited() -> None:
    lim = EniOpLimiter()
    for i in range(5):
        assert lim.reserve(UnassignIps(f"u{i}", "eni-1", ("10.0.0.2",)), 0.0) == 0.0
        assert lim.reserve(DeleteEni(f"d{i}", "eni-1"), 0.0) == 0.0


def test_create_and_release_share_the_slot_which_the_next_eni_inherits() -> None:
    lim = EniOpLimiter()
    assert lim.reserve(create(1), 0.0) == 0.0
    lim.settle(create(1), eni("eni-1"))
    assert lim.reserve(DetachEni("x1", "eni-1", "i-1"), 1.0) == 0.0   # burst 2: create + detach
    lim.settle(DeleteEni("y1", "eni-1"), None)                         # the slot is free again
    assert lim.reserve(create(2), 1.0) == pytest.approx(5.0)           # same slot: 6 s apart
    lim.settle(create(2), eni("eni-2"))
    assert lim.reserve(AssignIps("a", "eni-2", 1), 1.0) == 0.0          # assigns: own bucket
    assert lim.reserve(create(3), 1.0) == 0.0                           # no free slot: a new one


def test_a_failed_creation_gives_its_slot_back() -> None:
    lim = EniOpLimiter()
    lim.reserve(create(1), 0.0)
    lim.settle(create(1), CloudError("InvalidVSwitchId.IpNotEnough", "no"))
    lim.reserve(create(2), 0.0)                      # the same slot: its second token
    lim.settle(create(2), CloudError("InvalidVSwitchId.IpNotEnough", "no"))
    assert lim.reserve(create(3), 0.0) == pytest.approx(6.0)


def test_an_eni_found_at_start_gets_a_fresh_slot() -> None:
    lim = EniOpLimiter()
    assert lim.reserve(DetachEni("x", "eni-old", "i-1"), 0.0) == 0.0
    assert lim.reserve(AssignIps("a", "eni-old", 1), 0.0) == 0.0
    lim.settle(DeleteEni("d", "eni-old"), CloudError("ServiceUnavailable", "later"))
    assert lim.reserve(create(1), 0.0) == 0.0        # the delete failed: its slot stays bound
