"""The story of a run: the headline, the key moments, the per-node waits they rest on."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.collectors import Collector
from simulator.engine import Run, RunResult
from simulator.scenario import load_scenario, parse_scenario
from simulator.timeline import capacities, describe_event, headline, moments, verdict_words


@pytest.fixture(scope="module")
def seed7() -> RunResult:
    return Run(load_scenario("ip-not-enough")).execute()


@pytest.fixture(scope="module")
def seed37() -> RunResult:
    """Seed 37 leaves pods stuck on a node whose ENI slots all sit on the dry vSwitch."""
    return Run(load_scenario("ip-not-enough").with_overrides(seed=37)).execute()


def test_headline_tells_the_story_with_units(seed7: RunResult) -> None:
    assert headline(seed7) == (
        "IpNotEnough at 00:05:03 on vsw-small: up to 27 pods waiting for an address, the "
        "longest 10 min 14 s; fix at 00:15:00: adding vsw-big (8,188 addresses); all 86 Running "
        "by 00:15:40")


def test_headline_names_pods_left_stuck(seed37: RunResult) -> None:
    text = headline(seed37)
    assert "every pod a vSwitch can serve Running by 00:15:40" in text
    assert "3 pods still wait on nodes whose ENI slots all sit on a vSwitch" in text


def test_quiet_run_headline(mini: dict[str, Any]) -> None:
    text = headline(Run(parse_scenario(mini)).execute())
    assert text.endswith("no IpNotEnough")
    assert "pods Running over 10 min; network-ready p50 " in text


def test_moments_in_order_with_their_kinds(seed7: RunResult) -> None:
    got = [(m.what, m.kind) for m in moments(seed7)]
    assert got == [("start", "start"), ("first IpNotEnough", "trouble"),
                   ("vsw-small dry", "trouble"), ("most pods waiting", "trouble"),
                   ("fix", "remedy"), ("first pod on vsw-big", "remedy"),
                   ("all pods Running", "recovered"), ("end", "end")]
    times = [m.t for m in moments(seed7)]
    assert times == sorted(times) and times[-1] == seed7.sim_seconds


def test_stuck_pods_are_a_moment(seed37: RunResult) -> None:
    whats = [m.what for m in moments(seed37)]
    assert "first stuck pod" in whats
    assert "every pod a vSwitch can serve Running" in whats


def test_capacities_include_added_vswitches(seed7: RunResult) -> None:
    assert capacities(seed7) == {"vsw-small": 60, "vsw-big": 8188}
    fix = seed7.scenario.events[0]
    assert describe_event(fix) == "adding vsw-big (10.0.32.0/19, 8,188 addresses; daemons " \
                                  "restarted)"


def test_verdict_words() -> None:
    assert verdict_words(True, [True, True], False) == "PASS: 2 of 2 expectations hold"
    assert verdict_words(False, [True, False], True) == \
        "FAIL: 1 of 2 expectations failed; invariant broken"


def test_per_node_waits_are_sampled(seed37: RunResult) -> None:
    waits = seed37.collector.node_waits
    stuck = [w for w in waits.values() if w.stuck]
    assert stuck, "the node left stuck at the end"
    assert sum(w.waiting for w in waits.values()) == seed37.collector.series["pending_pods"][-1]
    assert all(w.peak_waiting >= w.waiting and w.first <= w.last for w in waits.values())


def test_node_waits_integrate_pod_time() -> None:
    col = Collector({"vsw-1": "a"})
    col.sample(0.0, {}, 0, {"n1": (2, False)})
    col.sample(10.0, {}, 1, {"n1": (3, True), "n2": (1, False)})
    col.sample(20.0, {}, 0, {})
    n1, n2 = col.node_waits["n1"], col.node_waits["n2"]
    assert (n1.pod_seconds, n1.peak_waiting, n1.peak_stuck, n1.waiting) == (50.0, 3, 3, 0)
    assert (n2.pod_seconds, n2.first, n2.last) == (10.0, 10.0, 10.0)
    assert col.to_json()["waiting_by_node"]["n1"]["pod_seconds"] == 50.0
