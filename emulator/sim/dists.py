"""Random distributions scenario files name (latencies, lifetimes, gaps), sampled from a seeded RNG.

A distribution is written as a number or a duration (a constant) or a mapping with ``dist``:
``const`` (value), ``exp`` (mean), ``uniform`` (low, high), ``lognormal`` (median, p99 or sigma),
``normal`` (mean, sd; clipped at 0). Values are seconds; durations like ``"300ms"`` are accepted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from emulator.sim.units import SpecError, parse_duration

_Z99 = 2.3263478740408408  # standard normal quantile at 0.99


@dataclass(frozen=True, slots=True)
class Dist:
    """One distribution; ``sample`` is the hot path, so parameters are precomputed."""

    kind: str
    a: float = 0.0
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        kind = self.kind
        if kind == "const":
            return self.a
        if kind == "exp":
            return rng.expovariate(self.a) if self.a > 0 else 0.0
        if kind == "lognormal":
            return rng.lognormvariate(self.a, self.b)
        if kind == "uniform":
            return rng.uniform(self.a, self.b)
        return max(0.0, rng.normalvariate(self.a, self.b))

    @property
    def mean(self) -> float:
        """The expected value (used by the fast path, which replaces sampling by the mean)."""
        if self.kind == "const":
            return self.a
        if self.kind == "exp":
            return 1.0 / self.a if self.a > 0 else 0.0
        if self.kind == "lognormal":
            return math.exp(self.a + self.b * self.b / 2)
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return max(0.0, self.a)

    def describe(self) -> str:
        if self.kind == "const":
            return f"{self.a:g}s"
        if self.kind == "exp":
            return f"exp(mean {self.mean:g}s)"
        if self.kind == "lognormal":
            return f"lognormal(median {math.exp(self.a):g}s, sigma {self.b:g})"
        if self.kind == "uniform":
            return f"uniform({self.a:g}s..{self.b:g}s)"
        return f"normal({self.a:g}s, sd {self.b:g}s)"


CONST_ZERO = Dist("const", 0.0)


def _num(spec: Mapping[str, object], key: str, field: str) -> float:
    if key not in spec:
        raise SpecError(f"{field}.{key}", "required for this distribution")
    return parse_duration(spec[key], f"{field}.{key}")


def parse_dist(value: object, field: str) -> Dist:
    """Build a Dist from its scenario form; errors name ``field``."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return Dist("const", parse_duration(value, field))
    if not isinstance(value, Mapping):
        raise SpecError(field, "expected a number, a duration or a mapping with 'dist', "
                               f"got {value!r}")
    kind = value.get("dist")
    allowed = {"const", "exp", "uniform", "lognormal", "normal"}
    if kind not in allowed:
        raise SpecError(f"{field}.dist", f"expected one of {sorted(allowed)}, got {kind!r}")
    if kind == "const":
        return Dist("const", _num(value, "value", field))
    if kind == "exp":
        mean = _num(value, "mean", field)
        return Dist("exp", 1.0 / mean if mean > 0 else 0.0)
    if kind == "uniform":
        low, high = _num(value, "low", field), _num(value, "high", field)
        if high < low:
            raise SpecError(f"{field}.high", f"must be >= low ({low:g}), got {high:g}")
        return Dist("uniform", low, high)
    if kind == "lognormal":
        median = _num(value, "median", field)
        if median <= 0:
            raise SpecError(f"{field}.median", f"must be > 0, got {median:g}")
        if "sigma" in value:
            sigma = value["sigma"]
            if isinstance(sigma, bool) or not isinstance(sigma, int | float) or sigma < 0:
                raise SpecError(f"{field}.sigma", f"expected a number >= 0, got {sigma!r}")
            return Dist("lognormal", math.log(median), float(sigma))
        p99 = _num(value, "p99", field)
        if p99 < median:
            raise SpecError(f"{field}.p99", f"must be >= median ({median:g}), got {p99:g}")
        return Dist("lognormal", math.log(median), math.log(p99 / median) / _Z99)
    return Dist("normal", _num(value, "mean", field), _num(value, "sd", field))
