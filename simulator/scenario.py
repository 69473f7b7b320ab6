"""The scenario file: a validated, typed description of one simulation (see docs/scenarios.md).

Validation reports every problem at once: ``SpecError.problems`` lists each as
``"<dotted field path>: why"`` (``workload[1].lifetime.mean: ...``), unknown keys with a "did
you mean" (emulator/problems.py), and nothing is run.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import yaml

from emulator.problems import Problems, did_you_mean
from simulator.dists import Dist, parse_dist
from simulator.expect import Expectation, parse_expectation
from simulator.units import SpecError, parse_duration, parse_rate

WORKLOAD_KINDS = ("churn", "deployment", "statefulset", "burst")
APPLY_MODES = ("reload", "restart", "none")   # how daemons pick a config change up
T = TypeVar("T")
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
    rollouts: tuple[float, ...] = ()     # statefulset: rolling updates start at these times


@dataclass(frozen=True)
class EventSpec:
    at: float
    action: str
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KubeletSpec:
    cni_timeout: float = 120.0           # the daemon RPC deadline (upstream 120 s)
    # A failed sandbox is retried after backoff_initial, doubling up to backoff_max, each pause
    # stretched by up to backoff_jitter of itself. The defaults are kubelet's (pod_workers.go,
    # v1.36: a sync error requeues the pod after wait.Jitter(10s, 0.5): 10 to 15 s, not growing).
    backoff_initial: float = 10.0
    backoff_max: float = 10.0
    setup_time: float = 0.05             # datapath set-up after the address is known
    max_pods: int = 0                    # 0 = the instance type's shared-ENI maximum
    backoff_jitter: float = 0.5
    # A real kubelet makes the CNI ADD only once the sandbox (netns, pause container) exists,
    # and a burst's ADDs on one node trickle in: the ADD comes add_delay after the pod is
    # created, plus add_delay_per_sandbox for each other sandbox still being set up on the
    # node. The DEL (the address released) comes del_delay after the pod is deleted (the
    # containers stopped first). 0 (the default): both at once. docs/sim-vs-cluster.md measured
    # them on the test bed.
    add_delay: float = 0.0
    add_delay_per_sandbox: float = 0.0
    del_delay: float = 0.0


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
        return replace(self, **changes)


_TOP_KEYS = {"name", "description", "seed", "duration", "sample_interval", "cluster", "eni_conf",
             "policy", "peers", "latency", "faults", "kubelet", "workload", "events",
             "expectations", "invariants"}
_CLUSTER_KEYS = {"region", "zone", "vswitches", "nodes", "instance_type", "attach_delay",
                 "detach_delay", "node_cidr"}
_EVENT_PARAMS = {
    "add_vswitch": {"vswitch", "add_to_config", "apply"},
    "set_config": {"eni_conf", "apply"},
    "restart_daemons": {"nodes", "downtime"},
    "add_nodes": {"count", "instance_type"},
    "remove_nodes": {"count"},
    "set_faults": {"faults"},
    "scale": {"workload", "replicas"},
}
_WORKLOAD_KEYS = {"churn": {"rate", "lifetime"}, "burst": {"count", "lifetime", "at"},
                  "deployment": {"replicas", "schedule"},
                  "statefulset": {"replicas", "schedule", "restart_every", "rollouts"}}


_EMPTY: Mapping[str, Any] = {}     # what a section that is not a mapping reads as
_NONE: Sequence[Any] = ()           # what a list that is not a list reads as


def _mapping(value: object, fld: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(fld, f"expected a mapping, got {type(value).__name__}")
    return value


def _seq(value: object, fld: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise SpecError(fld, f"expected a list, got {type(value).__name__}")
    return value


def _only(data: Mapping[str, Any], allowed: set[str], fld: str) -> None:
    """Refuse every unknown key of ``data`` at once, each with a suggestion."""
    p = Problems()
    p.unknown_keys(data, allowed, fld)
    p.raise_as(SpecError)


def _choice(value: object, allowed: Sequence[str], fld: str) -> str:
    if value not in allowed:
        raise SpecError(fld, f"expected one of {', '.join(allowed)}, got {value!r}"
                             f"{did_you_mean(value, allowed)}")
    return str(value)


def _int(value: object, fld: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(fld, f"expected an integer >= {minimum}, got {value!r}")
    return value


def _str(value: object, fld: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(fld, f"expected a non-empty string, got {value!r}")
    return value


def _positive(value: object, fld: str) -> float:
    seconds = parse_duration(value, fld)
    if seconds <= 0:
        raise SpecError(fld, "must be > 0")
    return seconds


def _items(p: Problems, raw: object, fld: str, parse: Callable[[Any, str], T]) -> tuple[T, ...]:
    """Each item of the list at ``fld`` parsed on its own: one bad item does not hide another."""
    out: list[T] = []
    for i, item in enumerate(p.guard(_seq, raw, fld, default=_NONE)):
        value = p.guard(parse, item, f"{fld}[{i}]", default=None)
        if value is not None:
            out.append(value)
    return tuple(out)


def _unique(p: Problems, names: list[str], fld: str, hint: str = "") -> None:
    if len(set(names)) != len(names):
        p.add(fld, f"duplicate names in {names}{hint}")


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
    """``"aws"`` or ``{kind: aws, name: ..., warm_ip_target: 5}``; every problem at once."""
    from simulator.policies import KINDS, policy_problems
    if isinstance(raw, str):
        raw = {"kind": raw}
    data = _mapping(raw, fld)
    kind = _choice(data.get("kind", "terway"), KINDS, f"{fld}.kind")
    p = Problems()
    params = {k: v for k, v in data.items() if k not in ("kind", "name")}
    for path, why in policy_problems(kind, params, fld):
        p.add(path, why)
    name = p.guard(_str, data.get("name", kind), f"{fld}.name", default=kind)
    p.raise_as(SpecError)
    return PolicySpec(name, kind, params)


def _workload(raw: object, fld: str) -> WorkloadSpec:
    data = _mapping(raw, fld)
    kind = _choice(data.get("kind"), WORKLOAD_KINDS, f"{fld}.kind")
    p = Problems()
    p.unknown_keys(data, {"kind", "name", "start", "stop"} | _WORKLOAD_KEYS[kind], fld)
    index = fld.rsplit("[", 1)[-1].rstrip("]")    # workload[3] → "3"
    name = p.guard(_str, data.get("name", f"{kind}-{index}"), f"{fld}.name", default="")
    start = p.guard(parse_duration, data.get("start", data.get("at", 0)), f"{fld}.start",
                    default=0.0)
    stop = p.guard(parse_duration, data["stop"], f"{fld}.stop", default=None) \
        if "stop" in data else None
    if stop is not None and stop < start:
        p.add(f"{fld}.stop", f"must not be before start ({start:g}s)")
    lifetime = p.guard(parse_dist, data["lifetime"], f"{fld}.lifetime", default=None) \
        if "lifetime" in data else None
    spec = WorkloadSpec(kind, name, start, stop, lifetime=lifetime)
    spec = _WORKLOAD_PARSERS[kind](p, data, fld, spec)
    p.raise_as(SpecError)
    return spec


def _churn(p: Problems, data: Mapping[str, Any], fld: str, spec: WorkloadSpec) -> WorkloadSpec:
    if "rate" not in data:
        p.add(f"{fld}.rate", "required for a churn workload")
    if "lifetime" not in data:
        p.add(f"{fld}.lifetime", "required for a churn workload")
    rate = p.guard(parse_rate, data.get("rate", 0), f"{fld}.rate", default=0.0)
    return replace(spec, rate=rate)


def _burst(p: Problems, data: Mapping[str, Any], fld: str, spec: WorkloadSpec) -> WorkloadSpec:
    return replace(spec, replicas=p.guard(_int, data.get("count"), f"{fld}.count", 1, default=0))


def _replicated(p: Problems, data: Mapping[str, Any], fld: str, spec: WorkloadSpec
                ) -> WorkloadSpec:
    """deployment and statefulset: replicas, a schedule of changes, restarts (statefulset)."""
    replicas = p.guard(_int, data.get("replicas", 0), f"{fld}.replicas", default=0)
    steps = _items(p, data.get("schedule", []), f"{fld}.schedule", _step)
    restart = None
    if "restart_every" in data:
        restart = p.guard(parse_dist, data["restart_every"], f"{fld}.restart_every",
                          default=None)
    rollouts = _items(p, data.get("rollouts", []), f"{fld}.rollouts", parse_duration)
    return replace(spec, replicas=replicas, schedule=tuple(sorted(steps)), restart_every=restart,
                   rollouts=tuple(sorted(rollouts)))


def _step(raw: object, fld: str) -> tuple[float, int]:
    data = _mapping(raw, fld)
    p = Problems()
    p.unknown_keys(data, {"at", "replicas"}, fld)
    at = p.guard(parse_duration, data.get("at"), f"{fld}.at", default=0.0)
    replicas = p.guard(_int, data.get("replicas"), f"{fld}.replicas", default=0)
    p.raise_as(SpecError)
    return at, replicas


_WORKLOAD_PARSERS: Mapping[str, Callable[[Problems, Mapping[str, Any], str, WorkloadSpec],
                                         WorkloadSpec]] = {
    "churn": _churn, "burst": _burst, "deployment": _replicated, "statefulset": _replicated}


def _event(raw: object, fld: str, zone: str) -> EventSpec:
    data = _mapping(raw, fld)
    action = _choice(data.get("action"), EVENT_ACTIONS, f"{fld}.action")
    p = Problems()
    p.unknown_keys(data, {"at", "action", "name"} | _EVENT_PARAMS[action], fld)
    at = 0.0
    if "at" not in data:
        p.add(f"{fld}.at", "required (when the event happens)")
    else:
        at = p.guard(parse_duration, data["at"], f"{fld}.at", default=0.0)
    params = {k: v for k, v in data.items() if k not in ("at", "action", "name")}
    if "apply" in data:
        p.guard(_choice, data["apply"], APPLY_MODES, f"{fld}.apply", default="")
    params.update(p.guard(_event_params, action, data, fld, zone, default=dict[str, Any]()))
    name = data.get("name", "")
    if name and not isinstance(name, str):
        p.add(f"{fld}.name", f"expected a string, got {name!r}")
    p.raise_as(SpecError)
    return EventSpec(at, action, str(name), params)


def _event_params(action: str, data: Mapping[str, Any], fld: str, zone: str) -> dict[str, Any]:
    """The parameters of one kind of event, parsed."""
    params: dict[str, Any] = {}
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
        p = Problems()
        params["faults"] = _items(p, data.get("faults", []), f"{fld}.faults", _fault)
        p.raise_as(SpecError)
    elif action == "scale":
        _str(data.get("workload"), f"{fld}.workload")
        params["replicas"] = _int(data.get("replicas"), f"{fld}.replicas")
    elif action == "restart_daemons":
        nodes = data.get("nodes", "all")
        if nodes != "all":
            params["nodes"] = _int(nodes, f"{fld}.nodes", 1)
        params["downtime"] = parse_duration(data.get("downtime", "10s"), f"{fld}.downtime")
    return params


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


def _latency(p: Problems, raw: object, fld: str) -> tuple[dict[str, Dist], bool]:
    out = dict(DEFAULT_LATENCY)
    data = p.guard(_mapping, raw, fld, default=_EMPTY)
    fast = data.get("fast", False)
    if not isinstance(fast, bool):
        p.add(f"{fld}.fast", f"expected true or false, got {fast!r}")
        fast = False
    if "default" in data:
        d = p.guard(parse_dist, data["default"], f"{fld}.default", default=None)
        out = {k: d for k in out} if d else out
    for key, value in data.items():
        if key in DEFAULT_LATENCY:
            out[key] = p.guard(parse_dist, value, f"{fld}.{key}", default=out[key])
        elif key not in ("fast", "default"):
            known = sorted(DEFAULT_LATENCY)
            p.add(f"{fld}.{key}", f"unknown API{did_you_mean(key, known)} "
                                  f"(known: {', '.join(known)})")
    return out, fast


def _fraction(raw: object, fld: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        raise SpecError(fld, f"expected a number from 0 to 1, got {raw!r}")
    return float(raw)


def _kubelet(raw: object, fld: str) -> KubeletSpec:
    data = _mapping(raw, fld)
    p = Problems()
    p.unknown_keys(data, {"cni_timeout", "backoff_initial", "backoff_max", "backoff_jitter",
                          "setup_time", "max_pods", "add_delay", "add_delay_per_sandbox",
                          "del_delay"}, fld)
    d = KubeletSpec()

    def seconds(key: str) -> float:
        default: float = getattr(d, key)
        return p.guard(parse_duration, data.get(key, default), f"{fld}.{key}", default=default)

    spec = KubeletSpec(seconds("cni_timeout"), seconds("backoff_initial"),
                       seconds("backoff_max"), seconds("setup_time"),
                       p.guard(_int, data.get("max_pods", 0), f"{fld}.max_pods", default=0),
                       p.guard(_fraction, data.get("backoff_jitter", d.backoff_jitter),
                               f"{fld}.backoff_jitter", default=d.backoff_jitter),
                       add_delay=seconds("add_delay"),
                       add_delay_per_sandbox=seconds("add_delay_per_sandbox"),
                       del_delay=seconds("del_delay"))
    if spec.backoff_max < spec.backoff_initial:
        p.add(f"{fld}.backoff_max", f"must be at least backoff_initial "
                                    f"({spec.backoff_initial:g}s), got {spec.backoff_max:g}s")
    p.raise_as(SpecError)
    return spec


def _cluster(p: Problems, raw: object) -> dict[str, Any]:
    """The Scenario fields ``cluster`` gives (defaults for what is wrong, recorded in ``p``)."""
    cluster = p.guard(_mapping, raw, "cluster", default=_EMPTY)
    p.unknown_keys(cluster, _CLUSTER_KEYS, "cluster")
    zone = p.guard(_str, cluster.get("zone", "cn-hangzhou-k"), "cluster.zone",
                   default="cn-hangzhou-k")
    vswitches = _items(p, cluster.get("vswitches", []), "cluster.vswitches",
                       lambda v, f: _vswitch(v, f, zone))
    if not cluster.get("vswitches"):
        p.add("cluster.vswitches", "at least one vSwitch is required")
    ids = [v.vswitch_id for v in vswitches]
    if len(set(ids)) != len(ids):
        p.add("cluster.vswitches", f"duplicate vSwitch ids in {ids}")
    node_net = p.guard(_vswitch, {"id": "nodes", "cidr": cluster.get("node_cidr", "10.255.0.0/16")},
                       "cluster.node_cidr", zone, default=None)
    return {
        "zone": zone, "vswitches": vswitches,
        "region": p.guard(_str, cluster.get("region", "cn-hangzhou"), "cluster.region",
                          default=""),
        "nodes": p.guard(_int, cluster.get("nodes", 1), "cluster.nodes", default=1),
        "instance_type": p.guard(_str, cluster.get("instance_type", "ecs.g6.xlarge"),
                                 "cluster.instance_type", default=""),
        "attach_delay": p.guard(_range, cluster.get("attach_delay", [1, 3]),
                                "cluster.attach_delay", default=(1.0, 3.0)),
        "detach_delay": p.guard(_range, cluster.get("detach_delay", [1, 3]),
                                "cluster.detach_delay", default=(1.0, 3.0)),
        "node_cidr": node_net.cidr if node_net else "",
    }


def parse_scenario(data: object, *, source: str = "", path: str = "") -> Scenario:
    """Validate a loaded YAML document and build the Scenario; a ``SpecError`` lists every
    problem found."""
    top = _mapping(data, "scenario")
    p = Problems()
    p.unknown_keys(top, _TOP_KEYS, "")
    name = p.guard(_str, top.get("name"), "name", default="")
    cluster = _cluster(p, top.get("cluster", {}))
    ids = [v.vswitch_id for v in cluster["vswitches"]]
    eni_conf = dict(p.guard(_mapping, top.get("eni_conf", {}), "eni_conf", default=_EMPTY))
    eni_conf.setdefault("vswitches", {cluster["zone"]: ids[:1]})
    _check_eni_conf(p, eni_conf)
    latency, fast = _latency(p, top.get("latency", {}), "latency")
    inv = p.guard(_mapping, top.get("invariants", {}), "invariants", default=_EMPTY)
    p.unknown_keys(inv, {"check_interval", "history"}, "invariants")
    events = _items(p, top.get("events", []), "events", lambda e, f: _event(e, f, cluster["zone"]))
    _unique(p, [e.name for e in events if e.name], "events")
    at = {e.name: e.at for e in events if e.name}
    expectations = _items(p, top.get("expectations", []), "expectations",
                          lambda e, f: parse_expectation(e, f, at))
    peers = _items(p, top.get("peers", []), "peers", parse_policy)
    _unique(p, [x.name for x in peers], "peers", " (give each a 'name')")
    scenario = Scenario(
        name=name,
        description=str(top.get("description", "")),
        seed=p.guard(_int, top.get("seed", 1), "seed", default=1),
        duration=p.guard(_positive, top.get("duration", "1h"), "duration", default=3600.0),
        sample_interval=p.guard(_positive, top.get("sample_interval", "10s"), "sample_interval",
                                default=10.0),
        eni_conf=eni_conf,
        policy=p.guard(parse_policy, top.get("policy", "terway"), "policy",
                       default=PolicySpec("terway", "terway")),
        peers=peers,
        latency=latency,
        fast_latency=fast,
        faults=_items(p, top.get("faults", []), "faults", _fault),
        kubelet=p.guard(_kubelet, top.get("kubelet", {}), "kubelet", default=KubeletSpec()),
        workload=_items(p, top.get("workload", []), "workload", _workload),
        events=events,
        expectations=expectations,
        invariant_interval=p.guard(parse_duration, inv.get("check_interval", "5m"),
                                   "invariants.check_interval", default=300.0),
        history=p.guard(_int, inv.get("history", 200), "invariants.history", 1, default=200),
        source=source,
        path=path,
        **cluster,
    )
    p.raise_as(SpecError)
    return scenario


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


def _check_eni_conf(p: Problems, conf: Mapping[str, Any]) -> None:
    """Let the plugin's own config parser judge eni_conf; each of its problems is kept with
    its field path (``eni_conf.max_pool_size: ...``)."""
    from terway.config import ConfigError, parse_eni_conf
    try:
        parse_eni_conf(json.dumps(dict(conf)))
    except ConfigError as e:
        for problem in e.problems:
            where, _, why = problem.partition(": ")
            p.add(where if where.startswith("eni_conf") else "eni_conf", why or problem)
    except ValueError as e:
        p.add("eni_conf", str(e))


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
    return os.path.normpath(os.path.join(here, "..", "scenarios"))


def resolve_scenario_path(name: str) -> str:
    if os.path.exists(name):
        return name
    candidate = os.path.join(scenarios_dir(), name if name.endswith(".yaml") else f"{name}.yaml")
    if os.path.exists(candidate):
        return candidate
    raise SpecError("scenario", f"no such scenario file: {name!r}")
