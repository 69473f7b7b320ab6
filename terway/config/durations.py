"""Go-style durations ("300ms", "30m", "1h30m", "120s") as used by upstream eni_conf."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Seconds from a Go duration string or a plain non-negative number of seconds.

    Raises ``ValueError`` with a short reason (the caller adds the field path).
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a duration like \"30s\" or \"5m\", got {_show(value)}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"must be >= 0, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a duration like \"30s\" or \"5m\", got {_show(value)}")
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
        raise ValueError(f"must be a duration like \"30s\" or \"5m\", got {_show(value)}")
    return total


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
