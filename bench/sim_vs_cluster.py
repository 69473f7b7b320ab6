"""The simulator checked against the real cluster (issue 14 item 5; docs/sim-vs-cluster.md).

    python3 -m bench.sim_vs_cluster --out out/sim-vs-cluster [--scenario FILE] [--sim-only]

One workload, ``scenarios/sim-vs-cluster.yaml``, runs twice:

1. in the simulator (``simulator.engine.Run``, unchanged). Its pods — names, nodes, creation and
   deletion times, as the scenario's seeded workload drew them — are the schedule;
2. on the Kubernetes test bed (``emulator.cluster``: real kubelets, containerd, terwayd as the
   DaemonSet), with the scenario's eni_conf, its per-action latencies installed as the
   emulator's latency fault rules through the control endpoint, its attach/detach delays, and
   the same pods created and deleted at the same offsets on the same nodes (``nodeName``).

Both sides are measured the same way over the same window (from the first pod's offset, the
scenario's workload start, to the scenario's end):

- **API calls per pod**: cloud API calls in the window / pods that got an address. Simulator:
  its counter of the core's commands, attach/detach status polls and DescribeVSwitches. Test
  bed: the emulator's own per-call log (``api call`` lines of logger ``emulator.api``), which
  sees every call terwayd makes. Start-up calls (DescribeInstanceTypes, the restore's
  DescribeNetworkInterfaces, the first pool fill) fall before the window on both sides, and
  terwayd's periodic ENI audit reads instance metadata, not the API: nothing is excluded by
  hand, the window does it.
- **network-ready** per pod: from the CNI ADD reaching the daemon to the answer, the datapath
  set up. Test bed: terwayd's own measure, the ``AllocIPSucceed`` event ``Alloc IP … for Pod
  took N ms`` (pool wait + pod lookup + datapath set-up + state write). Simulator: address
  handed out + ``kubelet.setup_time`` - its CNI ADD (which the scenario's kubelet makes
  ``add_delay`` after the pod is created, as the test bed's does). p50/p99 are nearest-rank over
  the pods that got an address.

Writes ``report.md`` (side by side, ratios, tolerances, verdicts) and ``result.json`` (every
figure, calls by action, each pod's network-ready on both sides, the schedule). Exit 0 when
every check of ``CHECKS`` holds, 1 otherwise, 2 on bad input. The test bed needs root and
the built artifacts (``nox -s kube`` builds them); the cluster is torn down whatever happens.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emulator.distributions import Dist  # noqa: E402
from simulator.collectors import quantile  # noqa: E402
from simulator.scenario import Scenario, load_scenario  # noqa: E402

SCENARIO = ROOT / "scenarios" / "sim-vs-cluster.yaml"
WORKDIR = Path("/var/lib/terway-testbed/sim-vs-cluster")
NAMESPACE = "default"
BUSYBOX = "localhost/terway-testbed/busybox:1"
LABEL = "sim-vs-cluster"
TOLERANCE = {"api_calls_per_pod": 0.10, "p50_network_ready": 0.20, "p99_network_ready": 0.20}
# Below this a difference is the test bed's noise, not the model's: a pool hit's ADD took 6 to
# 20 ms on the test bed's shared vCPUs (docs/sim-vs-cluster.md), so p50 ~10 ms is compared
# give or take 5 ms as well as 20 %.
SLACK = {"p50_network_ready": 0.005}
SEEDS = 20                    # simulations per ensemble
PLAIN = "simulator"           # its kubelet: the ADD and DEL after the scenario's kubelet delays
TIMED = "simulator, ADD/DEL at the test bed's times"
# What must hold for a pass (docs/sim-vs-cluster.md says why these and not more): (ensemble,
# measure, "within": the median within the tolerance | "in_range": the test bed's value within
# the ensemble's range give or take the tolerance). One test-bed run is one draw, and its API
# calls per pod alone spread 0.69 to 0.85 over runs of one schedule: its calls and p99 are
# checked against the simulator's range, the medians over runs in the docs.
CHECKS = (
    (TIMED, "api_calls_per_pod", "in_range"),
    (TIMED, "p50_network_ready", "within"),
    (TIMED, "p99_network_ready", "in_range"),
    (PLAIN, "api_calls_per_pod", "in_range"),
    (PLAIN, "p50_network_ready", "within"),
    (PLAIN, "p99_network_ready", "in_range"),
)
TOOK = re.compile(r"took (\d+(?:\.\d+)?)ms")
QUIET_SECONDS = 10.0          # no API call for this long: the pools settled after bring-up
# eni_conf keys the test bed fills in from its own world (ids, credentials), not the scenario
WORLD_KEYS = ("vswitches", "security_group", "security_groups", "credential_path",
              "service_cidr")


# -- the workload, as the simulator drew it -----------------------------------------------------

@dataclass(frozen=True)
class PodPlan:
    """One pod of the schedule: seconds from the workload's start."""

    name: str
    node: int                   # the node's index in creation order (node-0001 is 0)
    create: float
    delete: float | None        # None: still there at the end


