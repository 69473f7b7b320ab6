"""Fault injection: latency distributions, error rules and token-bucket throttling per action.

Modelled on the hooks of Cilium's EC2 fake. Rules are plain JSON-able dicts so the control
endpoint, world files and scenarios can pass them through unchanged; they can be added and
removed while the emulator runs. Every random draw comes from one generator seeded by ``seed``,
so the same seed and the same sequence of ``decide`` calls give the same decisions.

Rule dicts (``action`` is an exact action name or ``"*"``; ``product`` optional):

- ``{"kind": "latency", "action": "*", "distribution": "constant", "value": 0.05}``;
  distributions ``constant(value)``, ``uniform(low, high)``, ``normal(mean, stddev)``,
  ``lognormal(mu, sigma)``, ``exponential(mean)``; negative draws clamp to 0. An exact-action rule
  beats ``"*"``; among equals the newest wins.
- ``{"kind": "error", "action": "AssignPrivateIpAddresses", "code": "InternalError",
  "message": "...", "http_status": 500, "probability": 0.1 | "count": 3,
  "match": {"NetworkInterfaceId": "eni-x"}}``: ``count`` fires on the next N matching calls and
  then the rule retires; ``probability`` fires on each matching call with that chance. A code
  of the emulator's table (``emulator.model.codes``: ``Forbidden.RAM``, ``Throttling``,
  ``InternalError``…) answers that row's status and message unless the rule gives its own;
  other codes answer 400 (500/503 for InternalError/ServiceUnavailable look-alikes).
- ``{"kind": "throttle", "action": "*", "rate": 10, "burst": 20}``: a token bucket per action
  (rate tokens per second, burst capacity); an empty bucket answers ``Throttling.User`` (400,
  "Request was denied due to user flow control.") unless ``code``/``message``/``http_status``
  say otherwise (``"code": "Throttling"``, what upstream retries on, gets its own message).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.model import codes
from emulator.model.errors import ApiError

THROTTLE_CODE = codes.THROTTLING_USER.code
THROTTLE_MESSAGE = codes.THROTTLING_USER.template
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",), "uniform": ("low", "high"), "normal": ("mean", "stddev"),
    "lognormal": ("mu", "sigma"), "exponential": ("mean",),
}


class FaultRuleError(ValueError):
    """A rule dict that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class FaultDecision:
    latency: float = 0.0
    error: ApiError | None = None


@dataclass(slots=True)
class _Rule:
    rule_id: str
    kind: str
    action: str
    product: str
    spec: dict[str, Any]
    match: dict[str, str] = field(default_factory=dict)
    remaining: int | None = None                   # error rules with a count
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # action → (tokens, t)

    def applies(self, product: str, action: str, params: Mapping[str, str]) -> bool:
        if self.product and product and self.product != product.lower():
            return False
        if self.action not in ("*", action):
            return False
        return all(params.get(k) == v for k, v in self.match.items())


def _number(spec: Mapping[str, Any], key: str, where: str, *, minimum: float = 0.0,
            allow_equal: bool = True) -> float:
    if key not in spec:
        raise FaultRuleError(f"{where}.{key}: required")
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise FaultRuleError(f"{where}.{key}: {value!r} is not a number")
    if value < minimum or (not allow_equal and value == minimum):
        relation = ">=" if allow_equal else ">"
        raise FaultRuleError(f"{where}.{key}: must be {relation} {minimum}, got {value}")
    return float(value)


def _check_latency(spec: Mapping[str, Any], where: str) -> None:
    dist = spec.get("distribution")
    if dist not in _DISTRIBUTIONS:
        raise FaultRuleError(f"{where}.distribution: {dist!r} is not one of "
                             f"{', '.join(_DISTRIBUTIONS)}")
    for key in _DISTRIBUTIONS[dist]:
        minimum = -math.inf if key in ("mean", "mu") and dist in ("normal", "lognormal") else 0.0
        _number(spec, key, where, minimum=minimum)
    if dist == "uniform" and spec["high"] < spec["low"]:
        raise FaultRuleError(f"{where}.high: must be >= low")
    if dist == "exponential" and spec["mean"] == 0:
        raise FaultRuleError(f"{where}.mean: must be > 0")


def _check_error(spec: Mapping[str, Any], where: str) -> None:
    code = spec.get("code")
    if not isinstance(code, str) or not code:
        raise FaultRuleError(f"{where}.code: required (an API error code)")
    has_p, has_n = "probability" in spec, "count" in spec
    if has_p == has_n:
        raise FaultRuleError(f"{where}: give exactly one of probability or count")
    if has_p and _number(spec, "probability", where) > 1:
        raise FaultRuleError(f"{where}.probability: must be within [0, 1]")
    if has_n and (not isinstance(spec["count"], int) or isinstance(spec["count"], bool)
                  or spec["count"] < 1):
        raise FaultRuleError(f"{where}.count: must be an integer >= 1")
    status = spec.get("http_status", 400)
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultRuleError(f"{where}.http_status: must be 400-599, got {status!r}")


def _check_throttle(spec: Mapping[str, Any], where: str) -> None:
    _number(spec, "rate", where, allow_equal=False)
    burst = _number(spec, "burst", where, minimum=1.0) if "burst" in spec else 1.0
    if burst < 1:
        raise FaultRuleError(f"{where}.burst: must be >= 1")


