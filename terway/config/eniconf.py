"""``eni_conf``: the daemon's configuration, every upstream field plus ours, checked in one pass."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from terway.cloud.retry import OVERRIDE_APIS, Backoff
from terway.config.errors import ConfigError
from terway.config.reader import FieldReader
from terway.config.secret import Secret
from terway.durations import parse_duration

MAX_SECURITY_GROUPS = 10
SHARED_MODE = "ENIMultiIP"
EXCLUSIVE_MODE = "ENIOnly"


@dataclass(frozen=True)
class EniConf:
    """Parsed ``eni_conf``. Pool sizes are as written; ``terway.limits`` caps them by capacity."""

    version: str = ""
    access_key: str = ""
    access_secret: Secret = field(default_factory=lambda: Secret(""))
    credential_path: str = ""
    vswitches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    security_group: str = ""
    security_groups: tuple[str, ...] = ()
    eni_tags: Mapping[str, str] = field(default_factory=dict)
    eni_tag_filter: Mapping[str, str] = field(default_factory=dict)
    eni_tag_block_list: tuple[tuple[str, str], ...] = ()
    custom_stateful_workload_kinds: tuple[str, ...] = ()
    kube_client_qps: float = 0.0     # 0: client-go's default (5), as upstream's daemon
    kube_client_burst: int = 0       # 0: client-go's default (10)
    resource_group_id: str = ""      # "": the account's default resource group
    enable_patch_pod_ips: bool = True   # annotate pods with k8s.aliyun.com/pod-ips after ADD
    disable_device_plugin: bool = False  # ENIOnly: no aliyun/eni device plugin
    service_cidr: str = ""
    max_pool_size: int = 0
    min_pool_size: int = 0
    min_eni: int = 0
    max_eni: int = 0
    eni_cap_ratio: float = 1.0
    eni_cap_shift: int = 0
    vswitch_selection_policy: str = "random"
    eni_selection_policy: str = "most_ips"
    ip_stack: str = "ipv4"
    idle_ip_reclaim_after: float | None = None
    idle_ip_reclaim_interval: float | None = None   # None: upstream's 10 minutes
    idle_ip_reclaim_jitter_factor: float = 0.1
    idle_ip_reclaim_batch_size: int = 5
    rate_limit: Mapping[str, int] = field(default_factory=dict)
    backoff_override: Mapping[str, Backoff] = field(default_factory=dict)
    ipam_type: str = ""
    ip_pool_sync_period: float = 120.0
    # ours (documented in docs/config.md)
    daemon_mode: str = SHARED_MODE
    ip_batch_window: float = 0.3
    ip_sticky_ttl: float = 300.0
    exhaustion_block: float = 600.0
    eni_limit_block: float = 60.0
    vswitch_cache_ttl: float = 600.0
    pool_policy: str = "terway"
    pool_policy_params: Mapping[str, int] = field(default_factory=dict)
    ip_pool_sync_jitter_factor: float = 1.0   # upstream's wait.JitterUntil(period, 1.0)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def all_security_groups(self) -> tuple[str, ...]:
        """``security_groups`` then ``security_group``, without duplicates."""
        extra = (self.security_group,) if self.security_group else ()
        return tuple(dict.fromkeys(self.security_groups + extra))

    @property
    def exclusive(self) -> bool:
        return self.daemon_mode == EXCLUSIVE_MODE

    def vswitches_for_zone(self, zone_id: str) -> tuple[str, ...]:
        """Upstream uses only the node's zone; empty means "the instance's own vSwitch"."""
        return tuple(self.vswitches.get(zone_id, ()))


def parse_eni_conf(source: str | bytes | Mapping[str, Any], prefix: str = "eni_conf") -> EniConf:
    """Parse and validate ``eni_conf`` (JSON text or an already decoded object).

    Raises ``ConfigError`` listing every problem; unknown keys become ``EniConf.warnings``.
    """
    data = _decode(source, prefix)
    r = FieldReader(data, prefix)
    values = _read_upstream(r) | _read_ours(r)
    r.seen.update(UNAVAILABLE_FEATURES)
    _check_upstream_only(r)
    warnings = list(_check_cross_field(r, values))
    if r.errors:
        raise ConfigError(r.errors)
    warnings = r.unknown(r.seen) + r.warnings + warnings
    return EniConf(**values, warnings=tuple(warnings))


