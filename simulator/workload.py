"""Workload generators: Poisson churn, bursts, Deployments scaling, StatefulSets (ordered, sticky).

Each generator schedules its own next action with a simpy timeout callback; one seeded RNG per
workload keeps runs reproducible whatever else the scenario contains.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import simpy

from simulator.kubelet import GONE, RUNNING, Cluster, Pod
from simulator.scenario import WorkloadSpec

if TYPE_CHECKING:
    from simulator.node import SimNode


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
    """Pods ``name-0..n-1`` as Kubernetes' StatefulSet controller manages them by default
    (``podManagementPolicy: OrderedReady``, ``updateStrategy: RollingUpdate``): stable names,
    sticky addresses, and order. Why it matters to a pool: a StatefulSet asks for one address
    at a time, each after the previous pod is Ready, so its start-up time is the sum of the
    pods' network-ready times, and a rollout frees and retakes one sticky address at a time.

    - creation: the lowest missing ordinal is created only when every lower one is Ready
      (Running and its datapath set up); scaling up goes 0, 1, 2, … one at a time;
    - scaling down: once every pod below the target is Ready, the highest ordinal first;
    - a pod gone (``restart_every``, a removed node) is recreated with the same name, on the
      same node while it is alive (the core keeps its address for ``ip_sticky_ttl``), in order;
    - ``rollouts``: at each time the template changes; pods are replaced from the highest
      ordinal down, one at a time, each only after the previous replacement is Ready.
    """

    RETRY = 10.0        # an unschedulable pod is tried again after this (the controller's resync)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.live: dict[int, Pod] = {}
        self.ready: set[int] = set()
        self.revision = 0
        self.revision_of: dict[int, int] = {}
        self.home: dict[int, SimNode] = {}       # where a gone pod comes back
        self._busy = self._again = self._retrying = False

    def start(self) -> None:
        super().start()
        for at in self.spec.rollouts:
            self._at(at, self.rollout)

    def scale(self, replicas: int) -> None:
        self.target = replicas
        self._reconcile()

    def rollout(self) -> None:
        """A new template: every pod is replaced, highest ordinal first."""
        self.revision += 1
        self._reconcile()

    def _reconcile(self) -> None:
        """Run the controller until it waits; a call from inside it (a pod it deleted is
        gone) only asks for one more pass."""
        self._again = True
        if self._busy:
            return
        self._busy = True
        try:
            while self._again:
                self._again = False
                self._step()
        finally:
            self._busy = False

    def _step(self) -> None:
        """One pass: create the first missing pod, or stop at the first not Ready; then delete
        the highest pod above the target, else the highest of an old revision."""
        for ordinal in range(self.target):
            if ordinal not in self.live:
                self._add(ordinal)
                return
            if ordinal not in self.ready:
                return
        surplus = [o for o in self.live if o >= self.target]
        stale = [o for o in self.live if self.revision_of[o] != self.revision]
        if surplus or stale:
            self.cluster.delete(self.live[max(surplus or stale)])

    def _add(self, ordinal: int) -> None:
        spec = self.spec
        life = spec.restart_every.sample(self.rng) if spec.restart_every is not None else None
        pod = self.cluster.create(f"default/{spec.name}-{ordinal}", sticky=True, lifetime=life,
                                  on_gone=lambda p: self._gone(ordinal, p),
                                  on_ready=lambda p: self._on_address(ordinal, p),
                                  prefer=self.home.get(ordinal))
        if pod is None:
            if not self._retrying:
                self._retrying = True
                self._at(self.env.now + self.RETRY, self._resync)
            return
        self.live[ordinal] = pod
        self.revision_of[ordinal] = self.revision

    def _resync(self) -> None:
        self._retrying = False
        self._reconcile()

    def _on_address(self, ordinal: int, pod: Pod) -> None:
        """Ready once the datapath is set up (network-ready), then the controller goes on."""
        def ready() -> None:
            if self.live.get(ordinal) is pod and pod.state == RUNNING:
                self.ready.add(ordinal)
                self._reconcile()
        self._at(self.env.now + self.cluster.spec.setup_time, ready)

    def _gone(self, ordinal: int, pod: Pod) -> None:
        if self.live.get(ordinal) is not pod:
            return
        del self.live[ordinal]
        self.ready.discard(ordinal)
        if ordinal < self.target and pod.node is not None and pod.node.alive:
            self.home[ordinal] = pod.node
        else:
            self.home.pop(ordinal, None)
        self._reconcile()


KINDS: dict[str, type[Workload]] = {"churn": Churn, "burst": Burst, "deployment": Deployment,
                                    "statefulset": StatefulSet}


def make_workload(env: simpy.Environment, spec: WorkloadSpec, cluster: Cluster,
                  rng: random.Random, horizon: float) -> Workload:
    return KINDS[spec.kind](env, spec, cluster, rng, horizon)


__all__ = ["GONE", "KINDS", "Workload", "make_workload"]
