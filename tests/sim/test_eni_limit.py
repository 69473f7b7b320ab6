"""The simulator runs the daemon's per-ENI limiters (terway.ipam.enilimit): upstream's 10 a minute,
bursts of 2, on AssignPrivateIpAddresses per ENI. Pods arriving faster than that on one ENI make
the third assign wait until six seconds after the first."""

from __future__ import annotations

import dataclasses
from typing import Any

from simulator.engine import Run
from simulator.policies import runtime_for
from simulator.scenario import parse_scenario

WINDOW = 6.0   # three assigns on one ENI never within less than this (burst 2, one per 6 s)


def _doc(policy: str) -> dict[str, Any]:
    return {
        "name": "eni-limit", "seed": 3, "duration": "2m",
        "cluster": {"zone": "cn-hangzhou-k", "nodes": 1, "instance_type": "ecs.g6.xlarge",
                    "vswitches": [{"id": "vsw-a", "cidr": "10.0.0.0/24"}]},
        "eni_conf": {"min_pool_size": 0, "max_pool_size": 0,
                     "vswitches": {"cn-hangzhou-k": ["vsw-a"]}},
        "policy": {"kind": policy},
        "latency": {"default": 0.0},
        "kubelet": {"setup_time": 0.05},
        "expectations": ["invariant_violations == 0"],
    }


class Assigns:
    """The cloud, recording when each AssignPrivateIpAddresses reached it, per ENI."""

    def __init__(self, inner: Any, run: Run) -> None:
        self.inner, self.run = inner, run
        self.at: dict[str, list[float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        self.at.setdefault(eni_id, []).append(self.run.env.now)
        return list(self.inner.assign_private_ips(eni_id, count))


def _assign_times(limited: bool) -> dict[str, list[float]]:
    run = Run(parse_scenario(_doc("terway")), eager_tick=True)
    if not limited:
        run.policy_runtime = dataclasses.replace(run.policy_runtime, per_eni_limit=None)
    rec = Assigns(run.cloud, run)
    run.cloud = rec
    run.add_nodes(1)
    for i in range(8):             # a pod every 0.7 s: each batch window serves one
        run.env.timeout(1.0 + 0.7 * i).callbacks.append(
            lambda _e, k=f"default/p-{i}": run.cluster.create(k, lifetime=600.0))
    run.env.run(until=run.scenario.duration)
    return rec.at


def _tightest(times: dict[str, list[float]]) -> float:
    """The shortest span of three consecutive assigns on one ENI."""
    return min(t[i + 2] - t[i] for t in times.values() for i in range(len(t) - 2))


def test_three_assigns_on_one_eni_are_six_seconds_apart() -> None:
    times = _assign_times(limited=True)
    assert max(len(t) for t in times.values()) >= 3
    assert _tightest(times) >= WINDOW - 1e-9


def test_without_the_limiter_they_come_faster() -> None:
    """The check above can fail: the same pods without the limiter."""
    assert _tightest(_assign_times(limited=False)) < WINDOW


def test_terway_and_upstream_policies_limit_other_cnis_do_not() -> None:
    assert runtime_for("terway", {}).per_eni_limit == runtime_for("upstream", {}).per_eni_limit \
        == (10.0, 2)
    assert runtime_for("aws", {}).per_eni_limit is None
    assert runtime_for("cilium", {}).per_eni_limit is None
