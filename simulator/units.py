"""Durations, rates and sizes as scenario authors write them ("90s", "10m", "2/s", "/19")."""

from __future__ import annotations

import re

from emulator.problems import InputError
from terway import durations

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
                 "h": 3600.0, "hour": 3600.0}


class SpecError(InputError):
    """Bad scenario input; ``problems`` lists every ``"<dotted path>: why"`` (the message
    starts with the first)."""


def parse_duration(value: object, field: str) -> float:
    """``terway.durations.parse_duration`` with the scenario field named in the error."""
    try:
        return durations.parse_duration(value)
    except ValueError as exc:
        raise SpecError(field, str(exc)) from None


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
