"""Crash safety: 200 seeded ADD/DEL with ``kill -9`` of terwayd at random (seeded) moments.

After a final restart every live pod keeps its address (in the daemon's mapping, inside its netns
and on one of the node's ENIs), no address is held twice, and once the pods are gone and the pool
settles, the emulator holds no more for the node than ``max_pool_size`` allows and no leaked ENI.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from emulator.fabric import probe
from emulator.fabric.netns import ip
from emulator.fabric.testbed import NodeBed

from .conftest import make_bed, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.e2e, pytest.mark.slow]

SEED = 20200317
OPS = 200
KILL_P = 0.1            # share of operations with a kill -9 somewhere inside them
MAX_LIVE = 8
MAX_POOL = 5


@pytest.fixture
def churn_bed(tmp_path: Path, request: pytest.FixtureRequest) -> NodeBed:
    bed = make_bed(tmp_path, request.node.name, vswitch_cidr="10.88.4.0/24")
    request.addfinalizer(bed.down)
    request.addfinalizer(lambda: print(f"terwayd log tail:\n{bed.log_tail(80)}"))
    bed.start_daemon()
    return bed


class Churn:
    """The runtime's side: which pods live (with the address ADD returned), which await DEL."""

    def __init__(self, bed: NodeBed, rng: random.Random) -> None:
        self.bed, self.rng = bed, rng
        self.live: dict[str, str] = {}
        self.to_delete: set[str] = set()
        self.kills = self.restarts = self.seq = 0

    def step(self) -> None:
        if not self.bed.daemon_alive():
            self.bed.start_daemon()
            self.restarts += 1
        self.retry_deletes()
        timer = None
        if self.rng.random() < KILL_P:
            timer = threading.Timer(self.rng.uniform(0.0, 0.2), self._kill)
            timer.start()
        if self.live and (len(self.live) >= MAX_LIVE or self.rng.random() < 0.45):
            self.delete(self.rng.choice(sorted(self.live)))
        else:
            self.add()
        if timer is not None:
            timer.join()

    def _kill(self) -> None:
        if self.bed.daemon_alive():
            self.bed.kill_daemon()
            self.kills += 1

    def add(self) -> None:
        pod = f"churn-{self.seq}"
        self.seq += 1
        outcome = self.bed.add_pod(pod)
        if outcome.ok:
            assert outcome.ip is not None
            self.live[pod] = outcome.ip
        else:   # add_pod ran the runtime's DEL; if that failed too, DEL again later
            self.to_delete.add(pod)

    def delete(self, pod: str) -> None:
        self.live.pop(pod)
        if not self.bed.del_pod(pod).ok:
            self.to_delete.add(pod)

    def retry_deletes(self) -> None:
        for pod in sorted(self.to_delete):
            if self.bed.cni("DEL", pod).ok:
                self.to_delete.discard(pod)
                self.bed.pods.pop(pod, None)
                ip("netns", "delete", self.bed.pod_netns(pod), check=False)


def test_kill_9_during_churn_loses_nothing_and_leaks_nothing(churn_bed: NodeBed) -> None:
    bed = churn_bed
    churn = Churn(bed, random.Random(SEED))
    for _ in range(OPS):
        churn.step()
    assert churn.kills > 0, "the seeded schedule never killed terwayd"
    bed.kill_daemon()
    bed.start_daemon()
    churn.retry_deletes()
    assert not churn.to_delete, f"DEL keeps failing for {sorted(churn.to_delete)}"

    rows = bed.mapping()
    normal = {r.pod.rsplit("/", 1)[-1]: r.ip for r in rows if r.status == "Normal"}
    assert normal == churn.live, "after restart the daemon's pods/addresses differ from ours"
    held = [r.ip for r in rows]
    assert len(held) == len(set(held)), f"an address held twice: {sorted(held)}"
    attached = {a for e in bed.node_enis() for a in e.private_ips}
    for pod, address in churn.live.items():
        links = json.loads(ip("-j", "addr", "show", "dev", "eth0", ns=bed.pods[pod]))
        assert address in [a["local"] for a in links[0]["addr_info"]], pod
        assert address in attached, f"{pod}'s {address} is on none of the node's ENIs"
    gateway = bed.cloud.get_vswitch(bed.vswitch_id).gateway
    for pod in sorted(churn.live)[:3]:
        assert probe.ping(bed.pods[pod], gateway), f"{pod} lost connectivity after restarts"

    for pod in sorted(churn.live):
        assert bed.del_pod(pod).ok
    churn.live.clear()

    def settled() -> tuple[int, int] | None:
        ips = sum(len(e.private_ips) for e in bed.node_enis())
        loose = len(bed.loose_enis())
        return (ips, loose) if ips <= MAX_POOL and loose == 0 else None

    wait_for(f"the node to hold <= {MAX_POOL} IPs and no loose ENI", settled, timeout=30)
    print(f"ops={OPS} kills={churn.kills} restarts={churn.restarts}")
