"""StatefulSets as Kubernetes runs them by default (OrderedReady, RollingUpdate): one pod at a
time, each after the previous is Ready; a pod not Ready holds back the ones above it; scale-down
and rollouts go from the highest ordinal down, one at a time; a replaced pod keeps its name,
node and address."""

from __future__ import annotations

import copy
import random
from types import SimpleNamespace
from typing import Any

import simpy

from simulator.engine import Run
from simulator.kubelet import GONE, RUNNING, Pod
from simulator.scenario import WorkloadSpec, parse_scenario
from simulator.workload import StatefulSet
from tests.sim.conftest import MINI

SETUP = 0.05


class FakeCluster:
    """Creates and deletes pods on demand; the test says when each has its address."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.spec = SimpleNamespace(setup_time=SETUP)
        self.log: list[str] = []
        self.pods: dict[str, Pod] = {}

    def create(self, key: str, **kw: Any) -> Pod:
        pod = Pod(key, self.env.now, kw["sticky"], kw["lifetime"], kw["on_gone"], kw["on_ready"])
        self.pods[key] = pod
        self.log.append(f"+{key.rsplit('-', 1)[1]}")
        return pod

    def delete(self, pod: Pod) -> None:
        pod.state = GONE
        self.log.append(f"-{pod.key.rsplit('-', 1)[1]}")
        assert pod.on_gone is not None
        pod.on_gone(pod)

    def ready(self, ordinal: int) -> None:
        """Pod ``ordinal`` gets its address; it is Ready once set up."""
        pod = self.pods[f"default/db-{ordinal}"]
        pod.state = RUNNING
        assert pod.on_ready is not None
        pod.on_ready(pod)
        self.env.run(until=self.env.now + SETUP + 0.01)


def make(replicas: int, rollouts: tuple[float, ...] = ()) -> tuple[StatefulSet, FakeCluster]:
    env = simpy.Environment()
    cluster = FakeCluster(env)
    spec = WorkloadSpec("statefulset", "db", replicas=replicas, rollouts=rollouts)
    sts = StatefulSet(env, spec, cluster, random.Random(1), 3600.0)
    sts.start()
    env.run(until=0.001)
    return sts, cluster


def ready_all(sts: StatefulSet, cluster: FakeCluster) -> None:
    while missing := [o for o in sts.live if o not in sts.ready]:
        cluster.ready(missing[0])


def test_each_pod_is_created_only_once_the_previous_is_ready() -> None:
    _, cluster = make(3)
    assert cluster.log == ["+0"]
    cluster.pods["default/db-0"].state = RUNNING       # an address, not yet set up
    cluster.pods["default/db-0"].on_ready(cluster.pods["default/db-0"])   # type: ignore[misc]
    assert cluster.log == ["+0"]                       # not Ready until the datapath is up
    cluster.env.run(until=cluster.env.now + SETUP + 0.01)
    assert cluster.log == ["+0", "+1"]
    cluster.ready(1)
    assert cluster.log == ["+0", "+1", "+2"]


def test_a_pod_not_ready_holds_back_the_ones_above_it() -> None:
    sts, cluster = make(3)
    ready_all(sts, cluster)
    cluster.delete(cluster.pods["default/db-1"])       # restarted: recreated at once, in order
    assert cluster.log[-2:] == ["-1", "+1"]
    sts.scale(5)
    assert cluster.log[-1] == "+1", "db-3 waits for db-1 to be Ready again"
    cluster.ready(1)
    assert cluster.log[-1] == "+3"


def test_scale_down_removes_the_highest_ordinals_first() -> None:
    sts, cluster = make(4)
    ready_all(sts, cluster)
    sts.scale(1)
    assert cluster.log[-3:] == ["-3", "-2", "-1"] and sorted(sts.live) == [0]


def test_a_rollout_replaces_pods_from_the_highest_down_one_at_a_time() -> None:
    sts, cluster = make(3, rollouts=(100.0,))
    ready_all(sts, cluster)
    cluster.env.run(until=100.001)
    assert cluster.log[-2:] == ["-2", "+2"]            # db-1 waits for the new db-2
    cluster.ready(2)
    assert cluster.log[-2:] == ["-1", "+1"]
    cluster.ready(1)
    cluster.ready(0)
    assert cluster.log[3:] == ["-2", "+2", "-1", "+1", "-0", "+0"]
    assert set(sts.revision_of.values()) == {1}


def test_in_a_run_order_holds_and_a_rolled_pod_keeps_its_node_and_address() -> None:
    doc = copy.deepcopy(MINI)
    doc.update(duration="8m", workload=[{"kind": "statefulset", "name": "db", "replicas": 4,
                                         "rollouts": ["4m"]}],
               invariants={"check_interval": "1m", "history": 1000})
    run = Run(parse_scenario(doc))
    run.execute()
    events = [(t, kind, what.split()) for t, _, kind, what in run.hist.events
              if kind.startswith("pod-")]
    ready = {w[0]: (t, w[1]) for t, k, w in events if k == "pod-ready" and t < 240}
    created = [(t, w[0]) for t, k, w in events if k == "pod-create" and t < 240]
    for i in range(1, 4):
        t_create = next(t for t, key in created if key == f"default/db-{i}")
        assert t_create >= ready[f"default/db-{i - 1}"][0] + SETUP - 1e-9
    rolled = [(k, w[0]) for t, k, w in events if t >= 240]
    assert [key for k, key in rolled if k == "pod-delete"] == [f"default/db-{i}"
                                                               for i in (3, 2, 1, 0)]
    after = {w[0]: w[1] for t, k, w in events if k == "pod-ready" and t >= 240}
    assert after == {key: ip for key, (_, ip) in ready.items()}, "same addresses after"
    nodes = [{what.split()[0]: node for t, node, kind, what in run.hist.events
              if kind == "pod-create" and (t < 240) == early} for early in (True, False)]
    assert nodes[0] == nodes[1], "same nodes after"
