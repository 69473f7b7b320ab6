"""Inline SVG charts: markers and levels drawn and labelled inside the plot, data for the
crosshair, long series thinned without losing a spike."""

from __future__ import annotations

import html
import json
import math
import re

from simulator.charts import cdf_points
from simulator.svgchart import (
    RIGHT,
    Bar,
    Level,
    LineChart,
    Marker,
    Series,
    W,
    bar_chart,
    line_chart,
    nice_step,
    thin,
)


def _chart(**kw: object) -> str:
    xs = [float(t) for t in range(0, 1800, 10)]
    series = [Series("used", xs, [min(60.0, t / 10) for t in xs], "#123456"),
              Series("added later", xs, [math.nan] * 90 + [5.0] * 90, "#abcdef", "6,3")]
    return line_chart(LineChart("c", series, y_label="addresses", **kw))  # type: ignore[arg-type]


def test_marker_near_the_right_edge_is_labelled_leftwards() -> None:
    svg = _chart(markers=[Marker(1790.0, "a late fix"), Marker(60.0, "early")])
    late = re.search(r'<text x="([\d.]+)" y="\d+" text-anchor="(\w+)"[^>]*>a late fix', svg)
    assert late and late.group(2) == "end" and float(late.group(1)) <= W - RIGHT
    assert re.search(r'text-anchor="start"[^>]*>early', svg)


def test_close_markers_take_separate_rows() -> None:
    svg = _chart(markers=[Marker(300.0, "first IpNotEnough"), Marker(310.0, "vsw-small dry")])
    rows = re.findall(r'<text x="[\d.]+" y="(\d+)" text-anchor="\w+" fill', svg)
    assert len(set(rows)) == 2


def test_capacity_level_is_drawn_and_labelled() -> None:
    svg = _chart(levels=[Level(60.0, "vsw-small capacity 60", "#123456")])
    assert '<g class="level"><title>vsw-small capacity 60</title>' in svg
    assert ">vsw-small capacity 60</text>" in svg


def test_chart_carries_its_data_and_breaks_lines_at_gaps() -> None:
    svg = _chart()
    data = json.loads(html.unescape(re.search(r'data-chart="([^"]*)"', svg).group(1)))
    assert [s["label"] for s in data["series"]] == ["used", "added later"]
    assert data["series"][1]["y"][0] is None and data["xf"] == "clock"
    later = re.search(r'<g class="series" data-i="1"><path d="([^"]*)"', svg).group(1)
    assert later.startswith("M") and later.count("M") == 1
    assert "<title>used</title>" in svg and '<button type="button" data-i="1">' in svg


def test_thin_keeps_a_spike() -> None:
    xs = [float(i) for i in range(10_000)]
    ys = [0.0] * 10_000
    ys[4321] = 99.0
    tx, ty = thin(xs, ys, limit=500)
    assert len(tx) <= 520 and 99.0 in ty and tx == sorted(tx)


def test_nice_step() -> None:
    assert [nice_step(s) for s in (64.8, 8188, 1.0)] == [20.0, 2000.0, 0.2]


def test_bars_say_what_each_segment_is() -> None:
    svg = bar_chart("b", [Bar("AssignPrivateIpAddresses", [("OK", 30.0, "#0f0"),
                                                           ("IpNotEnough", 14.0, "#f00")])],
                    "calls")
    assert "<title>AssignPrivateIpAddresses: 14 calls IpNotEnough</title>" in svg
    assert ">44</text>" in svg


def test_cdf_points_end_at_every_pod() -> None:
    xs, ys = cdf_points([float(i) for i in range(1, 10_001)], points=100)
    assert len(xs) == 101 and ys[-1] == 1.0 and xs[-1] == 10_000.0
    assert cdf_points([]) == ([], [])