def _decode(source: str | bytes | Mapping[str, Any], prefix: str) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    try:
        data = json.loads(source)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{prefix}: not valid JSON ({exc})"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{prefix}: must be a JSON object, got {type(data).__name__}"])
    return data


def _read_upstream(r: FieldReader) -> dict[str, Any]:
    return {
        "version": r.string("version"),
        "access_key": r.string("access_key"),
        "access_secret": Secret(r.secret("access_secret")),
        "credential_path": r.string("credential_path"),
        "vswitches": r.zone_map("vswitches"),
        "security_group": r.string("security_group"),
        "security_groups": r.str_list("security_groups", MAX_SECURITY_GROUPS),
        "eni_tags": r.str_map("eni_tags"),
        "eni_tag_filter": r.str_map("eni_tag_filter"),
        "eni_tag_block_list": _read_block_list(r),
        "custom_stateful_workload_kinds": r.str_list("custom_stateful_workload_kinds"),
        "kube_client_qps": r.number("kube_client_qps", 0.0),
        "kube_client_burst": r.integer("kube_client_burst", 0),
        "resource_group_id": _resource_group(r),
        "enable_patch_pod_ips": _boolean(r, "enable_patch_pod_ips", True),
        "disable_device_plugin": _boolean(r, "disable_device_plugin", False),
        "service_cidr": ",".join(r.cidr_list("service_cidr")),
        "max_pool_size": r.integer("max_pool_size", 0),
        "min_pool_size": r.integer("min_pool_size", 0),
        "min_eni": r.integer("min_eni", 0),
        "max_eni": r.integer("max_eni", 0),
        "eni_cap_ratio": r.number("eni_cap_ratio", 1.0),
        "eni_cap_shift": r.integer("eni_cap_shift", 0, minimum=None),
        "vswitch_selection_policy": _vswitch_policy(r),
        "eni_selection_policy": r.choice(
            "eni_selection_policy", "most_ips", ("most_ips", "least_ips")
        ),
        "ip_stack": r.choice("ip_stack", "ipv4", ("ipv4", "dual", "ipv6")),
        "idle_ip_reclaim_after": r.duration("idle_ip_reclaim_after", None),
        "idle_ip_reclaim_interval": r.duration("idle_ip_reclaim_interval", None),
        "idle_ip_reclaim_jitter_factor": _jitter_factor(r),
        "idle_ip_reclaim_batch_size": r.integer("idle_ip_reclaim_batch_size", 5, minimum=1),
        "rate_limit": r.int_map("rate_limit", minimum=1),
        "backoff_override": _read_backoffs(r),
        "ipam_type": r.choice("ipam_type", "", ("", "default", "crd")),
        "ip_pool_sync_period": r.duration("ip_pool_sync_period", 120.0) or 120.0,
    }


def _read_ours(r: FieldReader) -> dict[str, Any]:
    return {
        "daemon_mode": r.choice("daemon_mode", SHARED_MODE, (SHARED_MODE, EXCLUSIVE_MODE)),
        "ip_batch_window": r.duration("ip_batch_window", 0.3),
        "ip_sticky_ttl": r.duration("ip_sticky_ttl", 300.0),
        "exhaustion_block": r.duration("exhaustion_block", 600.0),
        "eni_limit_block": r.duration("eni_limit_block", 60.0),
        "vswitch_cache_ttl": r.duration("vswitch_cache_ttl", 600.0),
        **_read_pool_policy(r),
        "ip_pool_sync_jitter_factor": r.number("ip_pool_sync_jitter_factor", 1.0),
    }


def _read_pool_policy(r: FieldReader) -> dict[str, Any]:
    """``pool_policy`` and its ``pool_policy_params``, checked against the policy registry."""
    # imported here: terway.ipam reads EniConf, so importing it at the top would be a cycle
    from terway.ipam.policies import DEFAULT, param_problems, unknown_policy
    policy = r.string("pool_policy", DEFAULT)
    why = unknown_policy(policy)
    if why:
        r.fail("pool_policy", why)
        policy = DEFAULT
    params = r.int_map("pool_policy_params")
    for name, problem in param_problems(policy, params):
        r.fail(f"pool_policy_params.{name}", problem)
    return {"pool_policy": policy, "pool_policy_params": params}


