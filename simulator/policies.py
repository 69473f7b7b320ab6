"""Pool policies the simulator can run, each as the core plus settings — never a copy of the core.

A policy spec becomes (1) an ``eni_conf`` merge patch the plugin's own config parser accepts
(``pool_policy``, ``pool_policy_params``, ``ip_pool_sync_period``, ``ip_batch_window``,
``exhaustion_block``) and (2) driver options the daemon also has (the per-ENI client limiter).
Peers (docs/simulator.md, "Peers side by side"):

- ``terway``: our default — the core with whatever ``eni_conf`` the scenario gives, and the
  daemon's per-ENI limiters (upstream's 10/min burst 2, ``terway.ipam.enilimit``).
- ``upstream``: upstream Terway v1.17 pinned: 300 ms batching, 120 s pool sync jittered up to
  twice that, 10 min exhaustion block, per-ENI limiters 10/min burst 2.
- ``aws``: AWS VPC CNI warm targets (WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET) and
  the freed-IP cooldown (IP_COOLDOWN_PERIOD, 30 s) through the core's ``AwsWarmPolicy``; 5 s
  reconcile, exhaustion pauses growth 120 s. Neither this nor ``cilium`` has Terway's per-ENI
  limiters or sync jitter.
- ``cilium``: Cilium ENI IPAM (pre-allocate, min-allocate, max-allocate, max-above-watermark,
  excess-ip-release-delay 180 s) through ``CiliumPolicy``; vSwitch with most free addresses
  (``ordered``), 15 s resync (Cilium's operator resync; releases wait for the next one).
- ``growonly`` (formerly ``noop``, still accepted with a warning): never tops up, never
  releases: addresses are fetched for pending pods and kept for ever (not "no pool": its pool
  is everything it ever needed at once).
- ``ondemand``: a true on-demand peer — assigns per pod (after the batch window) and gives every
  idle address back at the next 1 s sync after the delete (``TerwayPolicy(0, 0)``, no jitter, no
  per-ENI limiters); empty ENIs are released whole.
- ``adaptive``: ours (``terway/ipam/adaptive.py``), with the daemon's per-ENI limiters.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simulator.units import SpecError
from terway.config.eniconf import EniConf
from terway.config.errors import did_you_mean
from terway.ipam.enilimit import BURST, PER_MINUTE
from terway.ipam.policies import POLICIES, param_default, param_problems

# Peers that are presets of the core rather than a ``pool_policy``: the eni_conf keys they take.
PRESETS: Mapping[str, tuple[str, ...]] = {
    "terway": ("min_pool_size", "max_pool_size", "ip_pool_sync_period", "ip_batch_window",
               "exhaustion_block", "vswitch_selection_policy", "eni_selection_policy"),
    "upstream": ("min_pool_size", "max_pool_size"),
    "growonly": (),
    "ondemand": (),
}
# old kind names still accepted (a FutureWarning at validation): old name -> kind
ALIASES: Mapping[str, str] = {"noop": "growonly"}
# every kind of peer: the presets, the registry's other policies (terway.ipam.policies), aliases
KINDS: tuple[str, ...] = (*PRESETS, *(k for k in POLICIES if k not in PRESETS), *ALIASES)
UPSTREAM_ENI_LIMIT = (PER_MINUTE, BURST)
_SIZES = ("min_pool_size", "max_pool_size")


@dataclass(frozen=True)
class PolicyRuntime:
    """What a node needs to run one policy: the conf patch and driver-level options."""

    conf_patch: Mapping[str, Any]
    per_eni_limit: tuple[float, int] | None = None   # (per minute, burst): EniOpLimiter
    noop: bool = False
    fail_fast: bool = True     # answer an unservable pod at once (False: hold the CNI call)
    notes: tuple[str, ...] = field(default=())


def policy_problems(kind: str, params: Mapping[str, Any], fld: str) -> list[tuple[str, str]]:
    """(path, why) for every parameter a peer of ``kind`` does not take or cannot use; a
    registry policy's are judged by the registry (``terway.ipam.policies``). An old kind name
    is judged as its new one, with a FutureWarning (shown by default) naming the new one."""
    kind = canonical_kind(kind, warn_at=fld)
    if kind not in PRESETS:
        return [(f"{fld}.{name}", why.replace("pool_policy", "policy"))
                for name, why in param_problems(kind, params)]
    allowed = PRESETS[kind]
    out = []
    for key, value in params.items():
        if key not in allowed:
            out.append((f"{fld}.{key}", f"not a parameter of policy {kind!r}"
                                        f"{did_you_mean(key, allowed)} "
                                        f"(allowed: {', '.join(allowed) or 'none'})"))
        elif key in _SIZES and (isinstance(value, bool) or not isinstance(value, int)
                                or value < 0):
            out.append((f"{fld}.{key}", f"expected an integer >= 0, got {value!r}"))
    return out


def canonical_kind(kind: str, warn_at: str | None = None) -> str:
    """The kind an old name stands for (``ALIASES``); with ``warn_at``, say it is deprecated."""
    new = ALIASES.get(kind)
    if new is None:
        return kind
    if warn_at is not None:
        warnings.warn(f"{warn_at}.kind: {kind!r} is deprecated, use {new!r}", FutureWarning,
                      stacklevel=3)
    return new


def runtime_for(kind: str, params: Mapping[str, Any]) -> PolicyRuntime:
    """Translate a policy spec into the conf patch and driver options."""
    kind = canonical_kind(kind)
    if kind == "terway":
        return PolicyRuntime(dict(params), per_eni_limit=UPSTREAM_ENI_LIMIT)
    if kind == "upstream":
        patch = {"ip_batch_window": "300ms", "ip_pool_sync_period": "120s",
                 "ip_pool_sync_jitter_factor": 1.0, "exhaustion_block": "10m",
                 "vswitch_cache_ttl": "10m", **params}
        return PolicyRuntime(patch, per_eni_limit=UPSTREAM_ENI_LIMIT, fail_fast=False,
                             notes=("holds a pod's CNI call until an address comes or the "
                                    "call times out, as upstream's AllocIP does",))
    if kind == "aws":
        pp = {"warm_eni_target": param_default("aws", "warm_eni_target"), **params}
        if "warm_ip_target" in params or "minimum_ip_target" in params:
            pp.pop("warm_eni_target") if "warm_eni_target" not in params else None
        patch = {"pool_policy": "aws", "pool_policy_params": pp, "ip_pool_sync_period": "5s",
                 "ip_pool_sync_jitter_factor": 0,
                 "exhaustion_block": "120s", "vswitch_selection_policy": "ordered",
                 "ip_batch_window": "0s"}
        return PolicyRuntime(patch, notes=(
            "aws: a freed address cools for ip_cooldown_period before another pod gets it; "
            "cooling addresses count as available to the warm targets (as ipamd counts them) "
            "and may be released; a pod finding only cooling ones waits for one to cool or for "
            "a new one",))
    if kind == "cilium":
        pp = {"pre_allocate": param_default("cilium", "pre_allocate"), **params}
        patch = {"pool_policy": "cilium", "pool_policy_params": pp, "ip_pool_sync_period": "15s",
                 "ip_pool_sync_jitter_factor": 0,
                 "vswitch_selection_policy": "ordered", "ip_batch_window": "0s"}
        return PolicyRuntime(patch, notes=(
            "cilium: releasing excess addresses on (--aws-release-excess-ips; Cilium's default "
            "is off, never releasing); an excess is released at the first 15 s resync after it "
            "stayed excess for excess_ip_release_delay; the agent's release handshake takes no "
            "extra time",))
    if kind == "adaptive":
        pp = dict(params)
        patch = {"pool_policy": "adaptive", "pool_policy_params": pp,
                 "min_pool_size": pp.get("min_pool_size", 0),
                 "max_pool_size": pp.get("max_pool_size", 0)}
        return PolicyRuntime(patch, per_eni_limit=UPSTREAM_ENI_LIMIT)
    if kind == "ondemand":
        return PolicyRuntime({"min_pool_size": 0, "max_pool_size": 0, "ip_pool_sync_period": "1s",
                              "ip_pool_sync_jitter_factor": 0},
                             notes=("ondemand: releases idle addresses at the next 1 s sync",))
    if kind == "growonly":
        return PolicyRuntime({"min_pool_size": 0, "max_pool_size": 0}, noop=True)
    if kind in KINDS:     # any other policy of the registry (terway/ipam/policies.py) as it is
        return PolicyRuntime({"pool_policy": kind, "pool_policy_params": dict(params)},
                             per_eni_limit=UPSTREAM_ENI_LIMIT)
    raise SpecError("policy.kind", f"unknown policy {kind!r}")


def effective_parameters(kind: str, conf: EniConf,
                         runtime: PolicyRuntime) -> dict[str, Any]:
    """What a peer of ``kind`` ran with, defaults included, for the peers table: its pool
    policy's parameters (the registry's ``with_defaults`` over ``pool_policy_params``, or the
    watermarks) and the core settings the peers differ in (from the parsed ``eni_conf``)."""
    kind = canonical_kind(kind)
    out: dict[str, Any] = {}
    if kind == "growonly":
        out["pool_policy"] = "none (grows for waiting pods, never releases)"
    elif conf.pool_policy in POLICIES and POLICIES[conf.pool_policy].params:
        out.update(POLICIES[conf.pool_policy].with_defaults(conf.pool_policy_params))
    if kind != "growonly" and conf.pool_policy in ("terway", "adaptive"):
        sizes = {"min_pool_size": conf.min_pool_size, "max_pool_size": conf.max_pool_size}
        out.update({k: v for k, v in sizes.items() if k not in out})
    out.update({
        "ip_pool_sync_period": _secs(conf.ip_pool_sync_period),
        "ip_pool_sync_jitter_factor": conf.ip_pool_sync_jitter_factor,
        "ip_batch_window": _secs(conf.ip_batch_window),
        "exhaustion_block": _secs(conf.exhaustion_block),
        "vswitch_selection_policy": conf.vswitch_selection_policy,
        "per_eni_limit": (f"{runtime.per_eni_limit[0]:g}/min burst {runtime.per_eni_limit[1]}"
                          if runtime.per_eni_limit else "none"),
    })
    if conf.pool_policy == "adaptive":
        out.pop("ip_pool_sync_period")     # review_seconds replaces it (IpamSettings)
    return out


def _secs(value: float | None) -> str:
    return f"{value or 0:g}s"
