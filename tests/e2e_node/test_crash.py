"""Crash safety: 200 seeded ADD/DEL with ``kill -9`` of terwayd at random (seeded) moments.

After a final restart every live pod keeps its address (in the daemon's mapping, inside its netns
and on one of the node's ENIs), no address is held twice, and once the pods are gone and the pool
settles, the emulator holds no more for the node than ``max_pool_size`` allows and no leaked ENI.
"""

from __future__ import annotations

import random

import pytest

from emulator.fabric import probe
from emulator.fabric.testbed import NodeBed
from tests.e2e_node.churn import Churn, held_twice, live_pod_problems, wait_pool_settled

pytestmark = [pytest.mark.privileged, pytest.mark.e2e, pytest.mark.slow]

SEED = 20200317
OPS = 200
KILL_P = 0.1            # share of operations with a kill -9 somewhere inside them
MAX_LIVE = 8
MAX_POOL = 5


def test_kill_9_during_churn_loses_nothing_and_leaks_nothing(churn_bed: NodeBed) -> None:
    bed = churn_bed
    churn = Churn(bed, random.Random(SEED), kill_p=KILL_P, max_live=MAX_LIVE)
    for _ in range(OPS):
        churn.step()
    assert churn.kills > 0, "the seeded schedule never killed terwayd"
    bed.kill_daemon()
    bed.start_daemon()
    churn.retry_deletes()
    assert not churn.to_delete, f"DEL keeps failing for {sorted(churn.to_delete)}"

    problems = churn.duplicates + held_twice(bed, churn.live) + live_pod_problems(bed, churn.live)
    assert not problems, "after restart:\n" + "\n".join(problems)
    gateway = bed.cloud.get_vswitch(bed.vswitch_id).gateway
    for pod in sorted(churn.live)[:3]:
        assert probe.ping(bed.pods[pod], gateway), f"{pod} lost connectivity after restarts"

    for pod in sorted(churn.live):
        assert bed.del_pod(pod).ok
    churn.live.clear()

    wait_pool_settled(bed, MAX_POOL)
    print(f"ops={OPS} kills={churn.kills} restarts={churn.restarts}")