@dataclass
class Side:
    """What one side measured over the window."""

    name: str
    calls: dict[str, int]                    # by action
    network_ready: dict[str, float]          # pod name → seconds
    cni_failures: int
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def pods_ready(self) -> int:
        return len(self.network_ready)

    @property
    def calls_total(self) -> int:
        return sum(self.calls.values())

    def figures(self) -> dict[str, float]:
        lat = sorted(self.network_ready.values())
        return {"api_calls_per_pod": (self.calls_total / self.pods_ready
                                      if self.pods_ready else math.nan),
                "p50_network_ready": quantile(lat, 0.50),
                "p99_network_ready": quantile(lat, 0.99)}


def workload_start(sc: Scenario) -> float:
    return min((w.start for w in sc.workload), default=0.0)


def simulate(sc: Scenario) -> tuple[Side, list[PodPlan]]:
    """Run the scenario in the simulator; its measures over the window and its pods."""
    from simulator.engine import Run

    run = Run(sc)
    probe = _Probe(run, workload_start(sc))
    side = probe.finish("simulator")
    return side, probe.plans()


def simulate_at(sc: Scenario, plans: list[PodPlan], arrivals: Mapping[str, float],
                departures: Mapping[str, float], name: str = "simulator", *,
                own_kubelet: bool = False) -> Side:
    """The schedule's pods on the scenario's cluster, created and deleted at the given offsets
    from the workload start. ``own_kubelet``: the times are the API's create and delete, and
    the scenario's kubelet makes the CNI ADD and DEL after its own delays (with the schedule's
    times this is the scenario's simulation again, call for call). Otherwise the times are the
    ADD and DEL themselves, made at once: with the times the test bed's kubelet and containerd
    made them, it is the simulator's model of the daemon and the cloud alone, without its model
    of the kubelet. Pods without an arrival are left out."""
    from simulator.engine import Run

    kubelet = sc.kubelet if own_kubelet else replace(
        sc.kubelet, add_delay=0.0, add_delay_per_sandbox=0.0, del_delay=0.0)
    run = Run(sc.with_overrides(workload=(), kubelet=kubelet))
    t0 = workload_start(sc)
    pods: dict[str, Any] = {}

    def create(plan: PodPlan) -> Callable[[object], None]:
        def go(_event: object) -> None:
            pods[plan.name] = run.cluster.create(f"{NAMESPACE}/{plan.name}",
                                                 prefer=run.nodes[plan.node])
        return go

    def delete(name: str) -> Callable[[object], None]:
        def go(_event: object) -> None:
            if pods.get(name) is not None:
                run.cluster.delete(pods[name])
        return go

    for plan in plans:
        if plan.name not in arrivals:
            continue
        run.env.timeout(t0 + arrivals[plan.name]).callbacks.append(create(plan))
        if plan.name in departures:
            run.env.timeout(t0 + departures[plan.name]).callbacks.append(delete(plan.name))
    return _Probe(run, t0).finish(name)


def at_creation(plans: list[PodPlan]) -> tuple[dict[str, float], dict[str, float]]:
    """The API's create and delete of each pod (its kubelet makes the ADD and DEL after them)."""
    return ({p.name: p.create for p in plans},
            {p.name: p.delete for p in plans if p.delete is not None})


@dataclass
class Ensemble:
    """The same pods at the same times under ``SEEDS`` seeds (latencies, attach delays, pool
    sync jitter, the cloud's ids): what the simulator predicts is a distribution, and one run
    of the test bed is one draw of the real system's."""

    name: str
    runs: list[Side]           # runs[0]: the scenario's own seed

    def values(self, measure: str) -> list[float]:
        return sorted(r.figures()[measure] for r in self.runs)

    def stats(self, measure: str) -> dict[str, float]:
        xs = self.values(measure)
        return {"median": quantile(xs, 0.5), "min": xs[0], "max": xs[-1]}


def ensemble(sc: Scenario, plans: list[PodPlan], arrivals: Mapping[str, float],
             departures: Mapping[str, float], name: str, seeds: int, *,
             own_kubelet: bool = False) -> Ensemble:
    return Ensemble(name, [simulate_at(sc.with_overrides(seed=sc.seed + k), plans, arrivals,
                                       departures, name, own_kubelet=own_kubelet)
                           for k in range(seeds)])


class _TimedCalls(Counter[tuple[str, str]]):
    """The collector's call counter, also noting when each call completed (the report's call
    timeline; ``Collector`` itself only counts)."""

    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__()
        self.now = now
        self.log: list[tuple[float, str]] = []

    def __setitem__(self, key: tuple[str, str], value: int) -> None:
        if value > self.get(key, 0):
            self.log.append((self.now(), key[0]))
        super().__setitem__(key, value)


