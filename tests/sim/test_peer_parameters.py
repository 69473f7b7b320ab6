"""Every peer's parameters are stated in the report: the peers table gives each policy's kind
and effective parameters (the registry's defaults included) and the notes say what each models;
the old ``noop`` kind still runs, as ``growonly``, with a warning."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from simulator.page import render_html
from simulator.policies import ALIASES, KINDS, policy_problems, runtime_for
from simulator.report import metrics_document
from simulator.runner import Outcome, run_scenario
from simulator.scenario import parse_scenario


@pytest.fixture(scope="module")
def outcome() -> Outcome:
    from tests.sim.conftest import MINI
    doc: dict[str, Any] = {**MINI, "duration": "3m"}
    doc["peers"] = [{"kind": "aws", "name": "aws warm-ip", "warm_ip_target": 2},
                    {"kind": "cilium", "name": "cilium"},
                    {"kind": "growonly", "name": "grow-only"}]
    return run_scenario(parse_scenario(doc))


def _peers_html(outcome: Outcome) -> str:
    page = render_html(outcome, {})
    return page[page.index("<h2>Peers side by side</h2>"):page.index("<h2>Charts</h2>")]


def test_the_peers_table_states_each_policys_parameters_with_defaults(outcome: Outcome) -> None:
    peers = _peers_html(outcome)
    assert "parameters (defaults included)" in peers
    aws = "warm_ip_target=2, minimum_ip_target=0, warm_eni_target=1, ip_cooldown_period=30"
    cilium = ("pre_allocate=8, min_allocate=0, max_allocate=0, max_above_watermark=0, "
              "excess_ip_release_delay=180")
    assert aws in peers and cilium in peers
    assert "min_pool_size=1, max_pool_size=4" in peers          # ours: the scenario's eni_conf
    assert "ip_pool_sync_period=5s" in peers and "ip_pool_sync_period=15s" in peers
    assert "never releases" in peers


def test_the_notes_say_what_each_peer_models_and_nothing_is_left_unmodelled(
        outcome: Outcome) -> None:
    peers = _peers_html(outcome)
    assert "ip_cooldown_period" in peers and "excess_ip_release_delay" in peers
    assert "not modelled" not in peers


def test_metrics_carry_the_parameters_when_peers_ran(outcome: Outcome) -> None:
    doc = metrics_document(outcome)["peer_parameters"]
    assert doc["aws warm-ip"]["parameters"]["ip_cooldown_period"] == 30
    assert doc["cilium"]["parameters"]["excess_ip_release_delay"] == 180
    assert doc["cilium"]["kind"] == "cilium" and doc["cilium"]["notes"]


def test_the_old_noop_kind_is_growonly_with_a_warning() -> None:
    assert ALIASES == {"noop": "growonly"} and "growonly" in KINDS
    with pytest.warns(FutureWarning, match="'noop' is deprecated, use 'growonly'"):
        assert policy_problems("noop", {}, "peers[0]") == []
    assert runtime_for("noop", {}) == runtime_for("growonly", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert policy_problems("growonly", {}, "peers[0]") == []
