"""The kubelet's ADD and DEL delays (``kubelet.add_delay``, ``add_delay_per_sandbox``,
``del_delay``): a real kubelet makes the CNI ADD once the sandbox exists, a burst's ADDs trickle
in, and the address comes back only after the containers stopped (docs/sim-vs-cluster.md
measured them on the Kubernetes test bed). All times here are simulated."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.engine import Run
from simulator.kubelet import Cluster, Pod
from simulator.node import SimNode
from simulator.scenario import SpecError, load_scenario, parse_scenario
from tests.sim.conftest import MINI, load_doc


def _one_node_burst(kubelet: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {**MINI, "kubelet": kubelet}
    doc["cluster"] = {**MINI["cluster"], "nodes": 1}
    doc["workload"] = [{"kind": "burst", "name": "b", "at": "1m", "count": 5,
                        "lifetime": {"dist": "uniform", "low": "2m", "high": "2m"}}]
    return doc


def _record(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[float, str]]:
    """When each node saw ``request`` (the CNI ADD) or ``release`` (the DEL), by pod."""
    seen: list[tuple[float, str]] = []
    real = getattr(SimNode, name)

    def spy(self: SimNode, pod_key: str, *args: Any) -> Any:
        seen.append((self.env.now, pod_key))
        return real(self, pod_key, *args)
    monkeypatch.setattr(SimNode, name, spy)
    return seen


def test_by_default_the_add_and_del_come_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    adds, dels = _record(monkeypatch, "request"), _record(monkeypatch, "release")
    Run(parse_scenario(_one_node_burst({}))).execute()
    assert sorted({t for t, _ in adds}) == [60.0]
    assert len(dels) == 5 and all(t == pytest.approx(180.0, abs=1.0) for t, _ in dels)


def test_a_bursts_adds_trickle_in_one_sandbox_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    adds = _record(monkeypatch, "request")
    Run(parse_scenario(_one_node_burst({"add_delay": "300ms",
                                        "add_delay_per_sandbox": "100ms"}))).execute()
    firsts = sorted(t for t, _ in adds)[:5]
    assert firsts == pytest.approx([60.3, 60.4, 60.5, 60.6, 60.7])


def test_network_ready_counts_from_the_add_not_the_creation() -> None:
    slow = Run(parse_scenario(_one_node_burst({"add_delay": "30s"}))).execute()
    fast = Run(parse_scenario(_one_node_burst({}))).execute()
    assert sorted(slow.collector.latencies) == pytest.approx(sorted(fast.collector.latencies))


def test_the_address_comes_back_del_delay_after_the_delete(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dels = _record(monkeypatch, "release")
    deleted: dict[str, float] = {}
    real = Cluster.delete

    def delete(self: Cluster, pod: Pod) -> None:
        deleted[pod.key] = self.env.now
        real(self, pod)
    monkeypatch.setattr(Cluster, "delete", delete)
    Run(parse_scenario(_one_node_burst({"del_delay": "2s"}))).execute()
    assert len(dels) == 5
    for t, key in dels:
        assert t == pytest.approx(deleted[key] + 2.0)


def test_statefulsets_with_both_delays_keep_every_invariant() -> None:
    """A replaced StatefulSet pod has the old one's name: the old DEL, coming late, must not
    take the replacement's address away."""
    doc = load_doc("statefulset")
    doc["kubelet"] = {**doc.get("kubelet", {}), "add_delay": "300ms",
                      "add_delay_per_sandbox": "130ms", "del_delay": "2s"}
    doc["duration"] = "1h"
    result = Run(parse_scenario(doc)).execute()
    assert result.violation is None
    assert result.collector.pods_ready > 50


@pytest.mark.parametrize("key", ["add_delay", "add_delay_per_sandbox", "del_delay"])
def test_a_negative_delay_is_refused_by_name(key: str) -> None:
    with pytest.raises(SpecError, match=f"kubelet.{key}"):
        parse_scenario(_one_node_burst({key: -1}))


def test_the_sim_vs_cluster_scenario_models_the_test_beds_kubelet() -> None:
    sc = load_scenario("sim-vs-cluster")
    assert sc.kubelet.add_delay > 0 and sc.kubelet.del_delay > 0
