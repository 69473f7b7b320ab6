"""One simulation run: a simpy environment, the emulated cloud on simpy time, nodes, workloads.

``Run(scenario, policy).execute()`` builds the world (a VPC, the scenario's vSwitches, a node
vSwitch, instances), starts every node's daemon (the IPAM core), the workloads and the scheduled
events, samples the collectors every ``sample_interval``, checks invariants every
``invariant_interval`` (and at the end), and returns a ``RunResult``. Deterministic: every random
stream is derived from the scenario seed and a fixed name.
"""

from __future__ import annotations

import gc
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import simpy

from emulator.faults import FaultEngine
from emulator.model.cloud import Cloud
from emulator.model.errors import ApiError
from simulator.cloud import make_cloud_api, to_cloud_error
from simulator.collectors import Collector
from simulator.dists import Dist
from simulator.invariants import History, InvariantViolation, Owners, compare_node
from simulator.kubelet import RUNNING, Cluster
from simulator.node import SimNode
from simulator.policies import PolicyRuntime, effective_parameters, runtime_for
from simulator.scenario import EventSpec, PolicySpec, Scenario
from simulator.simlog import SimLog
from simulator.units import SpecError
from simulator.workload import Workload, make_workload
from terway.cloud.api import InstanceTypeLimits
from terway.cloud.errors import CloudError
from terway.cloud.retry import Backoff, retry_policies
from terway.config import merge_patch, parse_eni_conf
from terway.config.eniconf import EniConf
from terway.ipam import AssignIps, Command, CreateEni, IpamSettings, NodeIdentity
from terway.ipam.drive import WaitPolicy
from terway.limits import NodeCapacity, compute_capacity

VPC_CIDR = "10.0.0.0/8"
CHECK_BATCH = 64          # settled nodes compared with the cloud per periodic check


@dataclass
class RunResult:
    scenario: Scenario
    policy: PolicySpec
    collector: Collector
    log: SimLog
    violation: InvariantViolation | None
    wall_seconds: float
    sim_seconds: float
    vswitch_labels: dict[str, str]
    leaked_enis: int = 0
    notes: tuple[str, ...] = field(default=())
    # the policy's effective parameters, defaults included (policies.effective_parameters)
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        data = self.collector.to_json()
        data["scalars"]["leaked_enis"] = self.leaked_enis
        first = self.log.first.get("IpNotEnough")
        data["scalars"]["first_ip_not_enough"] = None if first is None else round(first, 6)
        return {
            "scenario": self.scenario.name,
            "policy": {"name": self.policy.name, "kind": self.policy.kind,
                       "params": dict(self.policy.params)},
            "seed": self.scenario.seed,
            "sim_seconds": self.sim_seconds,
            "vswitches": self.vswitch_labels,
            "violation": None if self.violation is None else {
                "at": self.violation.now, "what": self.violation.what,
                "history": [[t, n, k, str(d)] for t, n, k, d in self.violation.history]},
            **data,
        }

    def scalars(self) -> dict[str, float]:
        out = self.collector.scalars()
        out["leaked_enis"] = self.leaked_enis
        out["first_ip_not_enough"] = self.log.first.get("IpNotEnough", math.nan)
        series = self.collector.series
        held = [u + i for u, i in zip(series.get("used_ips", []), series.get("idle_ips", []),
                                      strict=True)]
        out["peak_addresses"] = max(held) if held else 0.0
        return out


