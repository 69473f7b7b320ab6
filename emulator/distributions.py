"""Random distributions: one vocabulary for latency fault rules (emulator/faults.py) and the
simulator's scenario files (simulator/dists.py), and the one place they are sampled.

Names and parameters (values in seconds):

- ``constant``: ``value``
- ``uniform``: ``low``, ``high``
- ``normal``: ``mean``, ``sd`` (draws below 0 clamp to 0)
- ``exponential``: ``mean`` (> 0)
- ``lognormal``: ``median`` and ``p99`` or ``sigma``; or ``mu`` (log seconds) and ``sigma``

Older spellings still read: ``const``, ``exp`` (names) and ``stddev`` (normal's ``sd``). How a
value is written (a number, or a duration like ``"300ms"``) is the caller's: it passes a reader.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Z99 = 2.3263478740408408  # standard normal quantile at 0.99
ALIASES = {"const": "constant", "exp": "exponential"}
PARAM_ALIASES = {"stddev": "sd"}
# name → the parameter sets it may be given with (the first is what it is documented with)
KINDS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "constant": (("value",),),
    "uniform": (("low", "high"),),
    "normal": (("mean", "sd"),),
    "exponential": (("mean",),),
    "lognormal": (("median", "p99"), ("median", "sigma"), ("mu", "sigma")),
}
PLAIN = frozenset({"mu", "sigma"})   # not seconds: log seconds and a shape
Problem = tuple[str, str]            # (field path, why)
Reader = Callable[[object], float]   # a value in seconds, or ValueError(why)


@dataclass(frozen=True, slots=True)
class Dist:
    """One distribution; ``sample`` is the hot path, so parameters are precomputed (the rate of
    an exponential, mu and sigma of a lognormal)."""

    kind: str
    a: float = 0.0
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        kind = self.kind
        if kind == "constant":
            return self.a
        if kind == "lognormal":
            return rng.lognormvariate(self.a, self.b)
        if kind == "exponential":
            return rng.expovariate(self.a)
        if kind == "uniform":
            return rng.uniform(self.a, self.b)
        return max(0.0, rng.gauss(self.a, self.b))

    @property
    def mean(self) -> float:
        """The expected value (the simulator's fast path uses it in place of samples)."""
        if self.kind == "exponential":
            return 1.0 / self.a
        if self.kind == "lognormal":
            return math.exp(self.a + self.b * self.b / 2)
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return max(0.0, self.a)

    def describe(self) -> str:
        if self.kind == "constant":
            return f"{self.a:g}s"
        if self.kind == "exponential":
            return f"exponential(mean {self.mean:g}s)"
        if self.kind == "lognormal":
            return f"lognormal(median {math.exp(self.a):g}s, sigma {self.b:g})"
        if self.kind == "uniform":
            return f"uniform({self.a:g}s..{self.b:g}s)"
        return f"normal({self.a:g}s, sd {self.b:g}s)"


def canonical(name: object) -> str | None:
    """The vocabulary's name for ``name`` (old spellings included), None if it names none."""
    text = ALIASES.get(str(name), str(name))
    return text if text in KINDS else None


def param_names(kind: str) -> tuple[str, ...]:
    """Every parameter ``kind`` reads, with the old spellings."""
    names = dict.fromkeys(n for group in KINDS[kind] for n in group)
    names.update({old: None for old, new in PARAM_ALIASES.items() if new in names})
    return tuple(names)


def build(kind: str, spec: Mapping[str, object], where: str, seconds: Reader
          ) -> tuple[Dist | None, list[Problem]]:
    """The Dist that ``spec``'s parameters give a ``kind`` (a canonical name), or None and
    every problem with them, each naming ``<where>.<parameter>``."""
    given = {PARAM_ALIASES.get(str(k), str(k)): v for k, v in spec.items()}
    group = next((g for g in KINDS[kind] if all(n in given for n in g)), None)
    if group is None:
        missing = [n for n in KINDS[kind][0] if n not in given] or list(KINDS[kind][-1])
        return None, [(f"{where}.{n}", f"required for {kind}") for n in missing]
    values: dict[str, float] = {}
    problems: list[Problem] = []
    for name in group:
        try:
            values[name] = _plain(given[name]) if name in PLAIN else seconds(given[name])
        except ValueError as exc:
            problems.append((f"{where}.{name}", str(exc)))
    if problems:
        return None, problems
    return _make(kind, values, where)


def _make(kind: str, v: dict[str, float], where: str) -> tuple[Dist | None, list[Problem]]:
    def bad(name: str, why: str) -> tuple[None, list[Problem]]:
        return None, [(f"{where}.{name}", why)]

    if kind == "constant":
        return Dist(kind, v["value"]), []
    if kind == "uniform":
        if v["high"] < v["low"]:
            return bad("high", f"must be >= low ({v['low']:g}), got {v['high']:g}")
        return Dist(kind, v["low"], v["high"]), []
    if kind == "normal":
        return Dist(kind, v["mean"], v["sd"]), []
    if kind == "exponential":
        if v["mean"] <= 0:
            return bad("mean", "must be > 0 (a constant 0 is 'constant')")
        return Dist(kind, 1.0 / v["mean"]), []
    if v.get("sigma", 0.0) < 0:
        return bad("sigma", f"must be >= 0, got {v['sigma']:g}")
    if "mu" in v:
        return Dist(kind, v["mu"], v["sigma"]), []
    if v["median"] <= 0:
        return bad("median", f"must be > 0, got {v['median']:g}")
    if "sigma" in v:
        return Dist(kind, math.log(v["median"]), v["sigma"]), []
    if v["p99"] < v["median"]:
        return bad("p99", f"must be >= median ({v['median']:g}), got {v['p99']:g}")
    return Dist(kind, math.log(v["median"]), math.log(v["p99"] / v["median"]) / Z99), []


def _plain(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a number, got {value!r}")
    return float(value)


def seconds_number(value: object) -> float:
    """A value in seconds written as a plain number >= 0 (fault rules are JSON)."""
    number = _plain(value)
    if number < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return number
