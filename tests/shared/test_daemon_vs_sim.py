"""The proof that the core is shared: one deterministic workload through the simulator's node
driver (simpy) and through the real daemon (asyncio on virtual time, its RPC server, its driver,
its executor, its config watcher) makes the same cloud calls, at the same times, with the same
arguments and the same outcomes — attach/detach status polls included, each driver on its default
wait policy — and tells every pod the same address at the same time."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.shared.workload import (
    ADD_VSWITCH_AT,
    PODS,
    UNAVAILABLE,
    Call,
    DaemonRun,
    daemon_calls,
    simulated,
)


@pytest.fixture(scope="module")
def daemon_run() -> tuple[list[Call], DaemonRun]:
    return daemon_calls()


@pytest.mark.parametrize("eager_tick", [True, False], ids=["sim-eager", "sim-lazy"])
def test_daemon_and_simulator_make_the_same_cloud_calls(
        daemon_run: tuple[list[Call], DaemonRun], eager_tick: bool) -> None:
    sim, run = simulated(eager_tick)
    aio, dr = daemon_run

    # the workload exercises what it claims to
    kinds = Counter((c[1], c[3]) for c in sim)
    assert kinds[("assign_private_ips", "InvalidVSwitchId.IpNotEnough")] >= 1
    assert kinds[("describe_vswitches", "OK")] == 2, "at start and when vsw-b is added"
    assert kinds[("delete_network_interface", "OK")] >= 1, "the pool shrinks"
    vsw_b = run.vsw_ids["vsw-b"]
    assert any(c[1] == "create_network_interface" and vsw_b in c[2] for c in sim)
    assert run.col.cni_failures >= 1 and run.col.pods_ready == len(PODS)
    assert dr.failures == []
    assert "Code: InvalidVSwitchId.IpNotEnough" in dr.log_text

    assert aio == sim
    assert sorted(dr.answers) == sorted(run.answers), "the pods were told the same, at once"
    told = [t for t, key, answer in run.answers if key == "default/c-0" and answer == UNAVAILABLE]
    assert told and told[0] < 80.13 + 1.0, "answered at once, not at the CNI timeout"


def test_a_driver_that_loses_a_call_is_caught() -> None:
    """The comparison can fail: a daemon whose cloud silently drops one UnassignIps differs."""
    sim, _ = simulated()
    aio, _ = daemon_calls(drop="unassign_private_ips")
    assert aio != sim
    missing = [c for c in sim if c not in aio]
    assert [c[1] for c in missing] == ["unassign_private_ips"]


ADAPTIVE = {"kind": "adaptive", "name": "adaptive (ours)"}


@pytest.mark.parametrize("eager_tick", [True, False], ids=["sim-eager", "sim-lazy"])
def test_the_adaptive_policy_runs_the_same_in_the_daemon_and_the_simulator(
        eager_tick: bool) -> None:
    """``pool_policy: adaptive`` (issue 14 item 1: the same code in terwayd and the simulator):
    its learning, its pressure rules on the /28 and its recheck of the dry vSwitch give the same
    calls and the same answers through the real daemon as through the simulator."""
    sim, run = simulated(eager_tick, ADAPTIVE)
    aio, dr = daemon_calls(policy=ADAPTIVE)
    assert run.conf.pool_policy == "adaptive"       # the daemon read the same eni_conf
    describes = [c[0] for c in sim if c[1] == "describe_vswitches"]
    # at start; twice while vsw-a is dry (recheck_seconds 20 s, then doubled); vsw-b added
    assert describes == [0.0, 80.13, 120.13, ADD_VSWITCH_AT], describes
    assert any(c[3] == "InvalidVSwitchId.IpNotEnough" for c in sim)
    assert dr.failures == [] and run.col.pods_ready == len(PODS)
    assert aio == sim
    assert sorted(dr.answers) == sorted(run.answers)
