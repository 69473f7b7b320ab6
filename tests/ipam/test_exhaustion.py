"""IpNotEnough and quotas: blocks, the log line users grep for, the node condition, recovery."""

from __future__ import annotations

import itertools
import math

from terway.cloud.api import VSwitch
from terway.cloud.errors import CloudError
from terway.ipam import ConditionChanged, CreateEni, Exhausted, LogLine, Pending
from tests.ipam.fakecloud import ip_not_enough
from tests.ipam.helpers import make, ready_keys, settings, settle

SEED_LINE = (
    "Assign private ip address failed: Aliyun API Error: RequestId: "
    "2095E971-E473-4BA0-853F-0C41CF52651D Status Code: 403 Code: InvalidVSwitchId.IpNotEnough "
    'Message: The specified VSwitch "vsw-a" has not enough IpAddress., retrying'
)


def _one_eni_with_pods(n: int, **over: object):  # type: ignore[no-untyped-def]
    core, cloud = make(ips_per_eni=10, **over)  # type: ignore[arg-type]
    for i in range(n):
        core.request_ip(f"ns/p{i}", 0.0)
    settle(core, cloud, 0.3)
    return core, cloud


def test_ip_not_enough_on_assign_blocks_eni_logs_seed_line_and_sets_condition() -> None:
    core, cloud = _one_eni_with_pods(1, max_enis=1)
    cloud.fail["assign"] = [ip_not_enough("vsw-a")]
    assert isinstance(core.request_ip("ns/x", 1.0), Pending)
    notices = settle(core, cloud, 1.3)
    logs = [n.msg for n in notices if isinstance(n, LogLine) and n.level == "warning"]
    assert SEED_LINE in logs
    conds = [n for n in notices if isinstance(n, ConditionChanged)]
    assert conds and conds[-1].status is False and conds[-1].reason == "InsufficientIP"
    assert {(n.scope, n.resource_id) for n in notices if isinstance(n, Exhausted)} == {
        ("eni", "eni-1"), ("vswitch", "vsw-a")}
    assert "IpNotEnough" in core.pending_reason("ns/x")
    assert core.condition() is False
    calls = len(cloud.calls)
    settle(core, cloud, 300.0)
    assert "assign" not in cloud.calls[calls:]  # blocked: no hammering of the API
    assert core.pending_keys() == ["ns/x"]


def test_eni_block_lifts_after_ten_minutes_and_allocation_resumes() -> None:
    core, cloud = _one_eni_with_pods(1, max_enis=1, vswitch_cache_ttl=10**9)
    cloud.fail["assign"] = [ip_not_enough("vsw-a")]
    core.request_ip("ns/x", 1.0)
    settle(core, cloud, 1.3)
    assert core.next_wakeup() is not None
    settle(core, cloud, 601.29)
    assert core.pending_keys() == ["ns/x"]
    notices = settle(core, cloud, 601.3)
    assert ready_keys(notices) == ["ns/x"]
    assert core.condition() is True
    assert any(isinstance(n, ConditionChanged) and n.status for n in notices)


def test_ipv4_count_exceeded_blocks_the_eni_only() -> None:
    core, cloud = _one_eni_with_pods(1, max_enis=2)
    cloud.fail["assign"] = [CloudError("InvalidOperation.Ipv4CountExceeded", "per-ENI limit",
                                       http_status=403)]
    core.request_ip("ns/x", 1.0)
    notices = settle(core, cloud, 1.3)
    assert [(n.scope, n.resource_id) for n in notices if isinstance(n, Exhausted)] == [
        ("eni", "eni-1")]
    # served by a new ENI on the same (not exhausted) vSwitch
    settle(core, cloud, 1.6)
    assert core.allocation("ns/x") is not None
    assert len(cloud.enis) == 2


def test_ip_not_enough_on_create_blocks_vswitch_and_tries_the_next_one() -> None:
    core, _cloud = make({"vsw-a": 0, "vsw-b": 50}, vswitch_ids=("vsw-a", "vsw-b"),
                       vswitch_selection="ordered", vswitch_cache_ttl=10**9)
    # no DescribeVSwitches answer yet: ordered keeps config order, so vsw-a is tried first
    core.request_ip("ns/a", 0.0)
    cmds = core.tick(0.3)
    describe = [c for c in cmds if not isinstance(c, CreateEni)]
    creates = [c for c in cmds if isinstance(c, CreateEni)]
    assert [c.vswitch_id for c in creates] == ["vsw-a"]
    assert describe  # the cache is filled at start
    core.on_command_failed(creates[0].cmd_id, ip_not_enough("vsw-a"), 0.4)
    notices = core.drain_notices()
    assert any(isinstance(n, Exhausted) and n.resource_id == "vsw-a" for n in notices)
    cmds = core.tick(0.4)
    assert [c.vswitch_id for c in cmds if isinstance(c, CreateEni)] == ["vsw-b"]