class Run:
    """Build and execute one scenario under one policy."""

    def __init__(self, scenario: Scenario, policy: PolicySpec | None = None,
                 *, progress: bool = False, max_log_lines: int = 200_000,
                 eager_tick: bool = False) -> None:
        self.scenario = scenario
        self.policy = policy or scenario.policy
        self.policy_runtime: PolicyRuntime = runtime_for(self.policy.kind, self.policy.params)
        self.seed = scenario.seed
        self.progress = progress
        self.eager_tick = eager_tick      # tick after every input (the contract, literally)
        self.env = simpy.Environment()
        env = self.env
        self.model = Cloud(seed=scenario.seed, clock=lambda: env.now, region_id=scenario.region,
                           attach_delay=scenario.attach_delay, detach_delay=scenario.detach_delay)
        self.cloud = make_cloud_api(self.model)
        self.cloud_truth = self.cloud
        self.faults = FaultEngine(seed=scenario.seed)
        if scenario.faults:
            self.faults.add_rules([dict(f) for f in scenario.faults])
        self.rate_limit: Mapping[str, int] = {}
        self.retry_policies: Mapping[str, Backoff] = {}
        self.wait_policy = WaitPolicy()     # the daemon's default (--attach-timeout 60 s)
        self.log = SimLog(max_log_lines)
        self.hist = History(scenario.history)
        self.owners = Owners(self.hist)
        self._build_world()
        self.col = Collector({vid: label for label, vid in self.vsw_ids.items()})
        self.cluster = Cluster(env, scenario.kubelet, self.col, self.owners, self.hist,
                               self._rng("scheduler"), self._rng("kubelet-backoff"))
        self._lat = {k: (d, d.mean) for k, d in scenario.latency.items()}
        self._limits: dict[str, InstanceTypeLimits] = {}
        self._caps: dict[tuple[str, int], NodeCapacity] = {}
        self.conf_raw: dict[str, Any] = {}
        self.conf: EniConf = self._set_conf(self._translate(dict(scenario.eni_conf)))
        self.parameters = effective_parameters(self.policy.kind, self.conf, self.policy_runtime)
        self.nodes: list[SimNode] = []
        self._node_seq = 0
        self._check_cursor = 0
        self.workloads: dict[str, Workload] = {}

    # -- world ------------------------------------------------------------------------------------
    def _rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def _build_world(self) -> None:
        sc, m = self.scenario, self.model
        vpc = m.create_vpc(VPC_CIDR, name="sim")
        self.vpc_id = vpc.vpc_id
        self.node_vsw = m.create_vswitch(vpc.vpc_id, sc.zone, sc.node_cidr, name="nodes").vswitch_id
        self.sg_id = m.create_security_group(vpc.vpc_id, name="sim").security_group_id
        self.vsw_ids: dict[str, str] = {}          # scenario label → cloud id
        for v in sc.vswitches:
            self._create_vswitch(v.vswitch_id, v.zone, v.cidr)

    def _create_vswitch(self, label: str, zone: str, cidr: str) -> str:
        try:
            vid: str = self.model.create_vswitch(self.vpc_id, zone, cidr, name=label).vswitch_id
        except ApiError as e:
            raise SpecError(f"vswitch {label}", f"the cloud refused it: {e.code}: {e.message}"
                            ) from None
        self.vsw_ids[label] = vid
        return vid

    def _translate(self, conf: dict[str, Any]) -> dict[str, Any]:
        """Scenario vSwitch labels in eni_conf → the cloud's ids."""
        vs = conf.get("vswitches")
        if isinstance(vs, Mapping):
            conf["vswitches"] = {z: [self.vsw_ids.get(v, v) for v in ids] for z, ids in vs.items()}
        return conf

    def _set_conf(self, raw: dict[str, Any]) -> EniConf:
        self.conf_raw = raw
        merged = merge_patch(raw, dict(self.policy_runtime.conf_patch))
        conf = parse_eni_conf(merged)
        self.conf = conf
        self.rate_limit = dict(conf.rate_limit)
        self.retry_policies = retry_policies(conf.backoff_override)
        self._caps.clear()
        return conf

    def _settings(self, node_instance: str, itype: str) -> tuple[IpamSettings, NodeCapacity]:
        limits = self._limits.get(itype)
        if limits is None:
            limits = self._limits[itype] = self.cloud.describe_instance_type(itype)
        cap = compute_capacity(limits, self.conf)
        ident = NodeIdentity(instance_id=node_instance, zone_id=self.scenario.zone,
                             primary_vswitch_id=self.node_vsw,
                             primary_security_group_ids=(self.sg_id,))
        return IpamSettings.from_config(self.conf, cap, ident), cap

    def add_nodes(self, count: int, itype: str | None = None) -> None:
        itype = itype or self.scenario.instance_type
        made = 0
        while made < count:
            batch = min(100, count - made)
            try:
                ids = self.model.run_instances(itype, self.node_vsw, [self.sg_id], batch)
            except ApiError as e:
                raise SpecError("cluster.instance_type", f"{e.code}: {e.message}") from None
            for iid in ids:
                self._node_seq += 1
                name = f"node-{self._node_seq:04d}"
                settings, cap = self._settings(iid, itype)
                max_pods = self.scenario.kubelet.max_pods or cap.capacity
                node = SimNode(self, name, iid, settings, max_pods, self._rng(f"node:{name}"))
                self.nodes.append(node)
                self.cluster.nodes.append(node)
                node.start()
            made += batch
        self.col.nodes = sum(1 for n in self.nodes if n.alive)

    def remove_nodes(self, count: int) -> None:
        alive = [n for n in self.nodes if n.alive]
        for node in alive[-count:]:
            self.cluster.nodes.remove(node)
            for pod in self.cluster.pods_on(node):
                self.cluster.delete(pod)
            node.remove()
            self.model.delete_instance(node.instance_id)
            self.hist.add((self.env.now, node.name, "node-removed", node.instance_id))
        self.col.nodes = sum(1 for n in self.nodes if n.alive)

    # -- the latency model ------------------------------------------------------------------------
    def latency(self, action: str, cmd: Command, now: float,
                rng: random.Random) -> tuple[float, CloudError | None]:
        """Seconds the call takes and the injected error (None: the cloud decides)."""
        dist, mean = self._lat.get(action, (None, 0.0))
        base = mean if self.scenario.fast_latency or dist is None else dist.sample(rng)
        if not self.faults._rules:
            return base, None
        decision = self.faults.decide(action, _wire_params(cmd), now)
        err = to_cloud_error(self.model, decision.error) if decision.error else None
        return base + decision.latency, err

    # -- scheduled events -------------------------------------------------------------------------
    def _at(self, t: float, fn: Callable[[], None]) -> None:
        self.env.timeout(max(0.0, t - self.env.now)).callbacks.append(lambda _e: fn())

    def _event_fn(self, ev: EventSpec) -> Callable[[], None]:
        return lambda: self._apply_event(ev)

    def _apply_event(self, ev: EventSpec) -> None:
        p = ev.params
        self.hist.add((self.env.now, "-", "event", f"{ev.action} {ev.name}"))
        if ev.action == "add_vswitch":
            v = p["vswitch"]
            vid = self._create_vswitch(v.vswitch_id, v.zone, v.cidr)
            self.col.add_vswitch(vid, v.vswitch_id)
            if p.get("add_to_config", True):
                raw = json.loads(json.dumps(self.conf_raw))
                vs = raw.setdefault("vswitches", {})
                vs.setdefault(self.scenario.zone, []).append(vid)
                self._reconfigure(raw, p.get("apply", "reload"))
        elif ev.action == "set_config":
            raw = merge_patch(self.conf_raw, self._translate(dict(p["eni_conf"])))
            self._reconfigure(raw, p.get("apply", "reload"))
        elif ev.action == "restart_daemons":
            n = p.get("nodes", "all")
            nodes = [x for x in self.nodes if x.alive]
            for node in nodes if n == "all" else nodes[:n]:
                node.restart(p.get("downtime", 10.0))
        elif ev.action == "add_nodes":
            self.add_nodes(p["count"], p.get("instance_type"))
        elif ev.action == "remove_nodes":
            self.remove_nodes(p["count"])
        elif ev.action == "set_faults":
            self.faults.clear()
            if p.get("faults"):
                self.faults.add_rules([dict(f) for f in p["faults"]])
        elif ev.action == "scale":
            wl = self.workloads.get(p["workload"])
            if wl is None:
                raise SpecError("events", f"scale: no workload named {p['workload']!r}")
            wl.scale(p["replicas"])

    def _reconfigure(self, raw: dict[str, Any], apply: str) -> None:
        self._set_conf(raw)
        for node in self.nodes:
            if not node.alive:
                continue
            settings, _ = self._settings(node.instance_id, self.scenario.instance_type)
            node.set_settings(settings, reload=apply == "reload")
            if apply == "restart":
                node.restart(10.0)

    # -- periodic work ----------------------------------------------------------------------------
    def _sample(self) -> None:
        views = self.model.describe_vswitches(list(self.vsw_ids.values()))
        available = {v.vswitch_id: v.available_ip_count for v in views}
        waiting: dict[str, tuple[int, bool]] = {}
        starved: list[tuple[int, tuple[str, ...]]] = []
        if self.col.pending:
            waiting = {n.name: (n.waiting, n.stuck(available)) for n in self.nodes
                       if n.waiting and n.alive}
            starved = [(n.waiting, usable) for n in self.nodes if n.waiting and n.alive
                       for usable in (_starved_on(n, available),) if usable]
        stuck = sum(n for n, is_stuck in waiting.values() if is_stuck)
        self.col.sample(self.env.now, available, stuck, waiting, starved)

    def _sampler(self) -> Any:
        interval = self.scenario.sample_interval
        duration = self.scenario.duration
        wall0 = time.monotonic()
        tty, shown = sys.stderr.isatty(), -1
        while True:
            self._sample()
            if self.progress:
                shown = _progress(self.env.now, duration, time.monotonic() - wall0, self.col,
                                  tty, shown)
            if self.env.now + interval > duration:
                return
            yield self.env.timeout(interval)

    def _checker(self) -> Any:
        while True:
            yield self.env.timeout(self.scenario.invariant_interval)
            self.check_invariants(CHECK_BATCH)

    def check_invariants(self, limit: int | None = None) -> None:
        """Compare settled nodes with the cloud (``limit`` of them, round robin) and quotas."""
        now = self.env.now
        self.col.invariant_checks += 1
        alive = [n for n in self.nodes if n.alive]
        if not alive:
            return
        count = len(alive) if limit is None else min(limit, len(alive))
        pods_by_node: dict[str, list[tuple[str, str]]] = {}
        for pod in self.cluster.pods.values():
            if pod.state == RUNNING and pod.node is not None:
                pods_by_node.setdefault(pod.node.name, []).append((pod.key, pod.ip))
        for i in range(count):
            node = alive[(self._check_cursor + i) % len(alive)]
            self._check_node(node, pods_by_node.get(node.name, []), now)
        self._check_cursor += count
        self._check_quotas(now)

    def _check_node(self, node: SimNode, pod_ips: list[tuple[str, str]], now: float) -> None:
        if not node.settled or node.core is None:
            return
        core_enis = {e.eni_id: frozenset(e.ips) for e in node.core.enis()}
        cloud_enis = {e.eni_id: frozenset(e.private_ips)
                      for e in self.cloud_truth.describe_network_interfaces(
                          instance_id=node.instance_id) if e.eni_type != "Primary"}
        why = compare_node(core_enis, cloud_enis, pod_ips)
        if why:
            raise InvariantViolation(now, f"{node.name}: {why}", self.hist.events)

    def _check_quotas(self, now: float) -> None:
        for v in self.model.describe_vswitches(list(self.vsw_ids.values())):
            if v.available_ip_count < 0:
                raise InvariantViolation(now, f"{v.vswitch_id} has {v.available_ip_count} "
                                              "available addresses", self.hist.events)
        for node in self.nodes:
            if not node.alive:
                continue
            # the model's own views: no CloudAPI conversion for 1,000 nodes per check
            enis = self.model.describe_network_interfaces(instance_id=node.instance_id)
            limits = self._limits[self.scenario.instance_type]
            if len(enis) > limits.eni_quantity:
                raise InvariantViolation(now, f"{node.name} has {len(enis)} ENIs, quota "
                                              f"{limits.eni_quantity}", self.hist.events)
            for e in enis:
                if len(e.private_ips) > limits.ips_per_eni:
                    raise InvariantViolation(now, f"{e.eni_id} holds {len(e.private_ips)} "
                                                  f"addresses, quota {limits.ips_per_eni}",
                                             self.hist.events)

    # -- run --------------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        sc = self.scenario
        env = self.env
        wall0 = time.monotonic()
        with _sparse_gc():
            violation = self._run_world(sc, env)
        if self.progress and sys.stderr.isatty():
            sys.stderr.write("\n")          # end the carriage-return frames' line
        for key, n in self.log.counts.items():
            self.col.log_lines[key] = n
        leaked = sum(1 for e in self.cloud_truth.describe_network_interfaces(status="Available"))
        return RunResult(sc, self.policy, self.col, self.log, violation,
                         time.monotonic() - wall0, env.now,
                         dict(sorted(self.vsw_ids.items())), leaked,
                         self.policy_runtime.notes, self.parameters)

    def _run_world(self, sc: Scenario, env: simpy.Environment) -> InvariantViolation | None:
        """Build the nodes and workloads and run to the end; the violation that stopped it."""
        try:
            self.add_nodes(sc.nodes)
            for i, spec in enumerate(sc.workload):
                wl = make_workload(env, spec, self.cluster, self._rng(f"workload:{i}:{spec.name}"),
                                   sc.duration)
                self.workloads[spec.name] = wl
                wl.start()
            for ev in sc.events:
                self._at(ev.at, self._event_fn(ev))
            env.process(self._sampler())
            env.process(self._checker())
            env.run(until=sc.duration)
            self.check_invariants(None)
        except InvariantViolation as v:
            self.col.invariant_violations += 1
            self._sample()
            return v
        return None


