"""Figures as a person reads them: units, thousands separators, never scientific notation.

The report shows durations as ``"1 min 33 s"`` or ``"1.33 s"``, simulated instants as a clock
from the start of the run (``"00:12:30"``), counts as ``"1,234"``. ``metric()`` knows the unit
of every figure the simulator reports, so a table of scalars needs no per-row formatting.
"""

from __future__ import annotations

import math

DASH = "\u2013"     # an en dash: a missing value (NaN, None)


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value) or math.isinf(value)


def number(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits in fixed notation, thousands separated: 1330.4 → "1,330",
    0.001234 → "0.00123", 1.0754 → "1.08". Integers stay exact."""
    if _missing(value):
        return DASH
    assert value is not None
    if float(value).is_integer():
        return f"{int(value):,}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def count(value: float | None, unit: str = "") -> str:
    """A whole number with thousands separators and an optional unit: "1,234 pods"."""
    if _missing(value):
        return DASH
    assert value is not None
    text = f"{round(value):,}"
    return f"{text} {unit}" if unit else text


def duration(seconds: float | None) -> str:
    """"250 ms", "1.33 s", "45.2 s", "1 min 33 s", "2 h 5 min", "3 d 4 h"."""
    if _missing(seconds):
        return DASH
    assert seconds is not None
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 1:
        return f"{number(seconds * 1000)} ms"
    if seconds < 59.95:
        return f"{number(seconds)} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def clock(seconds: float | None) -> str:
    """Simulated time since the start as HH:MM:SS (hours go past 24 on long runs)."""
    if _missing(seconds):
        return DASH
    assert seconds is not None
    whole = max(0, math.floor(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def plural(n: float, word: str, many: str | None = None) -> str:
    """"1 pod", "2 pods", "1,000 pods"."""
    return f"{count(n)} {word if round(n) == 1 else (many or word + 's')}"


# The unit of each figure the simulator reports (collectors.SCALARS, peers_rows, labelled keys).
_DURATIONS = ("p50_network_ready", "p90_network_ready", "p99_network_ready", "max_network_ready")
_UNITS = {
    "pods_created": "pods", "pods_deleted": "pods", "pods_ready": "pods", "pod_events": "events",
    "cni_failures": "failures", "api_calls": "calls", "api_errors": "errors",
    "invariant_checks": "checks", "invariant_violations": "violations",
    "daemon_restarts": "restarts", "leaked_enis": "ENIs", "peak_addresses": "addresses",
    "log_lines": "lines", "nodes": "nodes",
    # time series (collectors.SERIES, LABELLED_SERIES)
    "pending_pods": "pods", "stuck_pods": "pods", "pending_pods_with_room": "pods",
    "stuck_while_idle": "pods",
    "running_pods": "pods", "used_ips": "addresses", "idle_ips": "addresses",
    "available_ips": "addresses",
}
_RATIOS = {"api_calls_per_pod": "calls/pod", "idle_ip_hours": "address-hours",
           "mean_idle_ips": "addresses", "stuck_while_idle_pod_seconds": "pod-seconds"}


def metric(name: str, value: float | None) -> str:
    """A scalar with its unit, chosen by its name (``api_calls[Action]`` as ``api_calls``)."""
    base = name.split("[", 1)[0]
    if base in _DURATIONS:
        return duration(value)
    if base == "first_ip_not_enough":
        return DASH if _missing(value) else f"at {clock(value)}"
    if base in _RATIOS:
        return DASH if _missing(value) else f"{number(value)} {_RATIOS[base]}"
    return count(value, _UNITS.get(base, ""))


__all__ = ["DASH", "clock", "count", "duration", "metric", "number", "plural"]