class CloudEvents:
    """The cloud model's own change notifications (emulator/model/events.py) as (time, node
    index, kind, addresses): what each side's calls did to each node, in order."""

    def __init__(self, cloud: Any, instances: Callable[[], list[str]],
                 clock: Callable[[], float]) -> None:
        self.instances, self.clock = instances, clock
        self.node: dict[str, int] = {}
        self.eni_node: dict[str, int] = {}
        self.log: list[tuple[float, int | None, str, int]] = []
        self.unsubscribe = cloud.subscribe(self._on)

    def _on(self, ev: Any) -> None:
        if ev.instance_id and ev.instance_id not in self.node:
            self.node = {iid: i for i, iid in enumerate(self.instances())}
        node = self.node.get(ev.instance_id)
        if node is None:
            node = self.eni_node.get(ev.eni_id)
        elif ev.eni_id:
            self.eni_node[ev.eni_id] = node
        self.log.append((self.clock(), node, ev.kind.value, len(ev.ips)))

    def since(self, start: float) -> list[tuple[float, int | None, str, int]]:
        return [(round(t - start, 3), n, k, ips) for t, n, k, ips in self.log if t >= start]


class _Probe:
    """Watches one simulation: the calls before the window, the pools at its start, then
    every pod's creation, address and deletion from the run's history."""

    def __init__(self, run: Any, t0: float) -> None:
        self.run, self.t0 = run, t0
        self.calls = _TimedCalls(lambda: float(run.env.now))
        run.col.api_calls = self.calls
        self.pools: dict[str, list[int]] = {}
        run.env.timeout(t0).callbacks.append(lambda _e: self.pools.update(_sim_pools(run)))
        self.created: dict[str, tuple[float, int]] = {}
        self.deleted: dict[str, float] = {}
        self.events = CloudEvents(run.model, lambda: [n.instance_id for n in run.nodes],
                                  lambda: float(run.env.now))

    def finish(self, name: str) -> Side:
        run, t0 = self.run, self.t0
        result = run.execute()
        if result.violation is not None:
            raise RuntimeError(f"the simulation broke an invariant: {result.violation}")
        events = list(run.hist.events)
        if len(events) == run.hist.events.maxlen:
            raise ValueError("invariants.history is too small to hold every pod event of the "
                             "run; raise it in the scenario")
        node_index = {n.name: i for i, n in enumerate(run.nodes)}
        ready: dict[str, float] = {}
        added: dict[str, float] = {}         # the CNI ADD, when the kubelet makes it later
        for t, node, kind, detail in events:
            if kind == "pod-create":
                self.created[str(detail)] = (t, node_index[node])
            elif kind == "pod-add":
                added.setdefault(str(detail), t)
            elif kind == "pod-ready":
                ready.setdefault(str(detail).split()[0], t)
            elif kind == "pod-delete":
                self.deleted[str(detail)] = t
        setup = run.scenario.kubelet.setup_time
        network_ready = {_pod_name(k): t + setup - added.get(k, self.created[k][0])
                         for k, t in ready.items()}
        window = [(t - t0, a) for t, a in self.calls.log if t >= t0]
        before = Counter(a for t, a in self.calls.log if t < t0)
        calls = Counter(a for _, a in window)
        return Side(name, dict(sorted(calls.items())), network_ready, run.col.cni_failures,
                    {"setup_time": setup, "pools_at_start": self.pools,
                     "calls_before_window": dict(sorted(before.items())),
                     "call_timeline": [(round(t, 3), a) for t, a in window],
                     "cloud_events": self.events.since(t0)})

    def plans(self) -> list[PodPlan]:
        t0 = self.t0
        return [PodPlan(_pod_name(key), node, round(t - t0, 6),
                        round(self.deleted[key] - t0, 6) if key in self.deleted else None)
                for key, (t, node) in sorted(self.created.items(), key=lambda kv: kv[1][0])]


def _pod_name(key: str) -> str:
    return key.split("/", 1)[1]


def _sim_pools(run: Any) -> dict[str, Any]:
    """Each node's secondary ENIs and their addresses in the cloud (the state the window
    starts from)."""
    out = {}
    for i, node in enumerate(run.nodes):
        enis = [e for e in run.model.describe_network_interfaces(instance_id=node.instance_id)
                if e.eni_type != "Primary"]
        out[f"node {i}"] = sorted(len(e.private_ips) for e in enis)
    return out


# -- the test bed -------------------------------------------------------------------------------

