"""Fault injection: latency distributions, error rules and token-bucket throttling per action.

Modelled on the hooks of Cilium's EC2 fake. Rules are plain JSON-able dicts so the control
endpoint, world files and scenarios can pass them through unchanged; they can be added and
removed while the emulator runs. Every random draw comes from one generator seeded by ``seed``,
so the same seed and the same sequence of ``decide`` calls give the same decisions.

``build_rule`` is the one place a rule dict is checked and parsed (into a ``FaultRule``); every
front end goes through it (``build_rules`` for one rule or a list): the control endpoint, the
CLI, world and scenario files and ``FaultEngine.add_rule(s)``. A bad or unknown field raises
``FaultRuleError("<where>.<field>: <why>")``.

Rule dicts (``action`` is an exact action name or ``"*"``; ``product`` optional):

- ``{"kind": "latency", "action": "*", "distribution": "constant", "value": 0.05}``;
  distributions and their parameters (seconds, as numbers) are ``emulator.distributions``'s, the
  simulator's too: ``constant(value)``, ``uniform(low, high)``, ``normal(mean, sd)``,
  ``lognormal(median, p99 | sigma)`` or ``lognormal(mu, sigma)``, ``exponential(mean)``. An
  exact-action rule beats ``"*"``; among equals the newest wins.
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

import difflib
import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator import distributions
from emulator.distributions import Dist
from emulator.model import codes
from emulator.model.errors import ApiError

THROTTLE_CODE = codes.THROTTLING_USER.code
THROTTLE_MESSAGE = codes.THROTTLING_USER.template
KINDS = ("latency", "error", "throttle")
PRODUCTS = ("ecs", "vpc")
_COMMON_FIELDS = ("kind", "action", "product", "match", "id")
_ANSWER_FIELDS = ("code", "message", "http_status")
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "latency": ("distribution",),
    "error": (*_ANSWER_FIELDS, "probability", "count"),
    "throttle": ("rate", "burst", *_ANSWER_FIELDS),
}


class FaultRuleError(ValueError):
    """A rule dict that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class FaultDecision:
    latency: float = 0.0
    error: ApiError | None = None


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One rule, checked and parsed: what ``build_rule`` makes of a rule dict.

    ``spec`` is the dict as given (``FaultEngine.rules()`` shows it); every other field is read
    from it once, here, and nothing reads the dict again."""

    kind: str
    spec: Mapping[str, Any]
    action: str = "*"
    product: str = ""                               # "" = both products
    match: Mapping[str, str] = field(default_factory=dict)
    rule_id: str = ""                               # spec["id"], if given
    distribution: str = ""                          # latency: the name as given
    args: tuple[float, ...] = ()                    # latency: its parameters as given
    dist: Dist | None = None                        # latency: what is sampled
    code: str = ""                                  # error (required) / throttle (optional)
    message: str | None = None
    http_status: int | None = None
    probability: float | None = None                # error: exactly one of probability/count
    count: int | None = None
    rate: float = 0.0                               # throttle
    burst: float = 1.0

    def applies(self, product: str, action: str, params: Mapping[str, str]) -> bool:
        if self.product and product and self.product != product.lower():
            return False
        if self.action not in ("*", action):
            return False
        return all(params.get(k) == v for k, v in self.match.items())

    def answer(self) -> ApiError:
        """The error this rule answers; what it leaves out comes from the codes table."""
        return codes.injected(self.code or THROTTLE_CODE, self.message, self.http_status)


# -- the one builder: a rule dict (control endpoint, CLI, world file, scenario, Python) → rule ----
def build_rule(spec: Any, where: str = "rule") -> FaultRule:
    """Check ``spec`` and parse it into a ``FaultRule``; raise FaultRuleError naming the field
    (``<where>.<field>: why``) for the first thing wrong with it."""
    if not isinstance(spec, Mapping):
        raise FaultRuleError(f"{where}: must be a mapping")
    kind = spec.get("kind")
    if kind not in _KIND_FIELDS:
        raise FaultRuleError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    action = spec.get("action", "*")
    if not isinstance(action, str) or not action:
        raise FaultRuleError(f"{where}.action: must be an action name or '*'")
    product = spec.get("product", "")
    if not isinstance(product, str) or product.lower() not in ("", *PRODUCTS):
        raise FaultRuleError(f"{where}.product: {product!r} is not one of {', '.join(PRODUCTS)}")
    match = spec.get("match", {})
    if not isinstance(match, Mapping) or not all(isinstance(k, str) for k in match):
        raise FaultRuleError(f"{where}.match: must map parameter names to values")
    rule_id = spec.get("id") or ""
    if isinstance(rule_id, bool) or not isinstance(rule_id, str | int):
        raise FaultRuleError(f"{where}.id: must be a string, got {rule_id!r}")
    common: dict[str, Any] = {
        "kind": kind, "spec": dict(spec), "action": action, "product": product.lower(),
        "match": {str(k): str(v) for k, v in match.items()}, "rule_id": str(rule_id or "")}
    fields = _BUILDERS[kind](spec, where)
    _refuse_unknown(spec, where, kind, str(fields.get("distribution", "")))
    return FaultRule(**common, **fields)


def validate_rule(spec: Any, where: str = "rule") -> None:
    """Raise FaultRuleError (naming the field under ``where``) unless ``spec`` is a usable rule."""
    build_rule(spec, where)


def build_rules(body: Any, where: str = "faults") -> list[FaultRule]:
    """One rule dict or a list of them (what ``POST /_emulator/faults`` and ``terway-emulator
    fault add`` take, and a world's or scenario's ``faults``), all checked before any is used:
    a single rule is named ``rule``, the i-th of a list ``<where>[i]``."""
    if isinstance(body, list):
        return [build_rule(spec, f"{where}[{i}]") for i, spec in enumerate(body)]
    if not isinstance(body, Mapping) or not body:
        raise FaultRuleError("fault rule must be a non-empty JSON object (or a list of them)")
    return [build_rule(body)]


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


def _latency(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    name = spec.get("distribution")
    kind = distributions.canonical(name)
    if kind is None:
        raise FaultRuleError(f"{where}.distribution: {name!r} is not one of "
                             f"{', '.join(distributions.KINDS)}")
    params = {k: v for k, v in spec.items() if k in distributions.param_names(kind)}
    dist, problems = distributions.build(kind, params, where, distributions.seconds_number)
    if dist is None:
        path, why = problems[0]
        raise FaultRuleError(f"{path}: {why}")
    args = tuple(float(v) for v in params.values())
    return {"distribution": name, "args": args, "dist": dist}


def _answer(spec: Mapping[str, Any], where: str, *, code_required: bool) -> dict[str, Any]:
    code = spec.get("code")
    if code_required and not code:
        raise FaultRuleError(f"{where}.code: required (an API error code)")
    if code is not None and (not isinstance(code, str) or not code):
        raise FaultRuleError(f"{where}.code: must be an API error code, got {code!r}")
    message = spec.get("message")
    if message is not None and not isinstance(message, str):
        raise FaultRuleError(f"{where}.message: must be a string, got {message!r}")
    return {"code": code or "", "message": message}


def _status(spec: Mapping[str, Any], where: str) -> int | None:
    status = spec.get("http_status")
    if status is None:
        return None
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultRuleError(f"{where}.http_status: must be 400-599, got {status!r}")
    return status


def _error(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    fields = _answer(spec, where, code_required=True)
    has_p, has_n = "probability" in spec, "count" in spec
    if has_p == has_n:
        raise FaultRuleError(f"{where}: give exactly one of probability or count")
    if has_p:
        fields["probability"] = _number(spec, "probability", where)
        if fields["probability"] > 1:
            raise FaultRuleError(f"{where}.probability: must be within [0, 1]")
    else:
        count = spec["count"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultRuleError(f"{where}.count: must be an integer >= 1")
        fields["count"] = count
    fields["http_status"] = _status(spec, where)
    return fields


def _throttle(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    rate = _number(spec, "rate", where, allow_equal=False)
    burst = _number(spec, "burst", where, minimum=1.0) if "burst" in spec else 1.0
    fields = _answer(spec, where, code_required=False)
    return {**fields, "rate": rate, "burst": burst, "http_status": _status(spec, where)}


_BUILDERS: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    "latency": _latency, "error": _error, "throttle": _throttle,
}


def _refuse_unknown(spec: Mapping[str, Any], where: str, kind: str, distribution: str) -> None:
    """A field this kind of rule does not read is a mistake (a typo would be ignored silently)."""
    kind_of = distributions.canonical(distribution)
    known = (*_COMMON_FIELDS, *_KIND_FIELDS[kind],
             *(distributions.param_names(kind_of) if kind_of else ()))
    for key in spec:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        article = "an" if kind == "error" else "a"
        raise FaultRuleError(f"{where}.{key}: not a field of {article} {kind} rule{hint}; "
                             f"known: {', '.join(known)}")


@dataclass(slots=True)
class _Active:
    """A rule in an engine: the parsed rule and what changes as calls come."""

    rule_id: str
    rule: FaultRule
    remaining: int | None = None                   # error rules with a count
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # action → (tokens, t)


class FaultEngine:
    """Decides, per call, how long it takes and whether it fails."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Active] = []
        self._next_id = 0
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self.seed = seed
            self._rng = random.Random(f"faults:{seed}")

    def add_rule(self, spec: Mapping[str, Any] | FaultRule, rule_id: str | None = None) -> str:
        """Check and add one rule (a dict, or a ``FaultRule`` from ``build_rule``); returns its id
        (``rule_id``, else ``spec["id"]``, else ``r1``, ``r2``…)."""
        rule = spec if isinstance(spec, FaultRule) else build_rule(spec)
        with self._lock:
            return self._add(rule, rule_id)

    def add_rules(self, specs: Any) -> list[str]:
        """All or nothing: every rule is checked (``build_rules``: one rule or a list) before any
        is added, and a clashing id adds none of them."""
        rules = build_rules(list(specs) if isinstance(specs, tuple) else specs)
        with self._lock:
            before, next_id = list(self._rules), self._next_id
            try:
                return [self._add(rule) for rule in rules]
            except FaultRuleError:
                self._rules, self._next_id = before, next_id
                raise

    def _add(self, rule: FaultRule, rule_id: str | None = None) -> str:
        self._next_id += 1
        rid = rule_id or rule.rule_id or f"r{self._next_id}"
        if any(r.rule_id == rid for r in self._rules):
            raise FaultRuleError(f"rule.id: {rid!r} already exists")
        self._rules.append(_Active(rid, rule, remaining=rule.count))
        return rid

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
            return [{**r.rule.spec, "id": r.rule_id,
                     **({"remaining": r.remaining} if r.remaining is not None else {})}
                    for r in self._rules]

    def decide(self, action: str, params: Mapping[str, str], now: float,
               product: str = "") -> FaultDecision:
        """The latency of this call and the error to answer instead of running it (or None)."""
        with self._lock:
            matching = [r for r in self._rules if r.rule.applies(product, action, params)]
            latency = self._latency(matching, action)
            error = self._throttle(matching, action, now) or self._error(matching)
            self._rules = [r for r in self._rules if r.remaining != 0]
            return FaultDecision(latency, error)

    def _latency(self, rules: list[_Active], action: str) -> float:
        chosen: FaultRule | None = None
        for active in rules:
            rule = active.rule
            if rule.kind != "latency":
                continue
            if chosen is None or rule.action == action or chosen.action == "*":
                chosen = rule
        return self._draw(chosen) if chosen else 0.0

    def _draw(self, rule: FaultRule) -> float:
        return max(0.0, rule.dist.sample(self._rng)) if rule.dist else 0.0

    def _throttle(self, rules: list[_Active], action: str, now: float) -> ApiError | None:
        for active in rules:
            rule = active.rule
            if rule.kind != "throttle":
                continue
            rate, burst = rule.rate, rule.burst
            tokens, last = active.buckets.get(action, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            if tokens < 1.0:
                active.buckets[action] = (tokens, now)
                return rule.answer()
            active.buckets[action] = (tokens - 1.0, now)
        return None

    def _error(self, rules: list[_Active]) -> ApiError | None:
        for active in rules:
            rule = active.rule
            if rule.kind != "error":
                continue
            if active.remaining is not None:
                if active.remaining <= 0:
                    continue
                active.remaining -= 1
            elif self._rng.random() >= (rule.probability or 0.0):
                continue
            return rule.answer()
        return None
