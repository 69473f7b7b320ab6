"""plan.html's plots (simulator/svgchart.py): the Pareto scatter and the bars of small values."""

from __future__ import annotations

import re

from simulator.svgchart import Bar, Dot, Level, pareto_front, scatter_chart, value_bar_chart


def test_pareto_front_keeps_only_the_undominated() -> None:
    dots = [Dot("a", 10, 5.0), Dot("b", 20, 4.0), Dot("c", 30, 4.5), Dot("d", 5, 9.0),
            Dot("e", 40, 1.0)]
    assert [d.label for d in pareto_front(dots)] == ["d", "a", "b", "e"]


def test_scatter_marks_the_pick_the_target_and_the_front() -> None:
    svg = scatter_chart("s", [Dot("min 0 / max 5", 10, 6.0), Dot("pick", 50, 4.0, emphasis=True),
                              Dot("adaptive", 30, 5.5)],
                        x_label="idle address-hours", y_label="p99", levels=[
                            Level(5.0, "target 5 s", "#555")], front=True)
    assert svg.count("<circle") == 3
    ringed = re.findall(r'<circle [^>]*stroke="#000"[^>]*/><text [^>]*font-weight="bold">'
                        r"([^<]*)</text>", svg)
    assert ringed == ["pick"]
    assert '<g class="level"><title>target 5 s</title>' in svg
    assert re.search(r'<polyline class="front" points="([\d.]+,[\d.]+ ?){3}"', svg)
    assert "<title>pick: 4 s, 50</title>" in svg
    assert ">idle address-hours</text>" in svg and "http" not in svg


def test_equal_results_share_one_dot_and_one_label() -> None:
    svg = scatter_chart("s", [Dot("min 2 / max 5", 10, 6.0), Dot("min 2 / max 10", 10, 6.0)],
                        x_label="x", y_label="y")
    assert svg.count("<circle") == 1 and ">min 2 / max 5, min 2 / max 10</text>" in svg


def test_close_values_get_an_axis_that_tells_them_apart() -> None:
    svg = scatter_chart("s", [Dot("a", 10, 6.3), Dot("b", 20, 5.2)], x_label="x", y_label="y")
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert abs(ys[0] - ys[1]) > 100           # not squeezed into the top of an axis from 0


def test_value_bars_keep_small_values() -> None:
    svg = value_bar_chart("b", [Bar("min 0 / max 5", [("AssignPrivateIpAddresses", 0.25, "#1"),
                                                      ("DescribeVSwitches", 0.444, "#2")])],
                          "calls/pod")
    assert ">0.694</text>" in svg
    assert "<title>min 0 / max 5: 0.444 calls/pod DescribeVSwitches</title>" in svg