def test_quota_exceeded_private_ip_on_create_is_the_vswitch_running_out() -> None:
    """Issue 10: on the real cloud this code means the vSwitch has no address left; it blocked
    every ENI creation on the node for 10 minutes instead of trying the next vSwitch."""
    core, _cloud = make({"vsw-a": 50, "vsw-b": 50}, vswitch_ids=("vsw-a", "vsw-b"),
                        vswitch_selection="ordered", vswitch_cache_ttl=10**9)
    core.request_ip("ns/a", 0.0)
    (create,) = [c for c in core.tick(0.3) if isinstance(c, CreateEni)]
    assert create.vswitch_id == "vsw-a"
    err = CloudError("QuotaExceeded.PrivateIpAddress", "no private ip left", http_status=403)
    core.on_command_failed(create.cmd_id, err, 0.4)
    assert any(isinstance(n, Exhausted) and n.resource_id == "vsw-a"
               for n in core.drain_notices())
    assert [c.vswitch_id for c in core.tick(0.4) if isinstance(c, CreateEni)] == ["vsw-b"]


def test_all_vswitches_exhausted_then_a_vswitch_added_through_config() -> None:
    core, cloud = make({"vsw-a": 0}, vswitch_ids=("vsw-a",), vswitch_cache_ttl=10**9)
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    assert core.pending_keys() == ["ns/a"] and core.condition() is False
    settle(core, cloud, 30.0)
    assert cloud.calls.count("create") == 1  # blocked: no retry storm
    cloud.add_vswitch("vsw-new", 8192)
    core.on_config_changed(settings(vswitch_ids=("vsw-a", "vsw-new"),
                                    vswitch_cache_ttl=10**9), 40.0)
    notices = settle(core, cloud, 40.0)
    assert ready_keys(notices) == ["ns/a"]
    alloc = core.allocation("ns/a")
    assert alloc is not None and alloc.vswitch_id == "vsw-new"
    assert core.condition() is True


def test_condition_true_again_when_the_cloud_grants_with_no_pod_waiting() -> None:
    """Fail-fast daemons answer an unservable pod at once (it does not wait in the queue), so
    the condition cannot wait for a queued pod to be served: addresses granted by the cloud
    (here a new vSwitch's ENI topping the pool up) set SufficientIP True, though vsw-a stays
    exhausted."""
    core, cloud = make({"vsw-a": 0}, vswitch_ids=("vsw-a",), vswitch_cache_ttl=10**9)
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    core.release_ip("ns/a", 0.4)           # answered at once; the runtime retries later
    assert core.condition() is False and core.pending_keys() == []
    cloud.add_vswitch("vsw-new", 8192)
    core.on_config_changed(settings(vswitch_ids=("vsw-a", "vsw-new"), vswitch_cache_ttl=10**9,
                                    min_pool_size=2), 40.0)
    notices = settle(core, cloud, 40.0) + settle(core, cloud, 200.0)   # the next pool sync
    assert [n.status for n in notices if isinstance(n, ConditionChanged)] == [True]
    assert core.condition() is True


def test_vswitch_addresses_back_lift_the_block() -> None:
    core, cloud = make({"vsw-a": 0}, vswitch_cache_ttl=10**9)
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    assert core.pending_keys() == ["ns/a"]
    cloud.free["vsw-a"] = 10
    core.on_vswitches([VSwitch("vsw-a", "cn-hangzhou-k", "10.1.0.0/16", 10)], 5.0)
    notices = settle(core, cloud, 5.0)
    assert ready_keys(notices) == ["ns/a"]


def test_instance_eni_limit_blocks_creation_for_a_minute_as_upstream() -> None:
    """Issue 10: EniPerInstanceLimitExceeded blocked creation 10 minutes (upstream: 1)."""
    core, cloud = make()
    cloud.fail["create"] = [CloudError("EniPerInstanceLimitExceeded", "too many", http_status=403)]
    core.request_ip("ns/a", 0.0)
    notices = settle(core, cloud, 0.3)
    assert any(isinstance(n, Exhausted) and n.scope == "instance" for n in notices)
    settle(core, cloud, 60.0)
    assert cloud.calls.count("create") == 1
    settle(core, cloud, 60.4)
    assert core.allocation("ns/a") is not None


def test_an_account_eni_quota_blocks_creation_for_exhaustion_block() -> None:
    core, cloud = make()
    cloud.fail["create"] = [CloudError("QuotaExceed.PortableEni", "account", http_status=403)]
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    settle(core, cloud, 300.0)
    assert cloud.calls.count("create") == 1
    settle(core, cloud, 600.4)
    assert core.allocation("ns/a") is not None


