"""From eni_conf and the node to IpamSettings: fallbacks and the creator tag."""

from __future__ import annotations

from terway.cloud.api import InstanceTypeLimits
from terway.config import parse_eni_conf
from terway.ipam import IpamSettings, NodeIdentity, TerwayPolicy, make_policy
from terway.limits import compute_capacity

NODE = NodeIdentity("i-1", "cn-hangzhou-k", "vsw-node", ("sg-node",))
LIMITS = InstanceTypeLimits("ecs.g6.xlarge", 3, 10)


def test_from_config_uses_zone_vswitches_and_config_groups() -> None:
    conf = parse_eni_conf({"vswitches": {"cn-hangzhou-k": ["vsw-1"], "other": ["vsw-9"]},
                           "security_group": "sg-1", "eni_tags": {"team": "a"},
                           "min_pool_size": 2, "max_pool_size": 5})
    s = IpamSettings.from_config(conf, compute_capacity(LIMITS, conf), NODE)
    assert s.vswitch_ids == ("vsw-1",)
    assert s.security_group_ids == ("sg-1",)
    assert s.tags == {"team": "a", "creator": "terway"}
    assert (s.max_enis, s.ips_per_eni, s.capacity) == (2, 10, 20)
    assert make_policy(s) == TerwayPolicy(2, 5)


def test_from_config_falls_back_to_the_node() -> None:
    conf = parse_eni_conf({})
    s = IpamSettings.from_config(conf, compute_capacity(LIMITS, conf), NODE)
    assert s.vswitch_ids == ("vsw-node",)
    assert s.security_group_ids == ("sg-node",)


def test_policy_selection_from_config() -> None:
    conf = parse_eni_conf({"pool_policy": "cilium", "pool_policy_params": {"pre_allocate": 4}})
    s = IpamSettings.from_config(conf, compute_capacity(LIMITS, conf), NODE)
    assert type(make_policy(s)).__name__ == "CiliumPolicy"


def test_min_eni_sets_the_pool_floor_as_upstream() -> None:
    """Issue 10: min_eni only floored releases; upstream makes min_pool_size = min_eni * IPs
    per ENI (capped at max_pool_size)."""
    per_eni = LIMITS.ips_per_eni
    cap = compute_capacity(LIMITS, parse_eni_conf({"max_pool_size": 100, "min_pool_size": 1,
                                                   "min_eni": 2}))
    assert cap.min_pool_size == min(2 * per_eni, cap.max_pool_size) and cap.min_enis == 2
    capped = compute_capacity(LIMITS, parse_eni_conf({"max_pool_size": 3, "min_eni": 2}))
    assert capped.min_pool_size == 3
    plain = compute_capacity(LIMITS, parse_eni_conf({"max_pool_size": 5, "min_pool_size": 2}))
    assert plain.min_pool_size == 2
