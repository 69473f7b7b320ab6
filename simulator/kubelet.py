"""Pods and the kubelet: scheduling, sandbox creation through the node's daemon, kubelet backoff.

A pod is ``ContainerCreating`` until its node's daemon hands it an address. The CNI call waits at
most ``cni_timeout``, unless the daemon answers at once that nothing can serve it now
(``terway.ipam.drive.unservable``); on either (or a daemon that is down) the sandbox fails
and kubelet retries after its backoff (by default kubelet's: 10 to 15 s, not growing).
Network-ready latency = address handed out + datapath set-up - the pod's first CNI ADD, which
comes when the pod is created unless ``add_delay`` (the sandbox's set-up) says later; the DEL
comes ``del_delay`` after the pod is deleted. Everything here is callbacks on simpy timeouts: no
process per pod.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from simulator.collectors import Collector
from simulator.invariants import History, Owners
from simulator.scenario import KubeletSpec

if TYPE_CHECKING:
    from simulator.node import SimNode

PENDING, WAITING, BACKOFF, RUNNING, GONE = range(5)


class Pod:
    __slots__ = (
        "asked",
        "attempt",
        "backoff",
        "created",
        "ip",
        "key",
        "lifetime",
        "node",
        "on_gone",
        "on_ready",
        "state",
        "sticky",
        "vswitch",
    )

    def __init__(self, key: str, created: float, sticky: bool, lifetime: float | None,
                 on_gone: Callable[[Pod], None] | None,
                 on_ready: Callable[[Pod], None] | None = None) -> None:
        self.key = key
        self.created = created
        self.sticky = sticky
        self.lifetime = lifetime
        self.on_gone = on_gone
        self.on_ready = on_ready       # told when the pod has its address (a StatefulSet waits)
        self.node: SimNode | None = None
        self.state = PENDING
        self.attempt = 0
        self.asked = created            # the first CNI ADD
        self.backoff = 0.0
        self.ip = ""
        self.vswitch = ""


class Cluster:
    """The scheduler plus every node's kubelet."""

    def __init__(self, env: simpy.Environment, spec: KubeletSpec, collector: Collector,
                 owners: Owners, history: History, rng: random.Random,
                 backoff_rng: random.Random | None = None) -> None:
        self.env = env
        self.backoff_rng = backoff_rng or random.Random(0)
        self.spec = spec
        self.col = collector
        self.owners = owners
        self.hist = history
        self.rng = rng
        self.nodes: list[SimNode] = []
        self.pods: dict[str, Pod] = {}
        self.starting: dict[str, int] = {}     # node → sandboxes being set up (before the ADD)

    # -- scheduling -----------------------------------------------------------------------------
    def pick_node(self, prefer: SimNode | None = None) -> SimNode | None:
        """kube-scheduler, cheaply: the preferred node if it fits, else the emptier of two picks."""
        if prefer is not None and prefer.alive and prefer.pod_count < prefer.max_pods:
            return prefer
        nodes = self.nodes
        if not nodes:
            return None
        rnd = self.rng.random
        best: SimNode | None = None
        for _ in range(8):
            a = nodes[int(rnd() * len(nodes))]
            b = nodes[int(rnd() * len(nodes))]
            n = a if a.pod_count <= b.pod_count else b
            if n.pod_count < n.max_pods:
                return n
            best = best or n
        fits = [n for n in nodes if n.pod_count < n.max_pods]
        return fits[int(rnd() * len(fits))] if fits else None

    # -- life cycle -------------------------------------------------------------------------------
    def create(self, key: str, *, sticky: bool = False, lifetime: float | None = None,
               on_gone: Callable[[Pod], None] | None = None,
               prefer: SimNode | None = None,
               on_ready: Callable[[Pod], None] | None = None) -> Pod | None:
        node = self.pick_node(prefer)
        if node is None:
            return None                          # unschedulable: Pending, not our concern
        pod = Pod(key, self.env.now, sticky, lifetime, on_gone, on_ready)
        pod.node = node
        node.pod_count += 1
        node.waiting += 1
        self.pods[key] = pod
        col = self.col
        col.pods_created += 1
        col.pending += 1
        self.hist.add((self.env.now, node.name, "pod-create", key))
        spec = self.spec
        if spec.add_delay or spec.add_delay_per_sandbox:
            self._set_up_sandbox(pod, node)
        else:
            self._sandbox(pod)
        return pod

    def _set_up_sandbox(self, pod: Pod, node: SimNode) -> None:
        """The CNI ADD once the sandbox exists: ``add_delay``, plus ``add_delay_per_sandbox``
        for each sandbox still being set up on the node (a burst's ADDs trickle in)."""
        busy = self.starting.get(node.name, 0)
        self.starting[node.name] = busy + 1
        delay = self.spec.add_delay + busy * self.spec.add_delay_per_sandbox

        def add(_event: object) -> None:
            self.starting[node.name] -= 1
            if pod.state == PENDING:
                pod.asked = self.env.now
                self.hist.add((pod.asked, node.name, "pod-add", pod.key))
                self._sandbox(pod)
        self.env.timeout(delay).callbacks.append(add)

    def _sandbox(self, pod: Pod) -> None:
        node = pod.node
        assert node is not None
        pod.attempt += 1
        pod.state = WAITING                       # IpReady may arrive inside request()
        result = node.request(pod.key, pod.sticky)
        if result is None:                        # daemon down: the CNI call fails at once
            self._fail(pod)
        elif result is True:                      # pending: wait for IpReady or the timeout
            if pod.state == WAITING:
                attempt = pod.attempt
                self.env.timeout(self.spec.cni_timeout).callbacks.append(
                    lambda _e: self._timeout(pod, attempt))
        else:
            self._ready(pod, result)

    def on_ip_ready(self, key: str, allocation: Any) -> None:
        pod = self.pods.get(key)
        if pod is not None and pod.state == WAITING:
            self._ready(pod, allocation)

    def _ready(self, pod: Pod, allocation: Any) -> None:
        now = self.env.now
        col = self.col
        pod.state = RUNNING
        pod.ip = allocation.ip
        pod.vswitch = allocation.vswitch_id
        self.owners.claim(pod.ip, pod.key, now)
        col.pending -= 1
        if pod.node is not None:
            pod.node.waiting -= 1
        col.running += 1
        col.pods_ready += 1
        col.used[pod.vswitch] = col.used.get(pod.vswitch, 0) + 1
        col.latencies.append(now + self.spec.setup_time - pod.asked)
        self.hist.add((now, pod.node.name if pod.node else "", "pod-ready",
                       f"{pod.key} {pod.ip}"))
        if pod.lifetime is not None:
            self.env.timeout(self.spec.setup_time + pod.lifetime).callbacks.append(
                lambda _e: self.delete(pod))
        if pod.on_ready is not None:
            pod.on_ready(pod)

    def _timeout(self, pod: Pod, attempt: int) -> None:
        if pod.state != WAITING or pod.attempt != attempt:
            return
        if pod.node is not None:
            pod.node.cancel(pod.key)
        self._fail(pod)

    def on_unavailable(self, key: str) -> None:
        """The daemon answered the CNI call at once: no address can be had now (it has
        withdrawn the request); the sandbox fails and kubelet retries later."""
        pod = self.pods.get(key)
        if pod is not None and pod.state == WAITING:
            self._fail(pod)

    def _fail(self, pod: Pod) -> None:
        """Sandbox creation failed: kubelet retries after its backoff."""
        self.col.cni_failures += 1
        pod.state = BACKOFF
        spec = self.spec
        pod.backoff = spec.backoff_initial if pod.backoff == 0 else min(spec.backoff_max,
                                                                           pod.backoff * 2)
        pause = pod.backoff * (1.0 + self.backoff_rng.random() * spec.backoff_jitter) \
            if spec.backoff_jitter else pod.backoff
        attempt = pod.attempt
        self.env.timeout(pause).callbacks.append(lambda _e: self._retry(pod, attempt))

    def _retry(self, pod: Pod, attempt: int) -> None:
        if pod.state == BACKOFF and pod.attempt == attempt:
            pod.state = PENDING
            self._sandbox(pod)

    def delete(self, pod: Pod) -> None:
        """The pod goes away (scaled down, finished, or its node left)."""
        state = pod.state
        if state == GONE:
            return
        col = self.col
        node = pod.node
        if state == RUNNING:
            col.running -= 1
            if self.spec.del_delay:
                self.env.timeout(self.spec.del_delay).callbacks.append(
                    lambda _e: self._tear_down(pod, node))
            else:
                self._tear_down(pod, node)
        else:
            col.pending -= 1
            if node is not None:
                node.waiting -= 1
            if state == WAITING and node is not None and node.alive:
                node.cancel(pod.key)
        pod.state = GONE
        col.pods_deleted += 1
        if node is not None:
            node.pod_count -= 1
        if self.pods.get(pod.key) is pod:
            del self.pods[pod.key]
        self.hist.add((self.env.now, node.name if node else "", "pod-delete", pod.key))
        if pod.on_gone is not None:
            pod.on_gone(pod)

    def _tear_down(self, pod: Pod, node: SimNode | None) -> None:
        """The CNI DEL: the pod's address goes back to its node's pool, unless a pod of the
        same name (a StatefulSet's replacement) has taken the allocation over meanwhile."""
        self.col.used[pod.vswitch] -= 1
        newer = self.pods.get(pod.key, pod)
        if newer is not pod and newer.ip == pod.ip:
            return
        self.owners.release(pod.ip, pod.key)
        if newer is not pod:
            return
        if node is not None and node.alive:
            node.release(pod.key, pod.sticky)

    def pods_on(self, node: SimNode) -> list[Pod]:
        return [p for p in self.pods.values() if p.node is node]

    def fail_waiting(self, node: SimNode) -> None:
        """The node's daemon died: every CNI call in flight on it fails now."""
        for pod in self.pods_on(node):
            if pod.state == WAITING:
                self._fail(pod)
