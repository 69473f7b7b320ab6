"""The pool policies ``eni_conf`` can name (``pool_policy``): one table of each policy's class
and parameters (``pool_policy_params``), with defaults and what each means.

Why one table: eni_conf parsing, the core (``make_policy``), the simulator's peers and the docs
all read it, so a policy or a parameter is added here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from terway.config.errors import did_you_mean
from terway.ipam.adaptive import make_adaptive
from terway.ipam.policy import AwsWarmPolicy, CiliumPolicy, PoolPolicy, TerwayPolicy

if TYPE_CHECKING:
    from terway.ipam.settings import IpamSettings

DEFAULT = "terway"


@dataclass(frozen=True)
class Param:
    """One integer in ``pool_policy_params``; ``default`` None: the top-level key of that name."""

    name: str
    default: int | None
    doc: str


@dataclass(frozen=True)
class PolicyInfo:
    """A policy: how to build it from the settings and its parameters (defaults filled in)."""

    name: str
    doc: str
    build: Callable[[IpamSettings, Mapping[str, int]], PoolPolicy]
    params: tuple[Param, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def with_defaults(self, given: Mapping[str, int]) -> dict[str, int]:
        """``given`` over the defaults; parameters defaulting to a top-level key are left out."""
        out = {p.name: p.default for p in self.params if p.default is not None}
        return {**out, **given}


def _terway(settings: IpamSettings, params: Mapping[str, int]) -> PoolPolicy:
    return TerwayPolicy(settings.min_pool_size, settings.max_pool_size)


def _aws(settings: IpamSettings, params: Mapping[str, int]) -> PoolPolicy:
    return AwsWarmPolicy(**params)


def _cilium(settings: IpamSettings, params: Mapping[str, int]) -> PoolPolicy:
    return CiliumPolicy(**params)


POLICIES: Mapping[str, PolicyInfo] = {
    "terway": PolicyInfo(
        "terway", "upstream's watermarks: top up to min_pool_size idle, release above "
        "max_pool_size (the top-level keys)", _terway),
    "adaptive": PolicyInfo("adaptive", "ours: learns the node's demand (docs/ipam.md)",
                           make_adaptive, (
        Param("min_pool_size", None, "overrides the top-level key; 0 = unset"),
        Param("max_pool_size", None, "overrides the top-level key; 0 = unset"),
        Param("review_seconds", 5, "pool review period; replaces ip_pool_sync_period"),
        Param("horizon_seconds", 900, "how long learned rates remember"),
        Param("hold_seconds", 300, "how long an excess above the band stays before release"),
        Param("release_interval_seconds", 60, "at most one release per this many seconds"),
        Param("pressure_free", 32, "free addresses on the node's vSwitches below which it "
                                   "pre-warms nothing and yields idle addresses"),
        Param("pressure_share", 16, "keep warm at most 1/this of the free addresses on the "
                                   "node's vSwitches (a small vSwitch is shared)"),
        Param("lead_prior_ms", 3000, "assumed top-up lead time before one is measured"),
        Param("burst_memory_seconds", 1800, "how long a burst without a period is kept warm "
                                            "(fading)"),
        Param("prewarm_seconds", 600, "a recurring burst's size is kept warm from this long "
                                      "before it is due (the addresses its pods gave back "
                                      "stay when the next one is that close)"),
        Param("cold_start", 20, "addresses added at a node's first request, at once"),
        Param("band_min", 6, "least hysteresis band above the target before releasing"),
        Param("eni_memory_seconds", 3600, "an ENI is given back only if the peak in use over "
                                          "this long fits in one ENI fewer"),
        Param("recheck_seconds", 20, "while every vSwitch of the node is dry (IpNotEnough, or "
                                     "a count of 0) it is described again after this many "
                                     "seconds, doubling per describe that still finds it dry, "
                                     "at most vswitch_cache_ttl, so addresses other nodes gave "
                                     "back are used; 0 = at vswitch_cache_ttl"),
    )),
    "aws": PolicyInfo("aws", "AWS VPC CNI's warm targets", _aws, (
        Param("warm_ip_target", 0, "WARM_IP_TARGET: free addresses kept warm"),
        Param("minimum_ip_target", 0, "MINIMUM_IP_TARGET: addresses held at least"),
        Param("warm_eni_target", 1, "WARM_ENI_TARGET: whole free ENIs, when no IP target"),
        Param("ip_cooldown_period", 30, "IP_COOLDOWN_PERIOD: seconds an address freed by a pod "
                                        "is not handed to another pod (it stays on the ENI)"),
    )),
    "cilium": PolicyInfo("cilium", "Cilium ENI IPAM's pre-allocation and watermark", _cilium, (
        Param("pre_allocate", 8, "free addresses kept"),
        Param("min_allocate", 0, "addresses held at least"),
        Param("max_allocate", 0, "addresses held at most; 0 = no cap"),
        Param("max_above_watermark", 0, "extra free addresses tolerated before releasing"),
        Param("excess_ip_release_delay", 180, "excess-ip-release-delay: seconds an address "
                                              "must stay excess before it is released"),
    )),
}


def make_policy(settings: IpamSettings) -> PoolPolicy:
    """The policy named in the settings (``pool_policy`` + ``pool_policy_params``)."""
    info = POLICIES.get(settings.pool_policy, POLICIES[DEFAULT])
    return info.build(settings, info.with_defaults(settings.pool_policy_params))


def param_default(policy: str, name: str) -> int | None:
    """The default of one parameter (None: unknown, or it follows the top-level key)."""
    for p in POLICIES[policy].params:
        if p.name == name:
            return p.default
    return None


def unknown_policy(name: object) -> str | None:
    """Why ``name`` is not a policy (with a suggestion), or None when it is one."""
    if name in POLICIES:
        return None
    return f"must be one of {', '.join(POLICIES)}, got {name!r}{did_you_mean(name, POLICIES)}"


def param_problems(policy: str, params: Mapping[str, object]) -> list[tuple[str, str]]:
    """(parameter, why) for every name ``policy`` does not have and every value not an
    integer >= 0; empty when all are sound."""
    allowed = POLICIES[policy].param_names
    out: list[tuple[str, str]] = []
    for name, value in params.items():
        if name not in allowed:
            out.append((name, f"not a parameter of pool_policy {policy!r}"
                              f"{did_you_mean(name, allowed)} (allowed: "
                              f"{', '.join(allowed) or 'none'})"))
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            out.append((name, f"must be an integer >= 0, got {value!r}"))
    return out


