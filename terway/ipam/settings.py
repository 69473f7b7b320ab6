"""Everything the core needs to know, resolved once from EniConf, capacity and the node."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from terway.config.eniconf import EniConf
from terway.ipam.policies import param_default
from terway.limits import NodeCapacity

CREATOR_TAG = ("creator", "terway")
MAX_IPS_PER_CALL = 10  # AssignPrivateIpAddresses accepts 1..10


@dataclass(frozen=True)
class NodeIdentity:
    """Facts about this node from instance metadata (fallbacks for empty config fields)."""

    instance_id: str
    zone_id: str
    primary_vswitch_id: str = ""
    primary_security_group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class IpamSettings:
    instance_id: str
    zone_id: str
    vswitch_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    max_enis: int
    ips_per_eni: int
    exclusive: bool = False
    tags: Mapping[str, str] = field(default_factory=lambda: dict([CREATOR_TAG]))
    min_enis: int = 0
    max_pool_size: int = 0
    min_pool_size: int = 0
    vswitch_selection: str = "random"   # random | ordered
    eni_selection: str = "most_ips"     # most_ips | least_ips
    batch_window: float = 0.3
    sync_period: float = 120.0
    sync_jitter: float = 1.0        # wait period * (1 + U[0, jitter)): JitterUntil(.., 1.0)
    sticky_ttl: float = 300.0
    exhaustion_block: float = 600.0
    eni_limit_block: float = 60.0   # after EniPerInstanceLimitExceeded (upstream: 1 min)
    vswitch_cache_ttl: float = 600.0
    idle_reclaim_after: float | None = None
    idle_reclaim_interval: float = 600.0
    idle_reclaim_jitter: float = 0.1
    idle_reclaim_batch: int = 5
    max_ips_per_call: int = MAX_IPS_PER_CALL
    retry_base: float = 1.0
    retry_cap: float = 60.0
    pool_policy: str = "terway"
    pool_policy_params: Mapping[str, int] = field(default_factory=dict)
    resource_group_id: str = ""     # of created ENIs ("": the account's default group)

    @property
    def units_per_eni(self) -> int:
        """Pool units one ENI holds: its IPs (shared) or itself (exclusive)."""
        return 1 if self.exclusive else self.ips_per_eni

    @property
    def capacity(self) -> int:
        return self.max_enis * self.units_per_eni

    @classmethod
    def from_config(cls, conf: EniConf, cap: NodeCapacity, node: NodeIdentity) -> IpamSettings:
        vswitches = conf.vswitches_for_zone(node.zone_id) or (
            (node.primary_vswitch_id,) if node.primary_vswitch_id else ()
        )
        return cls(
            instance_id=node.instance_id,
            zone_id=node.zone_id,
            vswitch_ids=vswitches,
            security_group_ids=conf.all_security_groups or node.primary_security_group_ids,
            max_enis=cap.max_enis,
            ips_per_eni=cap.ips_per_eni,
            exclusive=conf.exclusive,
            tags={**conf.eni_tags, CREATOR_TAG[0]: CREATOR_TAG[1]},
            min_enis=cap.min_enis,
            max_pool_size=cap.max_pool_size,
            min_pool_size=cap.min_pool_size,
            vswitch_selection=conf.vswitch_selection_policy,
            eni_selection=conf.eni_selection_policy,
            batch_window=conf.ip_batch_window or 0.0,
            sync_period=_sync_period(conf),
            sync_jitter=conf.ip_pool_sync_jitter_factor,
            sticky_ttl=conf.ip_sticky_ttl or 0.0,
            exhaustion_block=conf.exhaustion_block or 0.0,
            eni_limit_block=conf.eni_limit_block or 0.0,
            vswitch_cache_ttl=conf.vswitch_cache_ttl or 0.0,
            idle_reclaim_after=conf.idle_ip_reclaim_after,
            idle_reclaim_interval=conf.idle_ip_reclaim_interval or 600.0,
            idle_reclaim_jitter=conf.idle_ip_reclaim_jitter_factor,
            idle_reclaim_batch=conf.idle_ip_reclaim_batch_size,
            pool_policy=conf.pool_policy,
            pool_policy_params=dict(conf.pool_policy_params),
            resource_group_id=conf.resource_group_id,
        )


def _sync_period(conf: EniConf) -> float:
    """``pool_policy: adaptive`` reviews its pool every ``review_seconds`` (default 10 s), in
    place of ``ip_pool_sync_period``: its lead-time model needs short reviews; a review that
    plans nothing makes no call."""
    if conf.pool_policy == "adaptive":
        default = param_default("adaptive", "review_seconds") or 10
        return float(conf.pool_policy_params.get("review_seconds", default)) or float(default)
    return conf.ip_pool_sync_period