def _jitter_factor(r: FieldReader) -> float:
    """Upstream reads it as a string ("0.1", strconv.ParseFloat); a number is fine too."""
    value = r.data.get("idle_ip_reclaim_jitter_factor")
    r.seen.add("idle_ip_reclaim_jitter_factor")
    if value is None:
        return 0.1
    try:
        factor = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        factor = -1.0
    if not 0 <= factor <= 10:
        r.fail("idle_ip_reclaim_jitter_factor", f"must be a number 0..10, got {value!r}")
        return 0.1
    return factor


RESOURCE_GROUP_ID = re.compile(r"rg-[A-Za-z0-9]{1,64}")


def _resource_group(r: FieldReader) -> str:
    """Upstream passes it unchecked as CreateNetworkInterface's ResourceGroupId; a value that
    cannot be a resource group id would fail every ENI creation, so it is refused at start."""
    value = r.string("resource_group_id")
    if value and not RESOURCE_GROUP_ID.fullmatch(value):
        r.fail("resource_group_id", f"must be a resource group id (rg- then letters and "
               f"digits), got {value[:80]!r}")
        return ""
    return value


def _boolean(r: FieldReader, key: str, default: bool) -> bool:
    """A JSON boolean (upstream's ``*bool``); the strings "true"/"false" are accepted too."""
    value = r.data.get(key)
    r.seen.add(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    r.fail(key, f"must be true or false, got {value!r}")
    return default


def _vswitch_policy(r: FieldReader) -> str:
    """Upstream's per-node daemon knows ``ordered`` (most free addresses first) and treats any
    other string as random; its controller also has ``most``, which means ordered's order."""
    value = r.data.get("vswitch_selection_policy")
    r.seen.add("vswitch_selection_policy")
    if value is None or value in ("random", "ordered"):
        return str(value or "random")
    if value == "most":
        return "ordered"
    if not isinstance(value, str):
        r.fail("vswitch_selection_policy", f"must be a string, got {value!r}")
        return "random"
    r.warn("vswitch_selection_policy",
           f"{value[:40]!r} is not ordered, most or random: random, as upstream Terway does")
    return "random"


def _read_block_list(r: FieldReader) -> tuple[tuple[str, str], ...]:
    """Upstream's ``[{"key": k, "value": v}, …]``: ENIs with any such tag are not ours."""
    raw = r.data.get("eni_tag_block_list")
    r.seen.add("eni_tag_block_list")
    if raw in (None, ""):
        return ()
    items = raw if isinstance(raw, list) else None
    pairs = [(i.get("key"), i.get("value")) for i in items or () if isinstance(i, dict)]
    if items is None or len(pairs) != len(items) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in pairs):
        r.fail("eni_tag_block_list", "must be a list of {\"key\": string, \"value\": string}")
        return ()
    return tuple((str(k), str(v)) for k, v in pairs)


_BACKOFF_FIELDS = {"duration": "initial", "initial": "initial", "factor": "factor",
                   "jitter": "jitter", "steps": "steps", "cap": "cap", "initialdelay": "delay"}


def _read_backoffs(r: FieldReader) -> dict[str, Backoff]:
    """Upstream's form ``{"eni_ip_ops": {"Duration": 1000000000, "Factor": 1.5, "Steps": 4}}``
    (Go's field names in any case, as Go's JSON reads them; durations in nanoseconds or as
    "1s") and ours (``initial`` in seconds)."""
    raw = r.data.get("backoff_override")
    r.seen.add("backoff_override")
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        r.fail("backoff_override", f"must be an object of name to backoff, got {raw!r}")
        return {}
    out: dict[str, Backoff] = {}
    for name, spec in raw.items():
        where = f"backoff_override.{name}"
        if not isinstance(spec, dict):
            r.fail(where, f"must be an object, got {spec!r}")
            continue
        if name not in OVERRIDE_APIS and not name[:1].isupper():
            r.warn(where, "not used by terway-py (it retries " + ", ".join(
                repr(k) for k in OVERRIDE_APIS) + " or an API name)")
        backoff = _read_backoff(r, where, spec)
        if backoff is not None:
            out[name] = backoff
    return out


