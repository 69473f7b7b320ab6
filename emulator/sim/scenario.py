"""The scenario file: a validated, typed description of one simulation (see docs/scenarios.md).

Validation collects nothing half-way: the first problem raises ``SpecError`` whose message starts
with the dotted field path (``workload[1].lifetime.mean: ...``), and nothing is run.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from emulator.sim.dists import Dist, parse_dist
from emulator.sim.expect import Expectation, parse_expectation
from emulator.sim.units import SpecError, parse_duration, parse_rate

POLICIES = ("terway", "upstream", "aws", "cilium", "noop", "ondemand", "adaptive")
WORKLOAD_KINDS = ("churn", "deployment", "statefulset", "burst")
APPLY_MODES = ("reload", "restart", "none")   # how daemons pick a config change up
EVENT_ACTIONS = ("add_vswitch", "set_config", "restart_daemons", "add_nodes", "remove_nodes",
                 "set_faults", "scale")

# Latencies measured against the real API are in the hundreds of ms; attach is asynchronous.
DEFAULT_LATENCY: Mapping[str, Dist] = {
    "CreateNetworkInterface": Dist("lognormal", -0.6931, 0.35),      # median 0.5 s
    "AttachNetworkInterface": Dist("lognormal", 0.6931, 0.3),        # median 2 s incl. InUse wait
    "AssignPrivateIpAddresses": Dist("lognormal", -1.2040, 0.35),    # median 0.3 s
    "UnassignPrivateIpAddresses": Dist("lognormal", -1.2040, 0.35),
    "DetachNetworkInterface": Dist("lognormal", 0.6931, 0.3),
    "DeleteNetworkInterface": Dist("lognormal", -1.2040, 0.35),
    "DescribeVSwitches": Dist("lognormal", -1.6094, 0.3),            # median 0.2 s
    "DescribeNetworkInterfaces": Dist("lognormal", -1.2040, 0.3),
}


@dataclass(frozen=True)
class VSwitchSpec:
    vswitch_id: str
    cidr: str
    zone: str

    @property
    def usable(self) -> int:
        """Addresses the cloud hands out: the first and the last three are reserved."""
        return max(0, ipaddress.ip_network(self.cidr).num_addresses - 4)


@dataclass(frozen=True)
class PolicySpec:
    """One pool policy to run: its kind, a display name, and its knobs."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadSpec:
    kind: str
    name: str
    start: float = 0.0
    stop: float | None = None
    rate: float = 0.0                    # churn: pods per second, cluster-wide
    lifetime: Dist | None = None         # churn/burst/statefulset restarts
    replicas: int = 0                    # deployment/statefulset initial; burst: count
    schedule: tuple[tuple[float, int], ...] = ()   # (at, replicas)
    restart_every: Dist | None = None    # statefulset: pod deleted and recreated (same name)


