"""Random distributions as scenario files write them (latencies, lifetimes, gaps).

A distribution is a number or a duration (a constant), or a mapping with ``dist`` (or
``distribution``, as fault rules write it) naming one of ``emulator.distributions``: the same
names and parameters as latency fault rules, with values as durations (``"300ms"``, ``5m``).
"""

from __future__ import annotations

from collections.abc import Mapping

from emulator import distributions
from emulator.distributions import Dist
from emulator.problems import did_you_mean
from simulator.units import SpecError, parse_duration
from terway.durations import parse_duration as seconds

_NAME_KEYS = ("dist", "distribution")


def parse_dist(value: object, field: str) -> Dist:
    """Build a Dist from its scenario form; every problem is named under ``field``."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return Dist("constant", parse_duration(value, field))
    if not isinstance(value, Mapping):
        raise SpecError(field, "expected a number, a duration or a mapping with 'dist', "
                               f"got {value!r}")
    key = next((k for k in _NAME_KEYS if k in value), "dist")
    name = value.get(key)
    kind = distributions.canonical(name)
    if kind is None:
        raise SpecError(f"{field}.{key}", f"expected one of {', '.join(distributions.KINDS)}, "
                        f"got {name!r}{did_you_mean(name, distributions.KINDS)}")
    known = distributions.param_names(kind)
    problems = [(f"{field}.{k}", f"not a parameter of {kind}{did_you_mean(k, known)} "
                 f"(allowed: {', '.join(known)})")
                for k in value if k not in known and k not in _NAME_KEYS]
    params = {k: v for k, v in value.items() if k in known}
    dist, more = distributions.build(kind, params, field, seconds)
    if problems or dist is None:
        raise SpecError.many([*problems, *more])
    return dist


__all__ = ["Dist", "parse_dist"]