def _starved_on(node: SimNode, available: Mapping[str, int]) -> tuple[str, ...]:
    """The vSwitches a node with waiting pods could draw an address from, when it can get none
    itself: its daemon is up, it holds no idle address, and none of those vSwitches (its ENIs
    with room, and the configured ones while an ENI slot is free) has one left to give. Empty
    otherwise. Idle addresses on those vSwitches elsewhere are what its pods wait for
    (``collectors.stuck_while_idle``)."""
    core = node.core
    if core is None or not node.up:
        return ()
    st = core.stats()
    if st.idle:
        return ()
    s = node.settings
    usable = {e.vswitch_id for e in core.enis() if len(e.ips) < s.ips_per_eni}
    if st.eni_count < s.max_enis:
        usable.update(s.vswitch_ids)
    if any(available.get(v, 0) > 0 for v in usable):
        return ()
    return tuple(sorted(usable))


@contextmanager
def _sparse_gc() -> Iterator[None]:
    """No cyclic garbage collection while a run goes: a large run keeps millions of live
    objects (slots, pods, events) that every collection would rescan (a fifth of
    ``large-cluster``'s CPU with the default thresholds, a tenth at 10,000 nodes with rare
    ones), and it makes almost no cyclic garbage (a 10,000-node hour: a few hundred objects).
    Reference counting still frees everything else at once. Results do not depend on when
    garbage is collected. CPython only: PyPy has no reference counting (its disabled
    collector would free nothing) and its generational collector needs no such help."""
    if sys.implementation.name != "cpython":
        yield
        return
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            _promote_survivors()
            gc.enable()