def latency_rules(latency: Mapping[str, Dist]) -> list[dict[str, Any]]:
    """The scenario's per-action latencies as the emulator's latency fault rules: the same
    distributions (emulator/distributions.py builds both), exactly."""
    rules = []
    for action, d in sorted(latency.items()):
        params: dict[str, float]
        if d.kind == "constant":
            params = {"value": d.a}
        elif d.kind == "uniform":
            params = {"low": d.a, "high": d.b}
        elif d.kind == "normal":
            params = {"mean": d.a, "sd": d.b}
        elif d.kind == "exponential":
            params = {"mean": 1.0 / d.a}
        else:
            params = {"mu": d.a, "sigma": d.b}
        rules.append({"kind": "latency", "action": action, "distribution": d.kind, **params})
    return rules


def cluster_eni_conf(sc: Scenario) -> dict[str, Any]:
    """The scenario's eni_conf for the test bed: everything but what names this world's
    resources (its pod vSwitch, security group, credentials), which the test bed fills in."""
    return {k: v for k, v in sc.eni_conf.items() if k not in WORLD_KEYS}


def check_fits_test_bed(sc: Scenario) -> list[str]:
    """Why the scenario cannot run on the test bed as it is (empty: it can)."""
    from emulator.cluster.cluster import NODE_TYPE, ZONE

    problems = []
    if sc.zone != ZONE:
        problems.append(f"cluster.zone: the test bed's nodes are in {ZONE}, not {sc.zone}")
    if sc.instance_type != NODE_TYPE:
        problems.append(f"cluster.instance_type: the test bed's nodes are {NODE_TYPE}")
    if len(sc.vswitches) != 1:
        problems.append("cluster.vswitches: the test bed has one pod vSwitch")
    elif not 20 <= int(sc.vswitches[0].cidr.split("/")[1]) <= 27:
        problems.append("cluster.vswitches[0].cidr: a /20 to /27 fits the test bed's VPC")
    if sc.events or sc.faults:
        problems.append("events/faults: not replayed on the test bed")
    if any(w.kind not in ("churn", "burst") for w in sc.workload):
        problems.append("workload: only churn and burst pods are replayed (no controllers)")
    if sc.fast_latency:
        problems.append("latency.fast: the emulator samples its latencies")
    return problems


class CallLog(logging.Handler):
    """The emulator's own accounting: its ``api call`` line for every call (successes at debug,
    refusals at info; emulator/wire/gateway.py), as (time, action, code)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.calls: list[tuple[float, str, str]] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        if record.getMessage() != "api call" or not isinstance(fields, dict):
            return
        with self._lock2:
            self.calls.append((record.created, str(fields.get("action")),
                               str(fields.get("code") or "OK")))

    def between(self, start: float, end: float) -> list[tuple[float, str, str]]:
        with self._lock2:
            return [c for c in self.calls if start <= c[0] <= end]

    def last(self) -> float:
        with self._lock2:
            return self.calls[-1][0] if self.calls else 0.0


def _post_json(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _pod(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": LABEL}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": BUSYBOX,
                                     "imagePullPolicy": "Never",
                                     "command": ["sleep", "100000"]}]}}


@dataclass
class Replay:
    """Creates and deletes pods at the schedule's offsets (a thread pool makes the calls, so
    a burst's creations go out together)."""

    api: Any
    plans: list[PodPlan]
    nodes: list[str]
    start: float = 0.0           # time.time() of offset 0
    late: list[float] = field(default_factory=list)     # seconds each action went out late
    errors: list[str] = field(default_factory=list)

    def actions(self) -> list[tuple[float, str, PodPlan]]:
        out = [(p.create, "create", p) for p in self.plans]
        out += [(p.delete, "delete", p) for p in self.plans if p.delete is not None]
        return sorted(out, key=lambda a: (a[0], a[1] == "create"))

    def run(self, until: float, log: Callable[[str], None]) -> None:
        self.start = time.time()
        with ThreadPoolExecutor(max_workers=16) as pool:
            for i, (at, what, plan) in enumerate(self.actions()):
                pause = self.start + at - time.time()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(self._do, what, plan, at)
                if i % 50 == 0:
                    log(f"replay: t={at:6.1f}s {what} {plan.name}")
        rest = self.start + until - time.time()
        if rest > 0:
            log(f"replay: schedule done; waiting {rest:.0f} s to the window's end")
            time.sleep(rest)

    def _do(self, what: str, plan: PodPlan, at: float) -> None:
        self.late.append(time.time() - self.start - at)
        try:
            if what == "create":
                self.api.create_namespaced_pod(NAMESPACE, _pod(plan.name, self.nodes[plan.node]))
            else:
                self.api.delete_namespaced_pod(plan.name, NAMESPACE)
        except Exception as exc:        # reported, and the pod then misses on the cluster side
            self.errors.append(f"{what} {plan.name}: {type(exc).__name__}: {exc}"[:300])


