"""The rules every driver shares (terway/ipam/drive.py): what the daemon and the simulator
would otherwise each write for themselves."""

from __future__ import annotations

import itertools

from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.retry import DEFAULT, ENI_IP_OPS, ENI_OPS, Backoff, backoff_for, retry_policies
from terway.ipam.commands import AssignIps, CreateEni, UnassignIps
from terway.ipam.drive import ACTION, CoreView, FailureLog, WaitPolicy, unservable

EXHAUSTED = CloudError("InvalidVSwitchId.IpNotEnough", "no address left",
                       error_class=ErrorClass.EXHAUSTED)
THROTTLED = CloudError("Throttling", "slow down", error_class=ErrorClass.THROTTLED)
ASSIGN = AssignIps("c1", "eni-1", 2)


def test_every_command_is_one_named_action() -> None:
    assert ACTION[AssignIps] == "AssignPrivateIpAddresses"
    assert len(set(ACTION.values())) == len(ACTION)


def test_wait_policy_doubles_up_to_its_cap() -> None:
    pauses = list(itertools.islice(WaitPolicy(timeout=60, first_pause=0.2, max_pause=2).pauses(),
                                   7))
    assert pauses == [0.2, 0.4, 0.8, 1.6, 2, 2, 2]


def test_retry_policies_take_the_specific_override() -> None:
    mine = Backoff(1.0, 1.0, 2)
    policies = retry_policies({"eni_ops": mine, "eni_create": Backoff(3.0, 1.0, 2)})
    assert backoff_for("AttachNetworkInterface", policies) == mine
    assert backoff_for("CreateNetworkInterface", policies).initial == 3.0
    assert backoff_for("AssignPrivateIpAddresses", policies) == ENI_IP_OPS
    assert backoff_for("DescribeVSwitches", policies) == DEFAULT
    assert backoff_for("DeleteNetworkInterface", retry_policies({})) == ENI_OPS


def _view(sufficient: bool = False, in_flight: int = 0) -> CoreView:
    return CoreView(sufficient, in_flight, frozenset({"a", "b"}))


def test_a_pod_is_answered_at_once_only_when_exhaustion_explains_it() -> None:
    log = FailureLog()
    log.record(ASSIGN, EXHAUSTED, 10.0)
    waiting = {"a": 9.0, "b": 10.95, "c": 9.0}       # b is inside its batch window; c is served
    assert [k for k, _ in unservable(_view(), waiting, 0, 11.0, 0.1, log)] == ["a"]
    assert not list(unservable(_view(sufficient=True), waiting, 0, 11.0, 0.1, log))
    assert not list(unservable(_view(in_flight=1), waiting, 0, 11.0, 0.1, log))
    assert not list(unservable(_view(), waiting, 1, 11.0, 0.1, log))        # a call running


def test_an_old_or_retryable_failure_explains_nothing() -> None:
    log = FailureLog()
    log.record(ASSIGN, EXHAUSTED, 5.0)              # before the pod asked
    log.record(CreateEni("c2", "vsw", 1, ()), THROTTLED, 10.0)
    log.record(UnassignIps("c3", "eni-1", ("10.0.0.9",)), EXHAUSTED, 10.0)   # not an add
    assert log.explain(9.0, condition_ok=True) is THROTTLED
    assert not list(unservable(_view(), {"a": 9.0}, 0, 11.0, 0.0, log))


def test_the_announced_exhaustion_explains_when_the_condition_is_false() -> None:
    log = FailureLog()
    log.exhausted = EXHAUSTED
    assert log.explain(9.0, condition_ok=True) is None
    assert log.explain(9.0, condition_ok=False) is EXHAUSTED
    assert [k for k, _ in unservable(_view(), {"b": 9.0}, 0, 11.0, 0.0, log)] == ["b"]
