"""FaultEngine: latency draws, counted/probabilistic errors, token-bucket throttling; seeded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.faults import FaultEngine, FaultRuleError, build_rule, build_rules

ASSIGN = "AssignPrivateIpAddresses"


def decisions(engine: FaultEngine, n: int, action: str = ASSIGN,
              step: float = 0.01) -> list[tuple[float, str | None]]:
    out = []
    for i in range(n):
        d = engine.decide(action, {"NetworkInterfaceId": "eni-1"}, i * step)
        out.append((d.latency, d.error.code if d.error else None))
    return out


@pytest.mark.parametrize("rule", [
    {"distribution": "constant", "value": 0.2},
    {"distribution": "uniform", "low": 0.1, "high": 0.3},
    {"distribution": "normal", "mean": 0.2, "stddev": 0.05},
    {"distribution": "lognormal", "mu": -2.0, "sigma": 0.5},
    {"distribution": "exponential", "mean": 0.2},
])
def test_latency_distributions_are_seeded(rule: dict[str, Any]) -> None:
    def run(seed: int) -> list[tuple[float, str | None]]:
        engine = FaultEngine(seed)
        engine.add_rule({"kind": "latency", "action": "*", **rule})
        return decisions(engine, 50)

    first = run(1)
    assert first == run(1)
    assert all(lat >= 0 for lat, _ in first)
    assert 0.05 < sum(lat for lat, _ in first) / 50 < 0.5
    if rule["distribution"] != "constant":
        assert first != run(2)


def test_exact_action_latency_beats_wildcard() -> None:
    engine = FaultEngine()
    engine.add_rule({"kind": "latency", "action": ASSIGN, "distribution": "constant",
                     "value": 1.0})
    engine.add_rule({"kind": "latency", "action": "*", "distribution": "constant", "value": 0.1})
    assert engine.decide(ASSIGN, {}, 0).latency == 1.0
    assert engine.decide("DescribeVSwitches", {}, 0).latency == 0.1


def test_count_errors_fire_exactly_n_times_then_retire() -> None:
    engine = FaultEngine()
    rid = engine.add_rule({"kind": "error", "action": ASSIGN, "code": "InternalError",
                           "count": 3})
    got = [code for _, code in decisions(engine, 5)]
    assert got == ["InternalError"] * 3 + [None, None]
    assert rid not in [r["id"] for r in engine.rules()]
    err = FaultEngine()
    err.add_rule({"kind": "error", "action": "*", "code": "InternalError", "count": 1})
    error = err.decide(ASSIGN, {}, 0).error
    assert error is not None and error.http_status == 500


def test_error_rule_matches_parameters() -> None:
    engine = FaultEngine()
    engine.add_rule({"kind": "error", "action": "*", "code": "InvalidVSwitchId.IpNotEnough",
                     "http_status": 403, "probability": 1.0, "match": {"VSwitchId": "vsw-x"}})
    assert engine.decide("CreateNetworkInterface", {"VSwitchId": "vsw-y"}, 0).error is None
    error = engine.decide("CreateNetworkInterface", {"VSwitchId": "vsw-x"}, 0).error
    assert error is not None and (error.code, error.http_status) == (
        "InvalidVSwitchId.IpNotEnough", 403)


def test_probability_errors_are_seeded() -> None:
    def run(seed: int) -> list[tuple[float, str | None]]:
        engine = FaultEngine(seed)
        engine.add_rule({"kind": "error", "action": ASSIGN, "code": "Throttling",
                         "probability": 0.3})
        return decisions(engine, 200)

    first = run(5)
    assert first == run(5)
    fired = sum(1 for _, code in first if code)
    assert 30 < fired < 90


def test_token_bucket_throttles_with_the_real_code() -> None:
    engine = FaultEngine()
    engine.add_rule({"kind": "throttle", "action": "*", "rate": 2, "burst": 3})
    at_once = [engine.decide(ASSIGN, {}, 0.0).error for _ in range(5)]
    assert [e is None for e in at_once] == [True, True, True, False, False]
    err = at_once[3]
    assert err is not None
    assert (err.code, err.message, err.http_status) == (
        "Throttling.User", "Request was denied due to user flow control.", 400)
    assert engine.decide(ASSIGN, {}, 0.5).error is None          # one token back after 0.5 s
    assert engine.decide(ASSIGN, {}, 0.5).error is not None
    assert engine.decide("DescribeVSwitches", {}, 0.5).error is None   # buckets per action


def test_rules_can_be_removed_at_run_time() -> None:
    engine = FaultEngine()
    rid = engine.add_rule({"kind": "error", "action": "*", "code": "InternalError",
                           "probability": 1.0})
    assert engine.decide(ASSIGN, {}, 0).error is not None
    assert engine.remove_rule(rid)
    assert engine.decide(ASSIGN, {}, 0).error is None
    assert not engine.remove_rule(rid)


@pytest.mark.parametrize(("rule", "where"), [
    ({"kind": "slow"}, "rule.kind"),
    ({"kind": "latency", "distribution": "pareto"}, "rule.distribution"),
    ({"kind": "latency", "distribution": "uniform", "low": 2, "high": 1}, "rule.high"),
    ({"kind": "latency", "distribution": "constant", "value": -1}, "rule.value"),
    ({"kind": "error", "probability": 0.5}, "rule.code"),
    ({"kind": "error", "code": "X", "probability": 0.5, "count": 2}, "rule: give exactly"),
    ({"kind": "error", "code": "X", "probability": 1.5}, "rule.probability"),
    ({"kind": "error", "code": "X", "count": 0}, "rule.count"),
    ({"kind": "error", "code": "X", "count": 1, "http_status": 200}, "rule.http_status"),
    ({"kind": "throttle", "rate": 0}, "rule.rate"),
    ({"kind": "throttle", "rate": 1, "burst": 0}, "rule.burst"),
])
def test_bad_rules_name_the_field(rule: dict[str, Any], where: str) -> None:
    engine = FaultEngine()
    with pytest.raises(FaultRuleError) as info:
        engine.add_rule(rule)
    assert str(info.value).startswith(where)
    assert engine.rules() == []


def test_add_rules_is_all_or_nothing() -> None:
    engine = FaultEngine()
    with pytest.raises(FaultRuleError, match=r"faults\[1\]\.rate"):
        engine.add_rules([{"kind": "throttle", "rate": 1}, {"kind": "throttle", "rate": -1}])
    assert engine.rules() == []


# -- the one builder (build_rule / build_rules): every front end's rules go through it ----------
@pytest.mark.parametrize(("rule", "message"), [
    ({"kind": "throttle", "rate": 1, "burts": 5}, "rule.burts: not a field of a throttle rule "
                                                  "(did you mean 'burst'?)"),
    ({"kind": "error", "code": "X", "count": 1, "http_staus": 500}, "rule.http_staus: not a "
                                                                    "field of an error rule"),
    ({"kind": "latency", "distribution": "constant", "value": 1, "low": 0}, "rule.low: not a "
                                                                             "field"),
    ({"kind": "latency", "distribution": "constant", "value": 1, "code": "X"}, "rule.code: not"),
    ({"kind": "throttle", "rate": 1, "product": "ec2"}, "rule.product: 'ec2' is not one of"),
    ({"kind": "throttle", "rate": 1, "http_status": "500"}, "rule.http_status: must be 400-599"),
    ({"kind": "throttle", "rate": 1, "code": ""}, "rule.code: must be an API error code"),
    ({"kind": "error", "code": "X", "count": 1, "message": 5}, "rule.message: must be a string"),
    ({"kind": "error", "code": "X", "count": 1, "id": ["a"]}, "rule.id: must be a string"),
])
def test_builder_refuses_a_bad_parameter_by_name(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultRuleError) as info:
        build_rule(rule)
    assert str(info.value).startswith(message)
    engine = FaultEngine()
    with pytest.raises(FaultRuleError):
        engine.add_rule(rule)
    assert engine.rules() == []


def test_builder_parses_once() -> None:
    rule = build_rule({"kind": "latency", "action": "X", "product": "ECS",
                       "distribution": "uniform", "low": 1, "high": 2,
                       "match": {"N": 1}, "id": "slow"})
    assert (rule.kind, rule.action, rule.product, rule.rule_id) == ("latency", "X", "ecs", "slow")
    assert (rule.distribution, rule.args, dict(rule.match)) == ("uniform", (1.0, 2.0), {"N": "1"})
    err = build_rule({"kind": "error", "code": "Forbidden.RAM", "count": 2})
    assert (err.count, err.probability, err.answer().http_status) == (2, None, 403)
    thr = build_rule({"kind": "throttle", "rate": 2})
    assert (thr.rate, thr.burst, thr.answer().code) == (2.0, 1.0, "Throttling.User")


def test_build_rules_takes_one_rule_or_a_list() -> None:
    assert len(build_rules({"kind": "throttle", "rate": 1})) == 1
    assert build_rules([]) == []
    with pytest.raises(FaultRuleError, match=r"^faults\[1\]\.rate"):
        build_rules([{"kind": "throttle", "rate": 1}, {"kind": "throttle", "rate": 0}])
    with pytest.raises(FaultRuleError, match=r"^rule\.kind"):
        build_rules({"kind": "nope"})
    with pytest.raises(FaultRuleError, match="non-empty JSON object"):
        build_rules({})
    with pytest.raises(FaultRuleError, match=r"^faults\[0\]: must be a mapping"):
        build_rules(["x"])


def test_add_rules_with_a_clashing_id_adds_none() -> None:
    engine = FaultEngine()
    engine.add_rule({"kind": "throttle", "rate": 1, "id": "a"})
    with pytest.raises(FaultRuleError, match="'a' already exists"):
        engine.add_rules([{"kind": "throttle", "rate": 2, "id": "b"},
                          {"kind": "throttle", "rate": 3, "id": "a"}])
    assert [r["id"] for r in engine.rules()] == ["a"]
    assert engine.add_rules([{"kind": "throttle", "rate": 2}]) == ["r2"]


def test_control_endpoint_uses_the_builder_all_or_nothing() -> None:
    from emulator.server import Emulator
    from emulator.wire.control import handle
    from emulator.wire.gateway import WireRequest

    emu = Emulator.create()

    def post(body: Any) -> tuple[int, Any]:
        resp = handle(emu, WireRequest("POST", "/_emulator/faults", "", {},
                                       json.dumps(body).encode()))
        return resp.status, json.loads(resp.body)

    status, out = post([{"kind": "throttle", "rate": 1}, {"kind": "throttle", "rate": 1,
                                                          "burts": 2}])
    assert status == 400 and out["error"].startswith("faults[1].burts: not a field")
    assert emu.fault_rules() == []
    assert post({}) == (400, {"error": "fault rule must be a non-empty JSON object "
                                       "(or a list of them)"})
    status, out = post({"kind": "error", "code": "X", "count": 1, "id": "once"})
    assert (status, out) == (200, {"ids": ["once"]})
