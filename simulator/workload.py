"""Workload generators: Poisson churn, bursts, Deployments scaling, StatefulSets with stickiness.

Each generator schedules its own next action with a simpy timeout callback; one seeded RNG per
workload keeps runs reproducible whatever else the scenario contains.
"""

from __future__ import annotations

import random

import simpy

from simulator.kubelet import GONE, Cluster, Pod
from simulator.scenario import WorkloadSpec


class Workload:
    def __init__(self, env: simpy.Environment, spec: WorkloadSpec, cluster: Cluster,
                 rng: random.Random, horizon: float) -> None:
        self.env = env
        self.spec = spec
        self.cluster = cluster
        self.rng = rng
        self.horizon = horizon if spec.stop is None else min(horizon, spec.stop)
        self.seq = 0

    def start(self) -> None:
        raise NotImplementedError

    def scale(self, replicas: int) -> None:
        raise ValueError(f"workload {self.spec.name!r} ({self.spec.kind}) cannot be scaled")

    def _at(self, t: float, fn: object) -> None:
        delay = max(0.0, t - self.env.now)
        self.env.timeout(delay).callbacks.append(lambda _e: fn())  # type: ignore[operator]


class Churn(Workload):
    """Pods arrive as a Poisson process at ``rate`` per second and live ``lifetime``."""

    def start(self) -> None:
        if self.spec.rate > 0:
            self._at(self.spec.start + self.rng.expovariate(self.spec.rate), self._arrive)

    def _arrive(self) -> None:
        spec, rng, env = self.spec, self.rng, self.env
        self.seq += 1
        assert spec.lifetime is not None
        self.cluster.create(f"default/{spec.name}-{self.seq}", lifetime=spec.lifetime.sample(rng))
        nxt = env.now + rng.expovariate(spec.rate)
        if nxt < self.horizon:
            env.timeout(nxt - env.now).callbacks.append(lambda _e: self._arrive())


class Burst(Workload):
    """``count`` pods at once at ``start`` (a job fan-out, a batch of replicas)."""

    def start(self) -> None:
        self._at(self.spec.start, self._fire)

    def _fire(self) -> None:
        spec = self.spec
        for _ in range(spec.replicas):
            self.seq += 1
            life = spec.lifetime.sample(self.rng) if spec.lifetime is not None else None
            self.cluster.create(f"default/{spec.name}-{self.seq}", lifetime=life)


class _Scaled(Workload):
    """A controller with a replica count: scaled to ``replicas`` at start, then by schedule."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.target = 0

    def start(self) -> None:
        self._at(self.spec.start, lambda: self.scale(self.spec.replicas))
        for at, n in self.spec.schedule:
            self._at(at, lambda n=n: self.scale(n))


class Deployment(_Scaled):
    """A ReplicaSet: keeps ``replicas`` pods, replaces lost ones, scales down newest first."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.live: dict[str, Pod] = {}

    def scale(self, replicas: int) -> None:
        self.target = replicas
        while len(self.live) > replicas:
            key = next(reversed(self.live))
            self.cluster.delete(self.live.pop(key))
        while len(self.live) < replicas:
            if not self._add():
                break

    def _add(self, prefer: object = None) -> bool:
        self.seq += 1
        pod = self.cluster.create(f"default/{self.spec.name}-{self.seq}", on_gone=self._gone)
        if pod is None:
            return False
        self.live[pod.key] = pod
        return True

    def _gone(self, pod: Pod) -> None:
        if self.live.pop(pod.key, None) is not None and len(self.live) < self.target:
            self._add()                          # the controller replaces a lost pod


class StatefulSet(_Scaled):
    """Pods ``name-0..n-1``: stable names, sticky IPs, recreated on their node when restarted."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.live: dict[int, Pod] = {}

    def scale(self, replicas: int) -> None:
        self.target = replicas
        for ordinal in sorted(self.live, reverse=True):
            if ordinal >= replicas:
                self.cluster.delete(self.live.pop(ordinal))
        for ordinal in range(replicas):
            if ordinal not in self.live:
                self._add(ordinal, None)

    def _add(self, ordinal: int, prefer: object) -> None:
        spec = self.spec
        life = spec.restart_every.sample(self.rng) if spec.restart_every is not None else None
        def gone(p: Pod) -> None:
            self._gone(ordinal, p)
        pod = self.cluster.create(f"default/{spec.name}-{ordinal}", sticky=True, lifetime=life,
                                  on_gone=gone, prefer=prefer)  # type: ignore[arg-type]
        if pod is not None:
            self.live[ordinal] = pod

    def _gone(self, ordinal: int, pod: Pod) -> None:
        if self.live.get(ordinal) is pod:
            del self.live[ordinal]
            if ordinal < self.target:
                node = pod.node if pod.node is not None and pod.node.alive else None
                self._add(ordinal, node)


KINDS: dict[str, type[Workload]] = {"churn": Churn, "burst": Burst, "deployment": Deployment,
                                    "statefulset": StatefulSet}


def make_workload(env: simpy.Environment, spec: WorkloadSpec, cluster: Cluster,
                  rng: random.Random, horizon: float) -> Workload:
    return KINDS[spec.kind](env, spec, cluster, rng, horizon)


__all__ = ["GONE", "KINDS", "Workload", "make_workload"]