def on_test_bed(sc: Scenario, plans: list[PodPlan], workdir: Path,
                log: Callable[[str], None]) -> Side:
    """Bring the test bed up with the scenario's eni_conf, latencies and delays, replay the
    schedule, measure, tear everything down."""
    from kubernetes import client, config

    from emulator.cluster import Cluster, World

    prefix = sc.vswitches[0].cidr.split("/")[1]
    cluster = Cluster(workdir=workdir, nodes=sc.nodes,
                      world=World(pod_cidr=f"192.168.16.0/{prefix}"),
                      eni_conf=cluster_eni_conf(sc))
    api_log = logging.getLogger("emulator.api")
    calls = CallLog()
    level, propagate = api_log.level, api_log.propagate
    try:
        cluster.up()
        log("test bed: up in " + ", ".join(f"{k} {v:.0f} s" for k, v in cluster.timings.items()))
        cluster.cloud.attach_delay = sc.attach_delay
        cluster.cloud.detach_delay = sc.detach_delay
        rules = latency_rules(sc.latency)
        _post_json(f"{cluster.server.url}/_emulator/faults", rules)
        api_log.addHandler(calls)
        api_log.setLevel(logging.DEBUG)
        api_log.propagate = False        # the emulator's own stderr lines stay as they were
        _wait_quiet(calls, log)
        api = client.CoreV1Api(config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(cluster.kubeconfig)))
        nodes = [m.spec.name for m in cluster.members]
        pools = _cluster_pools(cluster)
        instances = [m.spec.instance_id for m in cluster.members]
        changes = CloudEvents(cluster.cloud, lambda: instances, time.time)
        replay = Replay(api, plans, nodes)
        until = sc.duration - workload_start(sc)
        log(f"test bed: replaying {len(plans)} pods over {until:.0f} s")
        replay.run(until, log)
        end = time.time()
        window = calls.between(replay.start, end)
        by_action = Counter(a for _, a, _ in window)
        errors = Counter(f"{a} {c}" for _, a, c in window if c != "OK")
        ready, failures, failed_pods = _network_ready(api, {p.name for p in plans})
        late = sorted(replay.late)
        notes: dict[str, Any] = {
            "pools_at_start": pools,
            "replay_late_p50_s": round(quantile(late, 0.5), 4) if late else None,
            "replay_late_max_s": round(late[-1], 4) if late else None,
            "replay_errors": replay.errors[:20],
            "api_errors": dict(errors),
            "pods_without_address": sorted({p.name for p in plans} - set(ready))[:50],
            "failed_pods": failed_pods[:50],
            "eni_conf": cluster.eni_conf_doc(),
            "latency_rules": rules,
            "call_timeline": [(round(t - replay.start, 3), a) for t, a, _ in window],
        }
        notes["cloud_events"] = changes.since(replay.start)
        changes.unsubscribe()
        notes["cni_add"], notes["cni_del"] = cni_times(workdir / "logs", plans)
        _save_terwayd_logs(cluster, workdir / "logs")
        return Side("test bed", dict(sorted(by_action.items())), ready, failures, notes)
    finally:
        api_log.removeHandler(calls)
        api_log.setLevel(level)
        api_log.propagate = propagate
        cluster.down()


def _epoch(stamp: str) -> float:
    """An RFC 3339 UTC time as the audit log and containerd write it (nanoseconds cut to µs)."""
    from datetime import datetime

    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6]:0<6}+00:00").timestamp()


def cni_times(logs: Path, plans: list[PodPlan]) -> tuple[dict[str, float], dict[str, float]]:
    """When each pod's CNI ADD reached terwayd and its CNI DEL was done on the test bed, as
    offsets from the workload start, from two logs with microsecond times:

    - ADD: the API server's audit log has terwayd's GET of the pod, the first thing its AllocIP
      does (``service._pod_meta``); minus the bench's create of the pod, plus the schedule's
      creation offset;
    - DEL: containerd's ``TearDown network for sandbox … successfully`` (the CNI DEL answered:
      terwayd's release is durable), or terwayd's GC releasing the pod first (its GET of the
      pod answered 404: the pod object goes at once, grace period 0, while the kubelet is still
      stopping it), whichever came first; minus the bench's delete (audit log), plus the
      schedule's deletion offset.
    """
    by_name = {p.name: p for p in plans}
    created: dict[str, float] = {}
    deleted: dict[str, float] = {}
    add: dict[str, float] = {}
    gc: dict[str, float] = {}
    with open(logs / "audit.log", encoding="utf-8") as fh:
        for line in fh:
            if f'"namespace":"{NAMESPACE}"' not in line:
                continue
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            name = ref.get("name")
            if ref.get("resource") != "pods" or name not in by_name or ref.get("subresource"):
                continue
            at = _epoch(entry["requestReceivedTimestamp"])
            user = entry.get("user", {}).get("username", "")
            verb = entry.get("verb")
            if verb == "create" and name not in created:
                created[name] = at
            elif verb == "delete" and name not in deleted:
                deleted[name] = at
            elif verb == "get" and user.endswith(":terway"):
                if name not in add:
                    add[name] = at
                elif code(entry) == 404 and name in deleted and name not in gc:
                    gc[name] = at       # terwayd's GC found the pod gone: released now
    sandbox: dict[str, str] = {}
    teardown: dict[str, float] = {}
    returns = re.compile(r'time="([^"]+)".*RunPodSandbox for &PodSandboxMetadata\{Name:([^,]+),'
                         r'.*returns sandbox id \\"([0-9a-f]+)\\"')
    torn = re.compile(r'time="([^"]+)".*TearDown network for sandbox \\"([0-9a-f]+)\\" '
                      r'successfully')
    for path in sorted(logs.glob("*/containerd.log")):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = returns.search(line)
                if m and m[2] in by_name:
                    sandbox[m[3]] = m[2]
                    continue
                m = torn.search(line)
                if m and m[2] in sandbox and sandbox[m[2]] not in teardown:
                    teardown[sandbox[m[2]]] = _epoch(m[1])
    arrivals = {n: by_name[n].create + add[n] - created[n] for n in add if n in created}
    departures = {n: float(by_name[n].delete or 0.0) + min(teardown[n], gc.get(n, math.inf))
                  - deleted[n] for n in teardown if n in deleted and by_name[n].delete is not None}
    return arrivals, departures