def _read_backoff(r: FieldReader, where: str, spec: Mapping[str, Any]) -> Backoff | None:
    values: dict[str, float] = {}
    for key, value in spec.items():
        field_name = _BACKOFF_FIELDS.get(str(key).lower())
        if field_name is None:
            r.fail(f"{where}.{key}", "unknown field")
            continue
        try:
            values[field_name] = _backoff_number(field_name, key, value)
        except ValueError as exc:
            r.fail(f"{where}.{key}", str(exc))
    if values.get("delay"):
        r.warn(f"{where}.InitialDelay", "not applied: terway-py makes the first call at once")
    if "initial" not in values:
        r.fail(where, "duration (the first pause) is required")
        return None
    steps = values.get("steps", 1.0)
    if steps != int(steps) or steps < 1:
        r.fail(f"{where}.steps", f"must be an integer >= 1, got {steps!r}")
        return None
    try:
        return Backoff(initial=values["initial"], factor=values.get("factor", 1.0),
                       steps=int(steps), jitter=values.get("jitter", 0.0),
                       cap=values.get("cap") or None)
    except ValueError as exc:
        r.fail(where, str(exc))
        return None


def _backoff_number(field_name: str, key: str, value: Any) -> float:
    """Durations: a Go duration string, Go's nanoseconds (upstream's ``Duration``) or seconds
    (our ``initial``); the rest plain numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    if field_name in ("initial", "cap", "delay"):
        if isinstance(value, str):
            return parse_duration(value)
        if key != "initial" and isinstance(value, int):
            return value / 1e9
        return parse_duration(value)
    if isinstance(value, str):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


# Upstream switches for features terway-py does not have: accepted when off, refused when on
# (a node that silently ran without them would not be what its operator configured).
UNAVAILABLE_FEATURES = {
    "enable_eni_trunking": "ENI trunking (pod ENIs on a trunk ENI)",
    "enable_erdma": "ERDMA (RDMA-capable ENIs)",
    "enable_ip_prefix": "IP prefix delegation",
}


# Upstream keys its per-node daemon reads but does not use (so neither do we, silently).
# ip_warm_up_size: only centralized IPAM (ipam_type crd) copies it into the Node CR, for
# terway-controlplane; upstream's per-node pool never reads it.
UPSTREAM_UNUSED = ("region_id", "prefix", "extra_routes", "ip_warm_up_size")
PREFIX_COUNTS = ("ipv4_prefix_count", "ipv6_prefix_count")  # only with enable_ip_prefix


def _check_upstream_only(r: FieldReader) -> None:
    """The keys above: accepted as upstream has them, refused where they would ask for more."""
    r.seen.update(UPSTREAM_UNUSED)
    r.integer("ip_warm_up_size", 0, minimum=None)   # upstream's *int: its decoder refuses text
    for key in PREFIX_COUNTS:
        r.seen.add(key)
        if r.data.get(key) not in (None, 0, "", "0"):
            r.fail(key, f"{r.data.get(key)!r}: IP prefix delegation is not available in "
                   "terway-py yet; remove it")


def _check_cross_field(r: FieldReader, v: dict[str, Any]) -> list[str]:
    """Checks involving several fields; returns warnings, adds errors to ``r``."""
    warnings: list[str] = []
    groups = tuple(dict.fromkeys(v["security_groups"] + ((v["security_group"],) if v[
        "security_group"] else ())))
    if len(groups) > MAX_SECURITY_GROUPS:
        r.fail("security_groups", f"security_group plus security_groups must name at most "
               f"{MAX_SECURITY_GROUPS} groups, got {len(groups)}")
    if v["min_pool_size"] > v["max_pool_size"] and v["max_pool_size"] >= 0:
        warnings.append(f"{r.prefix}.min_pool_size: {v['min_pool_size']} is above max_pool_size "
                        f"{v['max_pool_size']}; capped to it (as upstream)")
    if v["max_eni"] and v["min_eni"] > v["max_eni"]:
        r.fail("min_eni", f"must be <= max_eni ({v['max_eni']}), got {v['min_eni']}")
    if v["ip_stack"] != "ipv4":
        r.fail("ip_stack", f"{v['ip_stack']!r}: IPv6 is not available in terway-py yet (only "
               "ipv4 addresses are allocated); use ipv4")
    if v["ipam_type"] == "crd":
        r.fail("ipam_type", "'crd': centralized IPAM (terway-controlplane) is not available in "
               "terway-py yet; remove it (or use default) for per-node IPAM")
    for key, why in UNAVAILABLE_FEATURES.items():
        if r.data.get(key) not in (None, False, "false", ""):
            r.fail(key, f"{r.data.get(key)!r}: {why} is not available in terway-py yet; "
                   "set it to false or remove it")
    return warnings
