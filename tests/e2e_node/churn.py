"""Seeded ADD/DEL churn with ``kill -9`` of terwayd, and the end-state checks the crash and chaos
tests share (tests/e2e_node/test_crash.py, test_chaos.py).

The churn plays the container runtime: it remembers which pods it believes alive (with the address
their ADD returned) and which await a DEL that failed, and retries those DELs as a kubelet would.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from emulator.fabric.netns import ip
from emulator.fabric.testbed import NodeBed
from tests.e2e_node.conftest import wait_for


class Churn:
    """The runtime's side: which pods live (with the address ADD returned), which await DEL.

    ``kill_p`` is the share of operations with a ``kill -9`` somewhere in the first
    ``kill_window`` seconds of them; ``after_op`` (if given) runs once each operation is over,
    with a line describing it (step number, command, pod, outcome). By default the number of
    pods walks at random just under ``max_live``; with ``waves`` it climbs to ``max_live`` and
    falls back to none, again and again, so the pool (and the ENIs) must follow.
    """

    def __init__(self, bed: NodeBed, rng: random.Random, *, kill_p: float = 0.1,
                 max_live: int = 8, kill_window: float = 0.2, waves: bool = False,
                 after_op: Callable[[str], None] | None = None) -> None:
        self.bed, self.rng = bed, rng
        self.kill_p, self.max_live, self.kill_window = kill_p, max_live, kill_window
        self.waves, self.shrinking = waves, False
        self.after_op = after_op
        self.live: dict[str, str] = {}
        self.to_delete: set[str] = set()
        self.kills = self.restarts = self.seq = self.steps = 0
        self.killed_at = 0.0             # when this step's kill -9 was sent (monotonic)
        self.add_failures = self.del_failures = 0
        self.duplicates: list[str] = []    # ADD results naming an address a live pod holds
        self.errors: Counter[str] = Counter()   # failure messages of ADD/DEL, for the report

    def step(self) -> None:
        if not self.bed.daemon_alive():
            self.bed.start_daemon()
            self.restarts += 1
        self.retry_deletes()
        self.steps += 1
        timer, self.killed_at, start = None, 0.0, time.monotonic()
        if self.rng.random() < self.kill_p:
            timer = threading.Timer(self.rng.uniform(0.0, self.kill_window), self._kill)
            timer.start()
        if self.live and (len(self.live) >= self.max_live or self.rng.random() < self._p_del()):
            what = self.delete(self.rng.choice(sorted(self.live)))
        else:
            what = self.add()
        took = time.monotonic() - start
        if timer is not None:
            timer.join()
        if self.killed_at:
            what += f" [took {took:.3f}s; kill -9 at +{self.killed_at - start:.3f}s]"
        else:
            what += f" [took {took:.3f}s]"
        if self.after_op is not None:
            self.after_op(f"step {self.steps}: {what}")

    def _p_del(self) -> float:
        """The chance that an operation is a DEL (when there is a pod to delete)."""
        if not self.waves:
            return 0.45
        if len(self.live) >= self.max_live - 1:
            self.shrinking = True
        elif len(self.live) <= 1:
            self.shrinking = False
        return 0.85 if self.shrinking else 0.15

    def _kill(self) -> None:
        if self.bed.daemon_alive():
            self.killed_at = time.monotonic()
            self.bed.kill_daemon()
            self.kills += 1

    def add(self) -> str:
        pod = f"churn-{self.seq}"
        self.seq += 1
        outcome = self.bed.add_pod(pod)
        if outcome.ok:
            assert outcome.ip is not None
            holders = [p for p, a in self.live.items() if a == outcome.ip]
            if holders:
                self.duplicates.append(f"ADD {pod} got {outcome.ip}, held by {holders}")
            self.live[pod] = outcome.ip
            return f"ADD {pod} -> {outcome.ip}"
        self.add_failures += 1
        self.errors[f"ADD rc={outcome.rc}: {outcome.msg[:120]}"] += 1
        self.to_delete.add(pod)   # add_pod ran the runtime's DEL; DEL again until it succeeds
        return f"ADD {pod} failed rc={outcome.rc} ({outcome.msg[:160]})"

    def delete(self, pod: str) -> str:
        address = self.live.pop(pod)
        outcome = self.bed.del_pod(pod)
        if outcome.ok:
            return f"DEL {pod} ({address})"
        self.del_failures += 1
        self.errors[f"DEL rc={outcome.rc}: {outcome.msg[:120]}"] += 1
        self.to_delete.add(pod)
        return f"DEL {pod} ({address}) failed rc={outcome.rc} ({outcome.msg[:160]})"

    def retry_deletes(self) -> None:
        """DEL again what awaits it, while a daemon runs (a dead one would only fail it)."""
        if not self.bed.daemon_alive():
            return
        for pod in sorted(self.to_delete):
            if self.bed.cni("DEL", pod).ok:
                self.to_delete.discard(pod)
                self.bed.pods.pop(pod, None)
                ip("netns", "delete", self.bed.pod_netns(pod), check=False)


def live_pod_problems(bed: NodeBed, live: dict[str, str]) -> list[str]:
    """What is wrong with the pods the runtime believes alive, against the daemon's mapping (its
    store, after a restart), the pods' own ``eth0`` and the cloud's ENIs (empty: all is well)."""
    problems: list[str] = []
    normal = {r.pod.rsplit("/", 1)[-1]: r.ip for r in bed.mapping() if r.status == "Normal"}
    if normal != live:
        problems.append(f"daemon mapping {sorted(normal.items())} != runtime's "
                        f"{sorted(live.items())}")
    attached = {a for e in bed.node_enis() for a in e.private_ips}
    for pod, address in sorted(live.items()):
        inside = pod_addresses(bed, pod)
        if address not in inside:
            problems.append(f"{pod}'s eth0 has {inside}, not {address}")
        if address not in attached:
            problems.append(f"{pod}'s {address} is on none of the node's ENIs")
    return problems


def held_twice(bed: NodeBed, live: dict[str, str]) -> list[str]:
    """Addresses held by two pods: in the daemon's mapping, or inside two live pods' ``eth0``."""
    held = Counter(r.ip for r in bed.mapping())
    problems = [f"daemon maps {a} to {n} pods" for a, n in sorted(held.items()) if n > 1]
    inside: dict[str, list[str]] = {}
    for pod in sorted(live):
        for address in pod_addresses(bed, pod):
            inside.setdefault(address, []).append(pod)
    problems += [f"{a} is inside {pods}" for a, pods in sorted(inside.items()) if len(pods) > 1]
    return problems


def pod_addresses(bed: NodeBed, pod: str) -> list[str]:
    """The IPv4 addresses on ``eth0`` inside the pod's netns, as the pod itself sees them."""
    links = json.loads(ip("-j", "addr", "show", "dev", "eth0", ns=bed.pods[pod]))
    return [a["local"] for a in links[0]["addr_info"] if a["family"] == "inet"]


def wait_pool_settled(bed: NodeBed, max_pool: int, timeout: float = 30.0) -> tuple[int, int]:
    """Once no pod is left: the node holds at most ``max_pool`` secondary IPs and no ENI is loose.

    Returns (IPs held, loose ENIs); the timeout only guards against a hang.
    """
    def settled() -> tuple[int, int] | None:
        ips = sum(len(e.private_ips) for e in bed.node_enis())
        loose = len(bed.loose_enis())
        return (ips, loose) if ips <= max_pool and loose == 0 else None

    return wait_for(f"the node to hold <= {max_pool} IPs and no loose ENI", settled,
                    timeout=timeout)
