"""Durations as people write them in eni_conf and scenario files: Go's syntax or seconds.

One parser for the daemon's config and the simulator's scenarios (it imports nothing, so the
simulator can use it without loading the daemon). The grammar is Go's ``time.ParseDuration``
without signs: ``"300ms"``, ``"1h30m"``, ``".5s"``, ``"0"``; a plain number means seconds.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_HINT = 'a duration like "30s" or "5m" (Go syntax: "300ms", "1h30m") or a number of seconds'


def parse_duration(value: object) -> float:
    """Seconds from a Go duration string or a plain non-negative number of seconds.

    Raises ``ValueError`` with a short reason; the caller adds the field path.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be {_HINT}, got {_show(value)}")
    if isinstance(value, int | float):
        return _seconds(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be {_HINT}, got {_show(value)}")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        unit = ' (a number in a string needs a unit: "90s")' if _is_number(text) else ""
        raise ValueError(f"must be {_HINT}, got {_show(value)}{unit}")
    return total


def _seconds(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return float(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
