"""Durations, rates and sizes as scenario authors write them ("90s", "10m", "2/s", "/19")."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
                 "h": 3600.0, "hour": 3600.0}


class SpecError(ValueError):
    """Bad scenario input; the message starts with the dotted path of the field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def parse_duration(value: object, field: str) -> float:
    """Seconds from a number (seconds) or a string like ``"1h30m"``, ``"90s"``, ``"250ms"``."""
    if isinstance(value, bool):
        raise SpecError(field, f"expected a duration like '90s' or '10m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise SpecError(field, f"a duration cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos == len(text) and pos > 0:
            return total
    raise SpecError(field, f"expected a duration like '90s', '10m' or '1h30m', got {value!r}")


def parse_rate(value: object, field: str) -> float:
    """Events per second from a number (per second) or ``"N/s"``, ``"N/min"``, ``"N/h"``."""
    if isinstance(value, bool):
        raise SpecError(field, f"expected a rate like '2/s' or '30/min', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise SpecError(field, f"a rate cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _RATE.match(value)
        if match:
            return float(match.group(1)) / _RATE_SECONDS[match.group(2)]
    raise SpecError(field, f"expected a rate like '2/s' or '30/min', got {value!r}")


def format_duration(seconds: float) -> str:
    """Short human form: ``"1h30m"``, ``"45s"``, ``"250ms"``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out or "0s"