def _promote_survivors() -> None:
    """Move every object the run left alive to the oldest generation, without a scan: all that
    it allocated is still in the youngest, so the first allocation after ``gc.enable()`` would
    otherwise scan millions of objects at once (a second or more at 10,000 nodes). ``freeze``
    parks them aside and ``unfreeze`` puts them back in the oldest generation; both only splice
    lists. A later full collection still finds any garbage among them."""
    gc.freeze()
    gc.unfreeze()


def _wire_params(cmd: Command) -> dict[str, str]:
    """The request parameters fault rules can match on (``match: {NetworkInterfaceId: …}``)."""
    out: dict[str, str] = {}
    eni = getattr(cmd, "eni_id", None)
    if eni:
        out["NetworkInterfaceId"] = eni
    if isinstance(cmd, CreateEni):
        out["VSwitchId"] = cmd.vswitch_id
    if isinstance(cmd, AssignIps):
        out["SecondaryPrivateIpAddressCount"] = str(cmd.count)
    return out


def _progress(now: float, total: float, wall: float, col: Collector, tty: bool,
              shown: int) -> int:
    """On a terminal, one bar redrawn in place (carriage returns); elsewhere (a log file, CI)
    one plain line per tenth of the run. Returns the tenths shown so far."""
    frac = min(1.0, now / total) if total else 1.0
    text = (f"{frac * 100:5.1f}%  sim {now / 3600:6.2f}h  pods {col.pods_created:>8}  "
            f"pending {col.pending:>5}  wall {wall:6.1f}s")
    if tty:
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {text}")
    elif int(frac * 10) > shown:
        shown = int(frac * 10)
        sys.stderr.write(f"progress {text.strip()}\n")
    sys.stderr.flush()
    return shown


__all__ = ["Dist", "Run", "RunResult"]