@dataclass(frozen=True)
class EventSpec:
    at: float
    action: str
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KubeletSpec:
    cni_timeout: float = 120.0           # the daemon RPC deadline (upstream 120 s)
    backoff_initial: float = 10.0        # sandbox retry backoff
    backoff_max: float = 300.0
    setup_time: float = 0.05             # datapath set-up after the address is known
    max_pods: int = 0                    # 0 = the instance type's shared-ENI maximum


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    duration: float
    sample_interval: float
    region: str
    zone: str
    vswitches: tuple[VSwitchSpec, ...]
    nodes: int
    instance_type: str
    eni_conf: Mapping[str, Any]
    policy: PolicySpec
    peers: tuple[PolicySpec, ...]
    latency: Mapping[str, Dist]
    fast_latency: bool
    faults: tuple[Mapping[str, Any], ...]
    kubelet: KubeletSpec
    workload: tuple[WorkloadSpec, ...]
    events: tuple[EventSpec, ...]
    expectations: tuple[Expectation, ...]
    invariant_interval: float
    history: int
    attach_delay: tuple[float, float] = (1.0, 3.0)
    detach_delay: tuple[float, float] = (1.0, 3.0)
    node_cidr: str = "10.255.0.0/16"
    source: str = ""
    path: str = ""

    def event_times(self) -> dict[str, float]:
        return {e.name: e.at for e in self.events if e.name}

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with some fields replaced (sweeps, the planner, tests)."""
        from dataclasses import replace
        return replace(self, **changes)


_TOP_KEYS = {"name", "description", "seed", "duration", "sample_interval", "cluster", "eni_conf",
             "policy", "peers", "latency", "faults", "kubelet", "workload", "events",
             "expectations", "invariants"}


def _mapping(value: object, fld: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(fld, f"expected a mapping, got {type(value).__name__}")
    return value


def _seq(value: object, fld: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise SpecError(fld, f"expected a list, got {type(value).__name__}")
    return value


def _only(data: Mapping[str, Any], allowed: set[str], fld: str) -> None:
    for key in data:
        if key not in allowed:
            where = f"{fld}.{key}" if fld else str(key)
            raise SpecError(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _int(value: object, fld: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(fld, f"expected an integer >= {minimum}, got {value!r}")
    return value


def _str(value: object, fld: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(fld, f"expected a non-empty string, got {value!r}")
    return value


def _vswitch(raw: object, fld: str, zone: str) -> VSwitchSpec:
    data = _mapping(raw, fld)
    _only(data, {"id", "cidr", "zone"}, fld)
    vid = _str(data.get("id"), f"{fld}.id")
    cidr = _str(data.get("cidr"), f"{fld}.cidr")
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError as e:
        raise SpecError(f"{fld}.cidr", f"not a CIDR: {e}") from None
    if net.version != 4 or not 16 <= net.prefixlen <= 29:
        raise SpecError(f"{fld}.cidr", f"a vSwitch is an IPv4 /16../29, got {cidr}")
    return VSwitchSpec(vid, str(net), _str(data.get("zone", zone), f"{fld}.zone"))


def parse_policy(raw: object, fld: str) -> PolicySpec:
    """``"aws"`` or ``{kind: aws, name: ..., warm_ip_target: 5}``."""
    if isinstance(raw, str):
        raw = {"kind": raw}
    data = _mapping(raw, fld)
    kind = data.get("kind", "terway")
    if kind not in POLICIES:
        raise SpecError(f"{fld}.kind", f"expected one of {', '.join(POLICIES)}, got {kind!r}")
    params = {k: v for k, v in data.items() if k not in ("kind", "name")}
    from emulator.sim.policies import validate_policy_params
    validate_policy_params(str(kind), params, fld)
    name = data.get("name", kind)
    return PolicySpec(_str(name, f"{fld}.name"), str(kind), params)


def _workload(raw: object, fld: str, index: int) -> WorkloadSpec:
    data = _mapping(raw, fld)
    kind = data.get("kind")
    if kind not in WORKLOAD_KINDS:
        raise SpecError(f"{fld}.kind", f"expected one of {', '.join(WORKLOAD_KINDS)}, got {kind!r}")
    common = {"kind", "name", "start", "stop"}
    extra = {"churn": {"rate", "lifetime"}, "burst": {"count", "lifetime", "at"},
             "deployment": {"replicas", "schedule"},
             "statefulset": {"replicas", "schedule", "restart_every"}}[kind]
    _only(data, common | extra, fld)
    name = _str(data.get("name", f"{kind}-{index}"), f"{fld}.name")
    start = parse_duration(data.get("start", data.get("at", 0)), f"{fld}.start")
    stop = parse_duration(data["stop"], f"{fld}.stop") if "stop" in data else None
    if stop is not None and stop < start:
        raise SpecError(f"{fld}.stop", f"must not be before start ({start:g}s)")
    lifetime = parse_dist(data["lifetime"], f"{fld}.lifetime") if "lifetime" in data else None
    if kind == "churn":
        if "rate" not in data:
            raise SpecError(f"{fld}.rate", "required for a churn workload")
        if lifetime is None:
            raise SpecError(f"{fld}.lifetime", "required for a churn workload")
        return WorkloadSpec("churn", name, start, stop, parse_rate(data["rate"], f"{fld}.rate"),
                            lifetime)
    if kind == "burst":
        count = _int(data.get("count"), f"{fld}.count", 1)
        return WorkloadSpec("burst", name, start, stop, lifetime=lifetime, replicas=count)
    replicas = _int(data.get("replicas", 0), f"{fld}.replicas")
    steps: list[tuple[float, int]] = []
    for i, step in enumerate(_seq(data.get("schedule", []), f"{fld}.schedule")):
        sf = f"{fld}.schedule[{i}]"
        sd = _mapping(step, sf)
        _only(sd, {"at", "replicas"}, sf)
        steps.append((parse_duration(sd.get("at"), f"{sf}.at"),
                      _int(sd.get("replicas"), f"{sf}.replicas")))
    restart = None
    if kind == "statefulset" and "restart_every" in data:
        restart = parse_dist(data["restart_every"], f"{fld}.restart_every")
    return WorkloadSpec(kind, name, start, stop, replicas=replicas, schedule=tuple(sorted(steps)),
                        restart_every=restart)


_EVENT_PARAMS = {
    "add_vswitch": {"vswitch", "add_to_config", "apply"},
    "set_config": {"eni_conf", "apply"},
    "restart_daemons": {"nodes", "downtime"},
    "add_nodes": {"count", "instance_type"},
    "remove_nodes": {"count"},
    "set_faults": {"faults"},
    "scale": {"workload", "replicas"},
}


def _event(raw: object, fld: str, zone: str) -> EventSpec:
    data = _mapping(raw, fld)
    action = data.get("action")
    if action not in EVENT_ACTIONS:
        raise SpecError(f"{fld}.action",
                        f"expected one of {', '.join(EVENT_ACTIONS)}, got {action!r}")
    _only(data, {"at", "action", "name"} | _EVENT_PARAMS[action], fld)
    if "at" not in data:
        raise SpecError(f"{fld}.at", "required (when the event happens)")
    at = parse_duration(data["at"], f"{fld}.at")
    params = {k: v for k, v in data.items() if k not in ("at", "action", "name")}
    if "apply" in data and data["apply"] not in APPLY_MODES:
        raise SpecError(f"{fld}.apply", f"expected one of {', '.join(APPLY_MODES)}, "
                                        f"got {data['apply']!r}")
    if action == "add_vswitch":
        params["vswitch"] = _vswitch(data.get("vswitch"), f"{fld}.vswitch", zone)
        add = data.get("add_to_config", True)
        if not isinstance(add, bool):
            raise SpecError(f"{fld}.add_to_config", f"expected true or false, got {add!r}")
    elif action in ("add_nodes", "remove_nodes"):
        params["count"] = _int(data.get("count"), f"{fld}.count", 1)
    elif action == "set_config":
        _mapping(data.get("eni_conf"), f"{fld}.eni_conf")
    elif action == "set_faults":
        raw_faults = _seq(data.get("faults", []), f"{fld}.faults")
        params["faults"] = tuple(_fault(f, f"{fld}.faults[{i}]") for i, f in enumerate(raw_faults))
    elif action == "scale":
        _str(data.get("workload"), f"{fld}.workload")
        params["replicas"] = _int(data.get("replicas"), f"{fld}.replicas")
    elif action == "restart_daemons":
        nodes = data.get("nodes", "all")
        if nodes != "all":
            params["nodes"] = _int(nodes, f"{fld}.nodes", 1)
        params["downtime"] = parse_duration(data.get("downtime", "10s"), f"{fld}.downtime")
    name = data.get("name", "")
    if name and not isinstance(name, str):
        raise SpecError(f"{fld}.name", f"expected a string, got {name!r}")
    return EventSpec(at, str(action), str(name), params)


def _fault(raw: object, fld: str) -> Mapping[str, Any]:
    """A rule for ``emulator.faults.FaultEngine`` (its own format, validated by it)."""
    from emulator.faults import FaultRuleError, validate_rule
    data = _mapping(raw, fld)
    try:
        validate_rule(data, fld)
    except FaultRuleError as e:
        msg = str(e)
        if msg.startswith(fld):
            head, _, why = msg.partition(": ")
            raise SpecError(head, why) from None
        raise SpecError(fld, msg) from None
    return dict(data)


def _latency(raw: object, fld: str) -> tuple[dict[str, Dist], bool]:
    out = dict(DEFAULT_LATENCY)
    data = _mapping(raw, fld)
    fast = False
    for key, value in data.items():
        if key == "fast":
            if not isinstance(value, bool):
                raise SpecError(f"{fld}.fast", f"expected true or false, got {value!r}")
            fast = value
        elif key == "default":
            d = parse_dist(value, f"{fld}.default")
            out = {k: d for k in out}
        elif key in DEFAULT_LATENCY:
            out[key] = parse_dist(value, f"{fld}.{key}")
        else:
            known = ", ".join(sorted(DEFAULT_LATENCY))
            raise SpecError(f"{fld}.{key}", f"unknown API (known: {known})")
    return out, fast


def _kubelet(raw: object, fld: str) -> KubeletSpec:
    data = _mapping(raw, fld)
    _only(data, {"cni_timeout", "backoff_initial", "backoff_max", "setup_time", "max_pods"}, fld)
    d = KubeletSpec()
    return KubeletSpec(
        parse_duration(data.get("cni_timeout", d.cni_timeout), f"{fld}.cni_timeout"),
        parse_duration(data.get("backoff_initial", d.backoff_initial), f"{fld}.backoff_initial"),
        parse_duration(data.get("backoff_max", d.backoff_max), f"{fld}.backoff_max"),
        parse_duration(data.get("setup_time", d.setup_time), f"{fld}.setup_time"),
        _int(data.get("max_pods", 0), f"{fld}.max_pods"),
    )


def parse_scenario(data: object, *, source: str = "", path: str = "") -> Scenario:
    """Validate a loaded YAML document and build the Scenario."""
    top = _mapping(data, "scenario")
    _only(top, _TOP_KEYS, "")
    name = _str(top.get("name"), "name")
    cluster = _mapping(top.get("cluster", {}), "cluster")
    _only(cluster, {"region", "zone", "vswitches", "nodes", "instance_type", "attach_delay",
                    "detach_delay", "node_cidr"}, "cluster")
    zone = _str(cluster.get("zone", "cn-hangzhou-k"), "cluster.zone")
    vsw_raw = _seq(cluster.get("vswitches", []), "cluster.vswitches")
    if not vsw_raw:
        raise SpecError("cluster.vswitches", "at least one vSwitch is required")
    vswitches = tuple(_vswitch(v, f"cluster.vswitches[{i}]", zone) for i, v in enumerate(vsw_raw))
    ids = [v.vswitch_id for v in vswitches]
    if len(set(ids)) != len(ids):
        raise SpecError("cluster.vswitches", f"duplicate vSwitch ids in {ids}")
    duration = parse_duration(top.get("duration", "1h"), "duration")
    if duration <= 0:
        raise SpecError("duration", "must be > 0")
    sample = parse_duration(top.get("sample_interval", "10s"), "sample_interval")
    if sample <= 0:
        raise SpecError("sample_interval", "must be > 0")
    eni_conf = dict(_mapping(top.get("eni_conf", {}), "eni_conf"))
    eni_conf.setdefault("vswitches", {zone: [ids[0]]})
    _check_eni_conf(eni_conf)
    latency, fast = _latency(top.get("latency", {}), "latency")
    inv = _mapping(top.get("invariants", {}), "invariants")
    _only(inv, {"check_interval", "history"}, "invariants")
    events = tuple(_event(e, f"events[{i}]", zone)
                   for i, e in enumerate(_seq(top.get("events", []), "events")))
    names = [e.name for e in events if e.name]
    if len(set(names)) != len(names):
        raise SpecError("events", f"duplicate event names in {names}")
    exp_raw = _seq(top.get("expectations", []), "expectations")
    expectations = tuple(parse_expectation(e, f"expectations[{i}]", {e.name: e.at for e in events
                                                                     if e.name})
                         for i, e in enumerate(exp_raw))
    peers_raw = _seq(top.get("peers", []), "peers")
    peers = tuple(parse_policy(p, f"peers[{i}]") for i, p in enumerate(peers_raw))
    pnames = [p.name for p in peers]
    if len(set(pnames)) != len(pnames):
        raise SpecError("peers", f"duplicate peer names in {pnames} (give each a 'name')")
    return Scenario(
        name=name,
        description=str(top.get("description", "")),
        seed=_int(top.get("seed", 1), "seed"),
        duration=duration,
        sample_interval=sample,
        region=_str(cluster.get("region", "cn-hangzhou"), "cluster.region"),
        zone=zone,
        vswitches=vswitches,
        nodes=_int(cluster.get("nodes", 1), "cluster.nodes"),
        instance_type=_str(cluster.get("instance_type", "ecs.g6.xlarge"), "cluster.instance_type"),
        eni_conf=eni_conf,
        policy=parse_policy(top.get("policy", "terway"), "policy"),
        peers=peers,
        latency=latency,
        fast_latency=fast,
        faults=tuple(_fault(f, f"faults[{i}]")
                     for i, f in enumerate(_seq(top.get("faults", []), "faults"))),
        kubelet=_kubelet(top.get("kubelet", {}), "kubelet"),
        workload=tuple(_workload(w, f"workload[{i}]", i)
                       for i, w in enumerate(_seq(top.get("workload", []), "workload"))),
        events=events,
        expectations=expectations,
        invariant_interval=parse_duration(inv.get("check_interval", "5m"),
                                          "invariants.check_interval"),
        history=_int(inv.get("history", 200), "invariants.history", 1),
        attach_delay=_range(cluster.get("attach_delay", [1, 3]), "cluster.attach_delay"),
        detach_delay=_range(cluster.get("detach_delay", [1, 3]), "cluster.detach_delay"),
        node_cidr=_vswitch({"id": "nodes", "cidr": cluster.get("node_cidr", "10.255.0.0/16")},
                           "cluster.node_cidr", zone).cidr,
        source=source,
        path=path,
    )


def _range(value: object, fld: str) -> tuple[float, float]:
    """A delay: one duration, or ``[low, high]`` drawn uniformly."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise SpecError(fld, f"expected [low, high], got {value!r}")
        low, high = (parse_duration(v, f"{fld}[{i}]") for i, v in enumerate(value))
        if high < low:
            raise SpecError(fld, f"high must be >= low, got {value!r}")
        return low, high
    d = parse_duration(value, fld)
    return d, d


def _check_eni_conf(conf: Mapping[str, Any]) -> None:
    """Let the plugin's own config parser judge eni_conf; its field paths are kept."""
    try:
        from terway.config import parse_eni_conf
    except ImportError:  # the config package may not have landed yet
        return
    import json
    try:
        parse_eni_conf(json.dumps(dict(conf)))
    except ValueError as e:
        raise SpecError("eni_conf", str(e)) from None


def load_scenario(path: str) -> Scenario:
    """Read and validate a scenario file (a name without '/' is looked up in scenarios/)."""
    resolved = resolve_scenario_path(path)
    with open(resolved, encoding="utf-8") as fh:
        text = fh.read()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(os.path.basename(resolved), f"not valid YAML: {e}") from None
    return parse_scenario(data, source=text, path=resolved)


def scenarios_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "scenarios"))


def resolve_scenario_path(name: str) -> str:
    if os.path.exists(name):
        return name
    candidate = os.path.join(scenarios_dir(), name if name.endswith(".yaml") else f"{name}.yaml")
    if os.path.exists(candidate):
        return candidate
    raise SpecError("scenario", f"no such scenario file: {name!r}")
