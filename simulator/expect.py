"""Expectations: one-line checks on a run's metrics, written in the scenario file.

Grammar: ``METRIC OP VALUE [WHEN]``

- METRIC: a scalar (``invariant_violations``, ``p99_network_ready``, ``api_calls_per_pod``) or a
  time series (``pending_pods``, ``idle_ips``); a label in brackets picks one series or counter
  (``available_ips[vsw-big]``, ``api_calls[CreateNetworkInterface]``, ``log_lines[IpNotEnough]``).
- OP: ``< <= > >= == !=``; VALUE: a number or a duration (``5s``).
- WHEN (time series only): ``before T`` (true at some sample before T), ``within D after T`` (true
  at some sample in [T, T+D]), ``always`` / ``always after T`` (true at every sample), or nothing
  (the last sample). T is a duration or ``@event-name``.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from simulator.collectors import LABELLED_SCALARS, LABELLED_SERIES, SCALARS, SERIES
from simulator.humanize import clock, duration, metric
from simulator.units import SpecError, parse_duration

_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_LINE = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*(?:\[[^\]]+\])?)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<value>[0-9][0-9a-z.]*)\s*(?P<when>.*?)\s*$"
)
_BEFORE = re.compile(r"^before\s+(?P<t>\S+)$")
_WITHIN = re.compile(r"^within\s+(?P<d>\S+)\s+after\s+(?P<t>\S+)$")
_ALWAYS = re.compile(r"^always(?:\s+after\s+(?P<t>\S+))?$")


@dataclass(frozen=True)
class Expectation:
    text: str
    metric: str
    op: str
    value: float
    mode: str = "last"          # last | before | within | always
    t: float = 0.0
    window: float = 0.0


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    passed: bool
    observed: str


def _time(token: str, fld: str, events: Mapping[str, float]) -> float:
    if token.startswith("@"):
        if token[1:] not in events:
            raise SpecError(fld, f"no event named {token[1:]!r} (named events: {sorted(events)})")
        return events[token[1:]]
    return parse_duration(token, fld)


def parse_expectation(raw: object, fld: str, events: Mapping[str, float]) -> Expectation:
    if not isinstance(raw, str):
        raise SpecError(fld, f"expected a string like 'pending_pods == 0 within 10m after @fix', "
                             f"got {raw!r}")
    m = _LINE.match(raw)
    if not m:
        raise SpecError(fld, f"cannot parse {raw!r}: expected 'METRIC OP VALUE [WHEN]'")
    try:
        value = float(m.group("value"))
    except ValueError:
        value = parse_duration(m.group("value"), f"{fld} (value)")
    when = m.group("when")
    base = Expectation(raw, m.group("metric"), m.group("op"), value)
    check_metric(base.metric, timed=bool(when), fld=fld)
    if not when:
        return base
    if mm := _BEFORE.match(when):
        return _replace(base, "before", _time(mm.group("t"), fld, events))
    if mm := _WITHIN.match(when):
        return _replace(base, "within", _time(mm.group("t"), fld, events),
                        parse_duration(mm.group("d"), fld))
    if mm := _ALWAYS.match(when):
        t = mm.group("t")
        return _replace(base, "always", _time(t, fld, events) if t else 0.0)
    raise SpecError(fld, f"cannot parse {when!r}: expected 'before T', 'within D after T', "
                         "'always' or 'always after T'")


def check_metric(metric: str, *, timed: bool, fld: str) -> None:
    """An unknown metric is a scenario error (exit 2), not a failed expectation: SpecError
    naming it and, when one is close, what was probably meant. ``timed`` (a WHEN clause)
    needs a time series."""
    name, bracket, _ = metric.partition("[")
    if bracket:
        series, scalars = LABELLED_SERIES, LABELLED_SCALARS
        shown = sorted(f"{n}[…]" for n in series | scalars)
    else:
        series, scalars = SERIES, SCALARS
        shown = sorted(series | scalars)
    known = series if timed else series | scalars
    if name in known:
        return
    if name in scalars:
        raise SpecError(fld, f"{metric!r} is a run total, not a time series: a WHEN clause "
                             f"needs one of {', '.join(sorted(series))}")
    close = difflib.get_close_matches(name, sorted(series | scalars), n=1)
    hint = f"; did you mean {close[0] + (metric[len(name):] if bracket else '')!r}?" \
        if close else ""
    raise SpecError(fld, f"unknown metric {metric!r}{hint} (known: {', '.join(shown)})")


def _replace(e: Expectation, mode: str, t: float, window: float = 0.0) -> Expectation:
    return Expectation(e.text, e.metric, e.op, e.value, mode, t, window)


def evaluate(
    exp: Expectation,
    scalars: Mapping[str, float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
) -> Verdict:
    """Check one expectation; an unknown metric fails with a message naming what exists. The
    observed text is for people: figures with their units, instants as the run's clock."""
    test = _OPS[exp.op]
    def shown(v: float) -> str:
        return metric(exp.metric, v)
    if exp.metric in scalars and exp.mode == "last":
        v = scalars[exp.metric]
        return Verdict(exp, test(v, exp.value), shown(v))
    if exp.metric not in series:
        known = sorted(set(scalars) | set(series))
        return Verdict(exp, False, f"no metric {exp.metric!r} (known: {', '.join(known)})")
    times, values = series[exp.metric]
    if not times:
        return Verdict(exp, False, "no samples")
    if exp.mode == "last":
        return Verdict(exp, test(values[-1], exp.value), f"{shown(values[-1])} at the end")
    if exp.mode == "before":
        pts = [(t, v) for t, v in zip(times, values, strict=True) if t < exp.t]
        hit = next(((t, v) for t, v in pts if test(v, exp.value)), None)
        if hit:
            return Verdict(exp, True, f"{shown(hit[1])} at {clock(hit[0])}")
        peak = max((v for _, v in pts), default=float("nan"))
        return Verdict(exp, False, f"never before {clock(exp.t)} (at most {shown(peak)})")
    if exp.mode == "within":
        end = exp.t + exp.window
        pts = [(t, v) for t, v in zip(times, values, strict=True) if exp.t <= t <= end]
        hit = next(((t, v) for t, v in pts if test(v, exp.value)), None)
        if hit:
            return Verdict(exp, True, f"{shown(hit[1])} at {clock(hit[0])} "
                                      f"({duration(hit[0] - exp.t)} after)")
        last = pts[-1][1] if pts else float("nan")
        return Verdict(exp, False, f"not by {clock(end)} (was {shown(last)})")
    bad = next(((t, v) for t, v in zip(times, values, strict=True)
                if t >= exp.t and not test(v, exp.value)), None)
    if bad:
        return Verdict(exp, False, f"{shown(bad[1])} at {clock(bad[0])}")
    return Verdict(exp, True, "held at every sample")