def code(entry: Mapping[str, Any]) -> int:
    return int((entry.get("responseStatus") or {}).get("code") or 0)


def _save_terwayd_logs(cluster: Any, logs: Path) -> None:
    """Each node's terwayd log, kept in the workdir's logs/ after the teardown (the pods' own
    logs go with the nodes)."""
    out = cluster.kubectl("-n", "kube-system", "get", "pods", "-l", "app=terway-eniip",
                          "-o", "json", check=False).stdout
    for pod in json.loads(out or '{"items": []}')["items"]:
        name, node = pod["metadata"]["name"], pod["spec"].get("nodeName", "")
        text = cluster.kubectl("-n", "kube-system", "logs", name, "-c", "terway",
                               check=False, timeout=60).stdout
        (logs / f"terwayd-{node}.log").write_text(text)


def _wait_quiet(calls: CallLog, log: Callable[[str], None], limit: float = 120.0) -> None:
    """Until no API call for QUIET_SECONDS (the pools filled at bring-up)."""
    start = time.time()
    while time.time() - start < limit:
        if time.time() - max(calls.last(), start) >= QUIET_SECONDS:
            return
        time.sleep(1.0)
    log(f"test bed: API calls went on for {limit:.0f} s after bring-up; going on anyway")


def _cluster_pools(cluster: Any) -> dict[str, list[int]]:
    out = {}
    for i, member in enumerate(cluster.members):
        enis = [e for e in cluster.cloud.describe_network_interfaces(
            instance_id=member.spec.instance_id) if e.eni_type != "Primary"]
        out[f"node {i}"] = sorted(len(e.private_ips) for e in enis)
    return out


def _network_ready(api: Any, names: set[str]) -> tuple[dict[str, float], int, list[str]]:
    """terwayd's AllocIPSucceed events: pod → seconds its ADD took (the first success);
    failures: AllocIPFailed events and kubelet's FailedCreatePodSandBox."""
    ready: dict[str, float] = {}
    failures = 0
    failed: list[str] = []
    cont = None
    while True:
        page = api.list_namespaced_event(NAMESPACE, limit=500, _continue=cont)
        for ev in page.items:
            name = ev.involved_object.name
            if name not in names:
                continue
            if ev.reason == "AllocIPSucceed":
                m = TOOK.search(ev.message or "")
                if m and name not in ready:
                    ready[name] = float(m.group(1)) / 1000.0
            elif ev.reason in ("AllocIPFailed", "FailedCreatePodSandBox"):
                failures += int(ev.count or 1)
                failed.append(name)
        cont = page.metadata._continue
        if not cont:
            return ready, failures, sorted(set(failed))


# -- the comparison -----------------------------------------------------------------------------

