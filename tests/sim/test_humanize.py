"""Figures as the report writes them: units, separators, never scientific notation."""

from __future__ import annotations

import math

import pytest

from simulator.expect import evaluate, parse_expectation
from simulator.humanize import DASH, clock, count, duration, metric, number, plural


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0428, "42.8 ms"), (0.5, "500 ms"), (1.33, "1.33 s"), (4.2828, "4.28 s"), (45.24, "45.2 s"),
    (59.97, "1 min"), (93, "1 min 33 s"), (627.11, "10 min 27 s"), (3600, "1 h"),
    (3900, "1 h 5 min"), (86400 + 7200, "1 d 2 h"), (-2, "-2 s"), (math.nan, DASH),
])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [
    (1330.4, "1,330"), (1234567, "1,234,567"), (0.001234, "0.00123"), (1.0754, "1.08"),
    (1.9, "1.9"), (2.0, "2"), (0, "0"), (math.nan, DASH), (None, DASH), (math.inf, DASH),
])
def test_number_is_never_scientific(value: float | None, text: str) -> None:
    assert number(value) == text


def test_clock_counts_hours_past_a_day() -> None:
    assert clock(0) == "00:00:00"
    assert clock(303.97) == "00:05:03"
    assert clock(26 * 3600 + 61) == "26:01:01"


def test_count_and_plural() -> None:
    assert count(1234.0, "pods") == "1,234 pods"
    assert count(None) == DASH
    assert plural(1, "pod") == "1 pod"
    assert plural(1500, "pod") == "1,500 pods"
    assert plural(2, "such log line") == "2 such log lines"


@pytest.mark.parametrize(("name", "value", "text"), [
    ("p99_network_ready", 1330.0, "22 min 10 s"),
    ("p50_network_ready", 0.05, "50 ms"),
    ("api_calls_per_pod", 1.075472, "1.08 calls/pod"),
    ("idle_ip_hours", 519.2, "519 address-hours"),
    ("first_ip_not_enough", 303.97, "at 00:05:03"),
    ("first_ip_not_enough", math.nan, DASH),
    ("pods_ready", 106.0, "106 pods"),
    ("api_calls[AssignPrivateIpAddresses]", 44.0, "44 calls"),
    ("something_new", 12345.0, "12,345"),
])
def test_metric_has_its_unit(name: str, value: float, text: str) -> None:
    assert metric(name, value) == text
    assert "e+" not in metric(name, value)


def _verdict(line: str, scalars: dict[str, float],
             series: dict[str, tuple[list[float], list[float]]]) -> str:
    exp = parse_expectation(line, "expectations[0]", {"fix": 600.0})
    return evaluate(exp, scalars, series).observed


def test_expectation_verdicts_read_with_units_and_the_runs_clock() -> None:
    pending = ([0.0, 300.0, 700.0, 900.0], [0.0, 1500.0, 1200.0, 0.0])
    assert _verdict("p99_network_ready < 10s", {"p99_network_ready": 5.83651}, {}) == "5.84 s"
    assert _verdict("api_calls_per_pod < 1", {"api_calls_per_pod": 0.139272}, {}) \
        == "0.139 calls/pod"
    assert _verdict("pods_ready > 0", {"pods_ready": 12345.0}, {}) == "12,345 pods"
    series = {"pending_pods": pending}
    assert _verdict("pending_pods > 1000 before @fix", {}, series) == "1,500 pods at 00:05:00"
    assert _verdict("pending_pods == 0 within 10m after @fix", {}, series) \
        == "0 pods at 00:15:00 (5 min after)"
    assert _verdict("pending_pods < 2000 always", {}, series) == "held at every sample"
    assert _verdict("pending_pods == 0", {}, series) == "0 pods at the end"
    assert _verdict("pending_pods > 2000 before 10m", {}, series) \
        == "never before 00:10:00 (at most 1,500 pods)"