_CHECKS: dict[str, Callable[[Mapping[str, Any], str], None]] = {
    "latency": _check_latency, "error": _check_error, "throttle": _check_throttle,
}


def validate_rule(spec: Mapping[str, Any], where: str = "rule") -> None:
    """Raise FaultRuleError (naming the field under ``where``) unless ``spec`` is a usable rule."""
    if not isinstance(spec, Mapping):
        raise FaultRuleError(f"{where}: must be a mapping")
    kind = spec.get("kind")
    if kind not in _CHECKS:
        raise FaultRuleError(f"{where}.kind: {kind!r} is not one of latency, error, throttle")
    action = spec.get("action", "*")
    if not isinstance(action, str) or not action:
        raise FaultRuleError(f"{where}.action: must be an action name or '*'")
    match = spec.get("match", {})
    if not isinstance(match, Mapping) or not all(isinstance(k, str) for k in match):
        raise FaultRuleError(f"{where}.match: must map parameter names to values")
    _CHECKS[kind](spec, where)


class FaultEngine:
    """Decides, per call, how long it takes and whether it fails."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._next_id = 0
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self.seed = seed
            self._rng = random.Random(f"faults:{seed}")

    def add_rule(self, spec: Mapping[str, Any], rule_id: str | None = None) -> str:
        """Validate and add one rule; returns its id (``spec["id"]`` or ``r1``, ``r2``…)."""
        validate_rule(spec)
        with self._lock:
            self._next_id += 1
            rid = rule_id or str(spec.get("id") or f"r{self._next_id}")
            if any(r.rule_id == rid for r in self._rules):
                raise FaultRuleError(f"rule.id: {rid!r} already exists")
            self._rules.append(_Rule(
                rule_id=rid, kind=spec["kind"], action=spec.get("action", "*"),
                product=str(spec.get("product", "")).lower(), spec=dict(spec),
                match={str(k): str(v) for k, v in spec.get("match", {}).items()},
                remaining=spec.get("count") if spec["kind"] == "error" else None))
            return rid

    def add_rules(self, specs: list[Mapping[str, Any]]) -> list[str]:
        """All or nothing: every rule is validated before any is added."""
        for i, spec in enumerate(specs):
            validate_rule(spec, f"faults[{i}]")
        return [self.add_rule(spec) for spec in specs]

    def remove_rule(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.rule_id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def empty(self) -> bool:
        """True when no rule is set: callers may skip ``decide`` (it would answer 0 s, no error)."""
        return not self._rules

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**r.spec, "id": r.rule_id,
                     **({"remaining": r.remaining} if r.remaining is not None else {})}
                    for r in self._rules]

    def decide(self, action: str, params: Mapping[str, str], now: float,
               product: str = "") -> FaultDecision:
        """The latency of this call and the error to answer instead of running it (or None)."""
        with self._lock:
            matching = [r for r in self._rules if r.applies(product, action, params)]
            latency = self._latency(matching, action)
            error = self._throttle(matching, action, now) or self._error(matching)
            self._rules = [r for r in self._rules if r.remaining != 0]
            return FaultDecision(latency, error)

    def _latency(self, rules: list[_Rule], action: str) -> float:
        chosen: _Rule | None = None
        for rule in rules:
            if rule.kind != "latency":
                continue
            if chosen is None or rule.action == action or chosen.action == "*":
                chosen = rule
        return self._draw(chosen.spec) if chosen else 0.0

    def _draw(self, spec: Mapping[str, Any]) -> float:
        rng, dist = self._rng, spec["distribution"]
        if dist == "constant":
            value = float(spec["value"])
        elif dist == "uniform":
            value = rng.uniform(spec["low"], spec["high"])
        elif dist == "normal":
            value = rng.gauss(spec["mean"], spec["stddev"])
        elif dist == "lognormal":
            value = rng.lognormvariate(spec["mu"], spec["sigma"])
        else:
            value = rng.expovariate(1.0 / spec["mean"])
        return max(0.0, value)

    def _throttle(self, rules: list[_Rule], action: str, now: float) -> ApiError | None:
        for rule in rules:
            if rule.kind != "throttle":
                continue
            rate, burst = float(rule.spec["rate"]), float(rule.spec.get("burst", 1))
            tokens, last = rule.buckets.get(action, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            if tokens < 1.0:
                rule.buckets[action] = (tokens, now)
                return _rule_error(rule.spec, THROTTLE_CODE)
            rule.buckets[action] = (tokens - 1.0, now)
        return None

    def _error(self, rules: list[_Rule]) -> ApiError | None:
        for rule in rules:
            if rule.kind != "error":
                continue
            if rule.remaining is not None:
                if rule.remaining <= 0:
                    continue
                rule.remaining -= 1
            elif self._rng.random() >= float(rule.spec["probability"]):
                continue
            return _rule_error(rule.spec, rule.spec["code"])
        return None


def _rule_error(spec: Mapping[str, Any], default_code: str) -> ApiError:
    """The rule's error; what it leaves out comes from the codes table."""
    status = spec.get("http_status")
    return codes.injected(str(spec.get("code", default_code)), spec.get("message"),
                          None if status is None else int(status))
