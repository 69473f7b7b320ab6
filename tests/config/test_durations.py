"""The one duration parser (terway/durations.py), read by eni_conf and scenario files alike.

Before issue 13 the daemon's config and the simulator each had a parser; every case where
they disagreed is pinned here to the answer both now give.
"""

from __future__ import annotations

import math

import pytest

from simulator.units import SpecError, parse_duration as scenario_duration
from terway.config.eniconf import parse_eni_conf
from terway.durations import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("300ms", 0.3), ("1m", 60.0), ("1h30m", 5400.0), ("90s", 90.0), (90, 90.0), (0.25, 0.25),
    ("500ms", 0.5), (" 2m ", 120.0),
    # the simulator refused these; Go (and eni_conf) accept them
    ("0", 0.0), (".5s", 0.5), ("1.s", 1.0), ("1500us", 0.0015), ("1500µs", 0.0015),
    ("1500μs", 0.0015), ("250000000ns", 0.25),
])
def test_accepted_by_both(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert scenario_duration(text, "f") == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "90",        # a number in a string needs a unit (Go's rule), as before in both
    "1d",        # the simulator accepted days; Go has no "d", and neither do we now
    "1h 30m",    # the simulator dropped inner spaces; Go refuses them
    math.inf, math.nan,   # both accepted non-finite seconds
    "", "m", "5x", "-5s", -1, True, None,
])
def test_refused_by_both(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
    with pytest.raises(SpecError) as info:
        scenario_duration(text, "workload[0].start")
    assert str(info.value).startswith("workload[0].start: ")


def test_a_bare_number_in_a_string_is_told_to_add_a_unit() -> None:
    with pytest.raises(ValueError, match='needs a unit: "90s"'):
        parse_duration("90")


def test_eni_conf_reads_durations_with_the_same_parser() -> None:
    conf = parse_eni_conf({"version": "1", "ip_batch_window": "1500us", "exhaustion_block": 90})
    assert conf.ip_batch_window == pytest.approx(0.0015) and conf.exhaustion_block == 90.0