def test_throttled_assign_is_retried_after_backoff() -> None:
    core, cloud = _one_eni_with_pods(1, max_enis=1)
    cloud.fail["assign"] = [CloudError("Throttling", "slow down", http_status=400)]
    core.request_ip("ns/x", 1.0)
    settle(core, cloud, 1.3)
    assert core.pending_keys() == ["ns/x"]
    assert core.condition() is True  # throttling is not exhaustion
    wake = core.next_wakeup()
    assert wake is not None and wake <= 1.3 + 1.0
    notices = settle(core, cloud, wake)
    assert ready_keys(notices) == ["ns/x"]


def test_transient_create_failure_retries_with_same_outcome_idempotently() -> None:
    core, cloud = make()
    cloud.fail["create"] = [CloudError("InternalError", "boom", http_status=500)]
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    assert core.pending_keys() == ["ns/a"]
    settle(core, cloud, 1.3)
    assert core.allocation("ns/a") is not None
    assert len(cloud.enis) == 1


def test_eni_limit_on_attach_blocks_creation_and_cleans_up() -> None:
    core, cloud = make(max_enis=5)  # config promises more ENIs than the instance takes
    cloud.fail["attach"] = [CloudError("EniPerInstanceLimitExceeded", "limit (3)",
                                       http_status=403)]
    core.request_ip("ns/a", 0.0)
    notices = settle(core, cloud, 0.3)
    assert cloud.calls.count("create") == 1  # no create storm
    assert any(isinstance(n, Exhausted) and n.scope == "instance" for n in notices)
    settle(core, cloud, 5.0)
    assert cloud.enis == {}  # the half-made ENI was detached and deleted
    assert core.pending_keys() == ["ns/a"]
    settle(core, cloud, 60.4)
    assert core.allocation("ns/a") is not None


def test_ip_not_enough_on_a_batch_shrinks_it_so_the_last_addresses_reach_pods() -> None:
    """Calls are all-or-nothing: 6 asked with 3 left must still serve 3 pods, then block."""
    core, cloud = _one_eni_with_pods(1, max_enis=1, vswitch_cache_ttl=10**9)
    cloud.free["vsw-a"] = 3
    for i in range(6):
        assert isinstance(core.request_ip(f"ns/q{i}", 1.0), Pending)
    notices = settle(core, cloud, 1.3)
    assert len(ready_keys(notices)) == 3
    assert cloud.free["vsw-a"] == 0
    assert len(core.pending_keys()) == 3
    assert sum(1 for n in notices if isinstance(n, LogLine) and "IpNotEnough" in n.msg) >= 2
    assert any(isinstance(n, Exhausted) and n.scope == "vswitch" for n in notices)
    calls = len(cloud.calls)
    settle(core, cloud, 300.0)
    assert "assign" not in cloud.calls[calls:]  # a refused single address blocks as before


def _first_ready_and_describes(policy: str) -> tuple[float, list[float]]:
    """A pod meets a dry vSwitch at t=0; addresses come back just after (another node gave
    them back). Driven by ``next_wakeup`` alone: when is the pod served, and when was the vSwitch
    described?"""
    core, cloud = make({"vsw-a": 0}, vswitch_cache_ttl=600.0, exhaustion_block=600.0,
                       pool_policy=policy)
    core.request_ip("ns/a", 0.0)
    describes: list[float] = []
    now = 0.0
    while now < 700.0:
        before = cloud.calls.count("describe_vswitches")
        served = ready_keys(settle(core, cloud, now))
        describes += [now] * (cloud.calls.count("describe_vswitches") - before)
        if served:
            return now, describes
        if now == 0.0:
            cloud.free["vsw-a"] = 10      # unseen by the node until it describes
        wake = core.next_wakeup()
        now = wake if wake is not None else 700.0
    return math.inf, describes


def test_adaptive_rechecks_a_dry_vswitch_within_seconds_not_the_cache_ttl() -> None:
    served, describes = _first_ready_and_describes("adaptive")
    # t=0 found it dry, so the recheck is due after 2 x 20 s (not the 600 s TTL)
    assert served == 40.0 and describes == [0.0, 40.0], (served, describes)
    upstream_served, upstream_describes = _first_ready_and_describes("terway")
    assert upstream_served >= 600.0                   # upstream's behaviour kept for its policy
    assert upstream_describes[:1] == [0.0] and all(t >= 600 for t in upstream_describes[1:])


def test_a_vswitch_that_stays_dry_is_rechecked_ever_more_rarely() -> None:
    core, cloud = make({"vsw-a": 0}, vswitch_cache_ttl=600.0, exhaustion_block=600.0,
                       pool_policy="adaptive")
    core.request_ip("ns/a", 0.0)
    times: list[float] = []
    now = 0.0
    while now < 590.0:
        before = cloud.calls.count("describe_vswitches")
        settle(core, cloud, now)
        times += [now] * (cloud.calls.count("describe_vswitches") - before)
        wake = core.next_wakeup()
        assert wake is not None
        now = wake
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) <= 8, times                       # a few calls per block, not 30
    assert all(b >= a for a, b in itertools.pairwise(gaps[1:])), gaps  # growing intervals
