"""Builders shared by the core's tests."""

from __future__ import annotations

import random
from typing import Any

from terway.ipam import IpamCore, IpamSettings, IpReady, Notice, run_sync
from tests.ipam.fakecloud import FakeCloud


def settings(**over: Any) -> IpamSettings:
    base: dict[str, Any] = {
        "instance_id": "i-node1",
        "zone_id": "cn-hangzhou-k",
        "vswitch_ids": ("vsw-a",),
        "security_group_ids": ("sg-1",),
        "max_enis": 2,
        "ips_per_eni": 10,
        "batch_window": 0.3,
        "sync_jitter": 0.0,   # a fixed sync grid; tests/ipam/test_sync_jitter.py has upstream's
    }
    base.update(over)
    return IpamSettings(**base)


def make(cloud_free: dict[str, int] | None = None, seed: int = 1,
         **over: Any) -> tuple[IpamCore, FakeCloud]:
    cloud = FakeCloud(cloud_free or {"vsw-a": 100})
    return IpamCore(settings(**over), id_prefix="n1", rng=random.Random(seed)), cloud


def settle(core: IpamCore, cloud: FakeCloud, now: float) -> list[Notice]:
    """Run every due command to completion at ``now``; return the notices."""
    run_sync(core, cloud, now)
    return core.drain_notices()


def ready_keys(notices: list[Notice]) -> list[str]:
    return [n.pod_key for n in notices if isinstance(n, IpReady)]