def compare(ens: Ensemble, bed: Side, tolerance: Mapping[str, float] = TOLERANCE
            ) -> list[dict[str, Any]]:
    """Each measure: the simulator's median over the ensemble (and its range) against the test
    bed's one run. ``ratio`` = median / test bed; ``within``: the ratio is within the
    tolerance; ``in_range``: the test bed's value is one the simulator produces for this
    workload, give or take the tolerance (min * (1 - tol) <= test bed <= max * (1 + tol)).
    Either also holds within the measure's absolute ``SLACK``."""
    b = bed.figures()
    rows = []
    for key, tol in tolerance.items():
        st, bed_value, slack = ens.stats(key), b[key], SLACK.get(key, 0.0)
        ratio = st["median"] / bed_value if bed_value and not math.isnan(bed_value) else math.nan
        within = not math.isnan(ratio) and (abs(ratio - 1) <= tol
                                            or abs(st["median"] - bed_value) <= slack)
        low, high = min(st["min"] * (1 - tol), st["min"] - slack), max(st["max"] * (1 + tol),
                                                                         st["max"] + slack)
        rows.append({"measure": key, "simulator": _r(st["median"]), "min": _r(st["min"]),
                     "max": _r(st["max"]), "test_bed": _r(bed_value), "ratio": _r(ratio),
                     "tolerance": tol, "slack": slack, "within": bool(within),
                     "in_range": bool(low <= bed_value <= high)})
    return rows


