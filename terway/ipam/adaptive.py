"""The adaptive pool policy: learns a node's demand online and keeps just enough warm.

Why: upstream's watermarks (``min_pool_size``/``max_pool_size``) are one number for every node
and every hour; too low and bursts wait for ``AssignPrivateIpAddresses``, too high and idle
addresses sit in pools while, on a small vSwitch, pods elsewhere stay ContainerCreating. This
policy sizes the warm pool from what the node itself sees, and yields when the vSwitch runs low.

What it learns (all from the core's hooks, no clock, no I/O; decayed with ``horizon`` seconds):

- arrival and departure rates (requests, releases): exponentially decayed counts;
- burst sizes: arrivals less than ``burst_gap`` apart form a burst; the largest recent one is
  remembered (decaying over ``burst_memory``), and kept warm when pods arriving in bursts are
  more than 1 % of arrivals (else they do not move the p99);
- lifetimes: mean used / departure rate (Little's law), which sets how long an excess is held;
- lead time: how long a pod that found the pool empty waited (batch window + calls + the
  client and per-ENI limiters, as measured), plus the wait for the next review.

Warm target = the larger of the p99 of net demand over the lead time (Poisson arrivals minus
departures, normal approximation, z = 2.33) and the remembered burst, clamped to
[``min_pool_size``, ``max_pool_size``] when the user set them (0 = unset).

Safety: never plans below what pending pods need (``available`` already subtracts them); never
releases while a pod waits; releases only when the excess is above the target plus a band
(hysteresis) for ``hold`` seconds (at least the learned lifetime, capped at ``hold``), at most one
release per ``release_interval``; when the cached ``AvailableIpAddressCount`` of the node's
vSwitches falls below ``pressure_free`` it pre-warms nothing and yields idle addresses above
``min_pool_size`` at once (still one release per ``release_interval``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from terway.ipam.policy import PoolPlan, PoolState

if TYPE_CHECKING:
    from terway.ipam.settings import IpamSettings

Z99 = 2.326          # one-sided 99 % normal quantile


@dataclass
class _Decayed:
    """An exponentially decayed event count: ``value / tau`` is the recent rate per second."""

    tau: float
    value: float = 0.0
    at: float = 0.0

    def add(self, now: float, n: float = 1.0) -> None:
        self.decay(now)
        self.value += n

    def decay(self, now: float) -> None:
        if now > self.at:
            self.value *= math.exp(-(now - self.at) / self.tau)
            self.at = now

    def rate(self, now: float, since: float) -> float:
        self.decay(now)
        span = min(self.tau, max(now - since, 1.0))   # young estimators: do not under-read
        return self.value / span


@dataclass(eq=False)
class AdaptivePolicy:
    """See the module docstring. Stateful (one per core); ``plan`` depends on the time."""

    min_pool_size: int = 0
    max_pool_size: int = 0            # 0: no cap but the node's capacity
    review_seconds: float = 10.0      # the core's pool sync period under this policy
    horizon_seconds: float = 900.0
    hold_seconds: float = 300.0
    release_interval_seconds: float = 60.0
    pressure_free: int = 32
    lead_prior: float = 3.0           # seconds a top-up is assumed to take before any is seen
    sync_jitter: float = 1.0
    burst_gap: float = 2.0
    burst_memory: float = 7200.0
    time_invariant: ClassVar[bool] = False   # learned state and hold timers: never skipped

    def __post_init__(self) -> None:
        self._arrivals = _Decayed(self.horizon_seconds)
        self._departures = _Decayed(self.horizon_seconds)
        self._burst_pods = _Decayed(self.horizon_seconds)
        self._used = _Decayed(self.horizon_seconds)     # time-weighted mean of used
        self._used_w = _Decayed(self.horizon_seconds)
        self._first = -1.0
        self._last_arrival = -math.inf
        self._burst = 0                   # size of the burst in progress
        self._burst_peak = 0.0
        self._burst_peak_at = 0.0
        self._lead = self.lead_prior
        self._excess_since: float | None = None
        self._last_release = -math.inf

    # ------------------------------------------------------------------ hooks (IpamCore)

    def on_request(self, now: float) -> None:
        if self._first < 0:
            self._first = now
        self._arrivals.add(now)
        if now - self._last_arrival <= self.burst_gap:
            self._burst += 1
        else:
            self._close_burst(now)
            self._burst = 1
        self._last_arrival = now

    def on_release(self, now: float) -> None:
        if self._first < 0:
            self._first = now
        self._departures.add(now)

    def on_served(self, waited: float, now: float) -> None:
        """A pod that found no idle address got one after ``waited`` seconds."""
        self._lead = 0.7 * self._lead + 0.3 * max(0.0, waited)

    # ------------------------------------------------------------------ learning

    def _close_burst(self, now: float) -> None:
        if self._burst >= 3:
            self._burst_pods.add(now, self._burst)
            if self._burst >= self._current_peak(now):
                self._burst_peak, self._burst_peak_at = float(self._burst), now
        self._burst = 0

    def _current_peak(self, now: float) -> float:
        return self._burst_peak * math.exp(-(now - self._burst_peak_at) / self.burst_memory)

    def lead_time(self) -> float:
        """Worst wait for the next review plus the measured top-up time."""
        return self.review_seconds * (1.0 + self.sync_jitter) + self._lead

    def warm_target(self, state: PoolState, now: float) -> int:
        """Addresses to keep free (beyond pending pods): the p99 demand over the lead time."""
        if self._first < 0:
            return self.min_pool_size
        if now - self._last_arrival > self.burst_gap and self._burst:
            self._close_burst(now)
        lam = self._arrivals.rate(now, self._first)
        mu = self._departures.rate(now, self._first)
        lead = self.lead_time()
        mean, var = (lam - mu) * lead, (lam + mu) * lead
        demand = max(0.0, mean) + Z99 * math.sqrt(var) if var > 0 else 0.0
        target = math.ceil(demand - 1e-9)
        arrivals = self._arrivals.value
        if arrivals > 0 and self._burst_pods.value / arrivals > 0.01:
            target = max(target, math.ceil(self._current_peak(now) - 0.5))
        target = max(target, self.min_pool_size)
        cap = self.max_pool_size or state.capacity
        return max(0, min(target, cap))

    def mean_lifetime(self, state: PoolState, now: float) -> float:
        """Little's law: mean pods held / departure rate (inf when nothing departs)."""
        mu = self._departures.rate(now, max(self._first, 0.0))
        return state.used / mu if mu > 0 else math.inf

    def under_pressure(self, state: PoolState) -> bool:
        return state.vswitch_free is not None and state.vswitch_free < self.pressure_free

    # ------------------------------------------------------------------ the plan

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        pressure = self.under_pressure(state)
        target = self.min_pool_size if pressure else self.warm_target(state, now)
        add = max(0, target - state.available)
        if state.pending > 0:
            add = max(add, state.pending - state.idle - state.in_flight)
        if self.max_pool_size and not pressure:
            add = min(add, max(0, self.max_pool_size - state.available) + state.pending)
        return PoolPlan(add, self._release(state, target, pressure, now))

    def _release(self, state: PoolState, target: int, pressure: bool, now: float) -> int:
        """Idle addresses to give back: above ``max_pool_size`` at once; above the target plus
        the band only after the hold, and at most once per ``release_interval``."""
        if state.pending > 0 or state.in_flight > 0:
            self._excess_since = None
            return 0
        over_max = 0
        if self.max_pool_size and not pressure:
            over_max = max(0, state.available - self.max_pool_size)
        band = 0 if pressure else max(2, math.ceil(target / 2))
        want = 0
        if state.available - target - band > 0:
            if self._excess_since is None:
                self._excess_since = now
            hold = 0.0 if pressure else min(self.hold_seconds,
                                            max(60.0, self.mean_lifetime(state, now)))
            if now - self._excess_since >= hold and \
                    now - self._last_release >= self.release_interval_seconds:
                want = state.available - (target if pressure else target + band // 2)
        else:
            self._excess_since = None
        release = max(0, min(state.idle, max(want, over_max)))
        if release:
            self._last_release = now
            self._excess_since = None
        return release


def make_adaptive(settings: IpamSettings, params: Mapping[str, int]) -> AdaptivePolicy:
    """``pool_policy: adaptive``: bounds from ``min_pool_size``/``max_pool_size`` (0 = unset),
    tuning from ``params`` (``pool_policy_params`` over the defaults in
    ``terway.ipam.policies``; times in seconds, lead in ms)."""
    p = params
    return AdaptivePolicy(
        min_pool_size=p.get("min_pool_size", settings.min_pool_size),
        max_pool_size=p.get("max_pool_size", settings.max_pool_size),
        review_seconds=settings.sync_period,
        horizon_seconds=float(p["horizon_seconds"]),
        hold_seconds=float(p["hold_seconds"]),
        release_interval_seconds=float(p["release_interval_seconds"]),
        pressure_free=p["pressure_free"],
        lead_prior=p["lead_prior_ms"] / 1000.0,
        sync_jitter=settings.sync_jitter,
    )
