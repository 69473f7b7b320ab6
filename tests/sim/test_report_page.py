"""report.html tells the story: the headline first with the verdict beside it, a timeline, units
everywhere, the nodes whose pods waited, the peers whenever they ran, whole log lines, and
nothing outside the file."""

from __future__ import annotations

import re
from typing import Any

import pytest

from simulator.page import render_html
from simulator.runner import Outcome, run_scenario
from simulator.scenario import load_scenario, parse_scenario

SCIENTIFIC = re.compile(r"\d\.?\d*e[+-]\d")


@pytest.fixture(scope="module")
def outcome() -> Outcome:
    return run_scenario(load_scenario("ip-not-enough").with_overrides(seed=37), with_peers=False)


@pytest.fixture(scope="module")
def page(outcome: Outcome) -> str:
    return render_html(outcome, {})


def _text(page: str) -> str:
    """The visible text (no tags, no data attributes, no script)."""
    page = re.sub(r"<script>.*?</script>|<style>.*?</style>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_headline_comes_first_with_the_verdict_beside_it(page: str) -> None:
    top = page.index("id='headline'")
    assert top < page.index("<h2>Timeline</h2>") < page.index("<h2>Expectations</h2>")
    assert "IpNotEnough at 00:05:46 on vsw-small: up to 34 pods waiting" in page
    assert "PASS: 6 of 6 expectations hold" in page


def test_timeline_lists_the_key_moments(page: str) -> None:
    timeline = page[page.index("<h2>Timeline</h2>"):page.index("<h2>Expectations</h2>")]
    for moment in ("first IpNotEnough", "vsw-small dry", "fix", "first pod on vsw-big",
                   "first stuck pod", "every pod a vSwitch can serve Running", "end"):
        assert f"<td>{moment}</td>" in timeline, moment
    assert "<td>00:15:00</td>" in timeline


def test_figures_have_units_and_no_scientific_notation(page: str) -> None:
    text = _text(page)
    assert not SCIENTIFIC.search(text), SCIENTIFIC.search(text)
    assert "calls/pod" in text and "address-hours" in text and " min " in text


def test_nodes_whose_pods_waited_and_the_stuck_one(page: str) -> None:
    nodes = page[page.index("<h2>Waiting pods per node</h2>"):page.index("<h2>Key figures")]
    assert nodes.count("<td>node-") >= 2
    assert '<tr class="trouble"><td>node-' in nodes, "the node left stuck at the end"


def test_the_log_shows_whole_lines_in_a_scrollable_panel(outcome: Outcome, page: str) -> None:
    log = page[page.index("<pre class='log'"):]
    first = outcome.main.log.lines[0].replace('"', "&quot;")
    assert first in log
    assert "pre.log{max-height:30em;overflow:auto}" in page


def test_the_page_needs_nothing_outside_itself(page: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "<img" not in page
    assert page.count("<script") == 1 and "<script src" not in page
    assert page.count('<svg class="chart"') == 3 and '<svg class="bars"' in page


def test_peers_table_wherever_peers_ran(mini: dict[str, Any]) -> None:
    mini["peers"] = [{"kind": "ondemand", "name": "on-demand"}]
    page = render_html(run_scenario(parse_scenario(mini)), {})
    peers = page[page.index("<h2>Peers side by side</h2>"):page.index("<h2>Charts</h2>")]
    assert "<td>on-demand</td>" in peers and "calls/pod" in peers
    assert not SCIENTIFIC.search(_text(peers))


def test_no_peers_no_table(page: str) -> None:
    assert "Peers side by side" not in page