def verdict(comparison: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """The checks that fail (empty: the run passes): ``CHECKS`` against the rows."""
    failed = []
    for which, measure, kind in CHECKS:
        row = next(r for r in comparison.get(which, []) if r["measure"] == measure)
        if not row[kind]:
            failed.append(f"{which}: {measure}: {kind.replace('_', ' ')}: simulator "
                          f"{row['simulator']} ({row['min']} to {row['max']}), test bed "
                          f"{row['test_bed']}, tolerance {row['tolerance']:.0%}")
    return failed


def _r(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else round(x, 4)


def lags(plans: list[PodPlan], times: Mapping[str, float], *, delete: bool = False
         ) -> dict[str, float | None]:
    """How long after the API create (delete) the CNI ADD (DEL) came: quantiles in seconds."""
    xs = sorted(times[p.name] - (p.create if not delete else p.delete or 0.0) for p in plans
                if p.name in times)
    return {f"p{q * 100:g}": _r(quantile(xs, q)) for q in (0.5, 0.9, 1.0)}


UNIT = {"api_calls_per_pod": "", "p50_network_ready": " s", "p99_network_ready": " s"}


def report(sc: Scenario, plans: list[PodPlan], ensembles: list[Ensemble], bed: Side | None,
           comparison: Mapping[str, list[dict[str, Any]]], failed: list[str]) -> str:
    seeds = len(ensembles[0].runs)
    lines = [f"# Simulator vs. test bed: `{sc.name}`", "",
             f"{len(plans)} pods on {sc.nodes} nodes, seed {sc.seed}, window "
             f"{workload_start(sc):g} s to {sc.duration:g} s of the scenario; simulator "
             f"setup_time {sc.kubelet.setup_time * 1000:g} ms; each simulator column is the "
             f"median over {seeds} seeds ({sc.seed} to {sc.seed + seeds - 1}) [min to max].", ""]
    head = [e.name for e in ensembles] + (["test bed"] if bed is not None else [])
    lines += ["| measure | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for key in TOLERANCE:
        cells = []
        for e in ensembles:
            st = e.stats(key)
            cells.append(f"{_fmt(st['median'])}{UNIT[key]} [{_fmt(st['min'])} to "
                         f"{_fmt(st['max'])}]")
        if bed is not None:
            cells.append(f"{_fmt(bed.figures()[key])}{UNIT[key]}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    sides = [e.runs[0] for e in ensembles] + ([bed] if bed is not None else [])
    lines += ["", f"Calls in the window, the simulations at seed {sc.seed}:", "",
              "| | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|",
              "| pods with an address | " + " | ".join(str(x.pods_ready) for x in sides) + " |",
              "| CNI failures | " + " | ".join(str(x.cni_failures) for x in sides) + " |",
              "| API calls | " + " | ".join(str(x.calls_total) for x in sides) + " |"]
    for action in sorted({a for x in sides for a in x.calls}):
        lines.append(f"| {action} | " + " | ".join(str(x.calls.get(action, 0)) for x in sides)
                     + " |")
    lines.append("| pools at the window's start (addresses per secondary ENI) | "
                 + " | ".join(_pools(x.notes["pools_at_start"]) for x in sides) + " |")
    for which, rows in comparison.items():
        lines += ["", f"{which} against the test bed:", "",
                  "| measure | simulator (median) | range | test bed | median / test bed | "
                  "tolerance | median within | test bed in range |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            u = UNIT[r["measure"]]
            lines.append(f"| {r['measure']} | {_fmt(r['simulator'])}{u} | {_fmt(r['min'])} to "
                         f"{_fmt(r['max'])}{u} | {_fmt(r['test_bed'])}{u} | {_fmt(r['ratio'])} | "
                         f"±{r['tolerance'] * 100:g} %{_slack(r)} | {_yes(r['within'])} | "
                         f"{_yes(r['in_range'])} |")
    if bed is not None:
        add, dele = bed.notes.get("cni_add", {}), bed.notes.get("cni_del", {})
        burst = [p for p in plans if _burst(sc, p)]
        lines += ["", "On the test bed the CNI ADD reached terwayd "
                  f"{_lags(lags(plans, add))} after the pod was created (the burst's: "
                  f"{_lags(lags(burst, add))}), and the pod's address was released "
                  f"{_lags(lags(plans, dele, delete=True))} after it was deleted; the "
                  f"simulator's kubelet makes the ADD {sc.kubelet.add_delay:g} s + "
                  f"{sc.kubelet.add_delay_per_sandbox:g} s per sandbox being set up on the node "
                  f"after the create, and the DEL {sc.kubelet.del_delay:g} s after the delete.",
                  "",
                  "Checks (" + ", ".join(f"{w}: {m} {k.replace('_', ' ')}"
                                         for w, m, k in CHECKS) + "): "
                  + ("all hold." if not failed else "FAILED: " + "; ".join(failed)), ""]
        notes = {k: v for k, v in bed.notes.items()
                 if k in ("replay_late_p50_s", "replay_late_max_s", "replay_errors",
                          "api_errors", "pods_without_address", "failed_pods")}
        lines += ["Test bed notes: `" + json.dumps(notes) + "`"]
    return "\n".join(lines) + "\n"


def _slack(row: Mapping[str, Any]) -> str:
    slack = row.get("slack") or 0.0
    return f" or ±{slack * 1000:g} ms" if slack else ""


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _burst(sc: Scenario, plan: PodPlan) -> bool:
    return any(w.kind == "burst" and plan.name.startswith(f"{w.name}-") for w in sc.workload)


def _lags(q: Mapping[str, float | None]) -> str:
    return ", ".join(f"{k} {_fmt(v)} s" for k, v in q.items())


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _pools(p: Mapping[str, Iterable[int]]) -> str:
    return "; ".join(f"{k}: {list(v)}" for k, v in p.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", default=str(SCENARIO), help="the workload (a scenario file)")
    ap.add_argument("--out", type=Path, default=Path("out/sim-vs-cluster"),
                    help="where report.md and result.json go")
    ap.add_argument("--workdir", type=Path, default=WORKDIR, help="the test bed's workdir")
    ap.add_argument("--seeds", type=int, default=SEEDS, help="simulations per ensemble")
    ap.add_argument("--sim-only", action="store_true",
                    help="the simulator side only (no root, no test bed)")
    args = ap.parse_args(argv)
    try:
        sc = load_scenario(args.scenario)
    except ValueError as exc:
        print(f"sim_vs_cluster: {exc}", file=sys.stderr)
        return 2
    problems = check_fits_test_bed(sc) + ([] if args.seeds >= 1 else ["--seeds: at least 1"])
    if problems:
        print("sim_vs_cluster: " + "; ".join(problems), file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sim, plans = simulate(sc)
    f = sim.figures()
    log(f"simulator: {len(plans)} pods, {sim.calls_total} calls in the window, "
        f"{f['api_calls_per_pod']:.3f} per pod, p50 {f['p50_network_ready']:.3f} s, "
        f"p99 {f['p99_network_ready']:.3f} s")
    plain = ensemble(sc, plans, *at_creation(plans), PLAIN, args.seeds, own_kubelet=True)
    ensembles, bed = [plain], None
    comparison: dict[str, list[dict[str, Any]]] = {}
    if not args.sim_only:
        bed = on_test_bed(sc, plans, args.workdir, log)
        timed = ensemble(sc, plans, bed.notes["cni_add"], bed.notes["cni_del"], TIMED,
                         args.seeds)
        ensembles = [plain, timed]
        comparison = {TIMED: compare(timed, bed), PLAIN: compare(plain, bed)}
    failed = verdict(comparison) if comparison else []
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(report(sc, plans, ensembles, bed, comparison, failed))
    result = {
        "scenario": sc.name, "seed": sc.seed, "window": [workload_start(sc), sc.duration],
        "tolerance": TOLERANCE, "checks": [list(c) for c in CHECKS], "failed": failed,
        "comparison": comparison,
        "ensembles": {e.name: [{k: _r(v) for k, v in r.figures().items()} for r in e.runs]
                      for e in ensembles},
        "simulator": _side_json(sim),
        "simulator_timed": _side_json(ensembles[1].runs[0]) if bed is not None else None,
        "test_bed": _side_json(bed), "schedule": [asdict(p) for p in plans],
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    print((args.out / "report.md").read_text())
    return 1 if failed else 0


def _side_json(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {"name": side.name, "figures": {k: _r(v) for k, v in side.figures().items()},
            "pods_ready": side.pods_ready, "cni_failures": side.cni_failures,
            "calls": side.calls, "calls_total": side.calls_total,
            "network_ready": {k: round(v, 4) for k, v in sorted(side.network_ready.items())},
            "notes": side.notes}


if __name__ == "__main__":
    sys.exit(main())
