"""Node capacity: how many ENIs and IPs an instance type gives pods, and the effective pool sizes.

Upstream v1.17 (docs/config.md, "Capacity"): MaxENI = EniQuantity * eni_cap_ratio +
eni_cap_shift - 1 (the primary ENI is never used for pods), capped by ``max_eni``; shared-mode
capacity = MaxENI * IPs per ENI, because a secondary ENI's own primary IP is handed to pods too.
The user guide states max pods as (ENIs - 1) * IPs per ENI and (ENIs - 1) for exclusive mode;
with the default ratio 1 and shift 0 both agree. See docs/ipam.md and docs/config.md for where
they differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from terway.cloud.api import InstanceTypeLimits
from terway.config.eniconf import EniConf


@dataclass(frozen=True)
class NodeCapacity:
    instance_type: str
    eni_quantity: int          # EniQuantity, primary included
    ips_per_eni: int           # private IPv4 per ENI, primary IP included
    max_enis: int              # secondary ENIs the pool may hold (upstream MaxENI)
    capacity: int              # IPs the pool may hold: shared -> max_enis * ips_per_eni,
                               # exclusive -> max_enis (one ENI per pod)
    max_pods_shared: int       # the guide's (EniQuantity - 1) * ips_per_eni
    max_pods_exclusive: int    # the guide's EniQuantity - 1, capped like max_enis
    max_pool_size: int         # effective: capped at capacity
    min_pool_size: int         # effective: capped at max_pool_size
    min_enis: int              # effective min_eni, capped at max_enis


def max_enis(limits: InstanceTypeLimits, conf: EniConf) -> int:
    """EniQuantity * eni_cap_ratio + eni_cap_shift - 1, capped by ``max_eni`` (0 = no cap), >= 0."""
    n = math.floor(limits.eni_quantity * conf.eni_cap_ratio) + conf.eni_cap_shift - 1
    if conf.max_eni > 0:
        n = min(n, conf.max_eni)
    return max(0, n)


def compute_capacity(limits: InstanceTypeLimits, conf: EniConf) -> NodeCapacity:
    """Capacity and the effective pool sizes for this instance type under this config."""
    enis = max_enis(limits, conf)
    capacity = enis if conf.exclusive else enis * limits.ips_per_eni
    max_pool = min(conf.max_pool_size, capacity)
    # upstream: min_eni > 0 sets the pool's floor to that many ENIs' worth of addresses
    floor = conf.min_eni * (1 if conf.exclusive else limits.ips_per_eni) if conf.min_eni > 0 \
        else conf.min_pool_size
    min_pool = min(floor, max_pool)
    exclusive_pods = max(0, limits.eni_quantity - 1)
    if conf.max_eni > 0:
        exclusive_pods = min(exclusive_pods, conf.max_eni)
    return NodeCapacity(
        instance_type=limits.instance_type,
        eni_quantity=limits.eni_quantity,
        ips_per_eni=limits.ips_per_eni,
        max_enis=enis,
        capacity=capacity,
        max_pods_shared=max(0, limits.eni_quantity - 1) * limits.ips_per_eni,
        max_pods_exclusive=exclusive_pods,
        max_pool_size=max_pool,
        min_pool_size=min_pool,
        min_enis=min(conf.min_eni, enis),
    )
