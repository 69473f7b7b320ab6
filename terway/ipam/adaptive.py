"""The adaptive pool policy: learns a node's demand online and keeps just enough warm.

Why: upstream's watermarks (``min_pool_size``/``max_pool_size``) are one number for every node
and every hour; too low and bursts wait for ``AssignPrivateIpAddresses``, too high and idle
addresses sit in pools while, on a small vSwitch, pods elsewhere stay ContainerCreating. This
policy sizes the warm pool from what the node itself sees, and yields when the vSwitch runs low.

What it learns (all from the core's hooks, no clock, no I/O; decayed with ``horizon`` seconds):

- the rate of single arrivals (pods not in a burst) and of departures;
- bursts: arrivals less than ``burst_gap`` apart, at least three, form one; their sizes and
  starts are kept. When the gaps between the last bursts agree, bursts recur at that period:
  the largest of the last few sizes is warm from ``prewarm`` seconds before the next one is due
  (the addresses the last burst's pods gave back then stay for it when bursts are that close),
  not all day. Bursts without a period are remembered (the largest, fading over
  ``burst_memory``) and kept warm while pods arriving in bursts are more than 1 % of arrivals
  (else they do not move the p99). The first burst of a node (its pods being placed) is
  neither: it says nothing of later ones. A burst's size is a level, not a rate: it counts net
  of what pods hold above the node's base level (the least in use over ``horizon``), since a
  burst's pods give their addresses back and those are the next burst's warm pool; it is filled
  without the band; and when bursts are of short pods (the last one's were gone before the
  next came) the rate's demand too is netted by the pods of the burst in progress;
- lead time: how long a pod that found the pool empty waited (batch window + calls + the
  client and per-ENI limiters, as measured), plus the wait for the next review.

Warm target = the p99 of net demand of single arrivals over the lead time (Poisson arrivals
minus departures, normal approximation, z = 2.33) plus the burst part above, clamped to
[``min_pool_size``, ``max_pool_size``] when the user set them (0 = unset).

Cold start: the first request of a node asks the core for a review at once (``on_request``
returns True) and the review adds ``cold_start`` addresses (at least what is pending; at most
that plus the node's share of the vSwitch when its count is known) without waiting for the
batch window: pods placed on a new node arrive together, and two ENIs created at once serve
them at the first attach rather than the slower one.

A shared vSwitch: the node does not know how many others draw from its vSwitches, and its
cached count (``AvailableIpAddressCount``, refreshed every ``vswitch_cache_ttl``) may be minutes
old. It keeps warm at most its share, ``1/pressure_share`` of the free addresses above
``pressure_free`` (a /20 is unaffected; on a /26 it is none once fewer than 48 are free), and
gives back what it holds above that share without the hold: idle addresses kept on a few nodes
would dry the vSwitch, and a node whose one-address top-up meets IpNotEnough is blocked until
the next describe shows addresses (minutes), its pods waiting while addresses are free again.
Under pressure with nothing idle, a request asks for a review at once (``on_request`` returns
True): the pod waits for a top-up anyway, and the batch window would only add to its wait.

Calls: a top-up is one ``AssignPrivateIpAddresses`` per ENI (the core batches), made only when
available < target; a release is one ``UnassignPrivateIpAddresses`` of every address above the
target plus ``keep``, made only when the excess stayed above the band for ``hold`` seconds
and at most once per ``release_interval``: the addresses of a burst go back together once its
pods are gone, not one by one.

Safety: never plans below what pending pods need (``available`` already subtracts them); never
releases while a pod waits or a top-up is in flight; hysteresis: it adds below the target and
releases only above target + band, down to target + keep (keep < band); when the cached
``AvailableIpAddressCount`` of the node's vSwitches falls below ``pressure_free`` it pre-warms
nothing beyond its share (``min_pool_size`` still kept) and yields the rest at once (still one
release per ``release_interval``); a release never empties an ENI the recent peak needs.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from terway.ipam.policy import PoolPlan, PoolState

if TYPE_CHECKING:
    from terway.ipam.settings import IpamSettings

Z99 = 2.326          # one-sided 99 % normal quantile
MIN_BURST = 3        # arrivals that make a burst
YOUNG_SPAN = 60.0    # a rate is read over at least this many seconds (a young estimator)


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

    def rate(self, now: float, since: float, floor: float = YOUNG_SPAN) -> float:
        """Events per second since ``since``: the decayed count over the window it weighs
        (``tau``, less for a young estimator, at least ``floor`` seconds: a few early events
        must not read as a high rate)."""
        self.decay(now)
        span = self.tau * -math.expm1(-max(now - since, 0.0) / self.tau)
        return self.value / max(span, floor)


@dataclass
class Bursts:
    """Arrivals that come together: the one in progress, the last few, their period.

    Why: a burst of ``n`` pods needs ``n`` warm addresses at the instant it comes, which a rate
    cannot express; and keeping them warm all day costs ``n`` idle addresses all day, while a
    burst that recurs (a CronJob, a batch every half hour) can be met by pre-warming just
    before it is due.
    """

    gap: float = 2.0
    tolerance: float = 0.1       # gaps within this fraction of each other make a period
    history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4))
    origin: float | None = None  # the node's first arrival: the burst from it places pods
    placed_until: float = -math.inf   # the last arrival of that burst
    start: float = -math.inf
    last: float = -math.inf
    size: int = 0

    def arrive(self, now: float) -> tuple[float, float, int] | None:
        """Count an arrival; the cluster it closed (``close``), if it closed one."""
        closed = None
        if self.origin is None:
            self.origin = now
        if now - self.last > self.gap:
            closed = self.close()
            self.start, self.size = now, 0
        self.size += 1
        self.last = now
        if self.placing(self.start):
            self.placed_until = now
        return closed

    def close_due(self, now: float) -> tuple[float, float, int] | None:
        """Close the cluster in progress once ``gap`` has passed (``close``)."""
        return self.close() if self.size and now - self.last > self.gap else None

    def close(self) -> tuple[float, float, int] | None:
        """End the cluster of arrivals in progress: (start, last, size) when it had at least
        ``MIN_BURST`` arrivals (the caller judges whether it was a burst: ``record``)."""
        size, self.size = self.size, 0
        return (self.start, self.last, size) if size >= MIN_BURST else None

    def record(self, start: float, size: int) -> None:
        """A burst (not the node's first pods being placed) for the period."""
        self.history.append((start, size))

    def placing(self, start: float) -> bool:
        """The burst from ``start`` is the node's first arrivals: its pods being placed."""
        return start == self.origin

    def recurrence(self) -> tuple[float, float] | None:
        """(period, spread) when bursts recur: the last gap between burst starts, and how far
        the next may stray from it (the difference of the last two gaps when they agree
        within ``tolerance``; ``tolerance`` of the gap when only one is known). None when
        the last two gaps disagree or fewer than two bursts were seen."""
        starts = [s for s, _ in self.history]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        if not gaps:
            return None
        if len(gaps) == 1:
            return gaps[0], self.tolerance * gaps[0]
        spread = abs(gaps[-1] - gaps[-2])
        if spread > self.tolerance * gaps[-1]:
            return None
        return gaps[-1], spread

    def next_due(self, now: float) -> tuple[float, float, int] | None:
        """(when, spread, size) of the next burst when bursts recur and it is not overdue
        (later than its spread and ``gap``); None otherwise."""
        rec = self.recurrence()
        if rec is None:
            return None
        period, spread = rec
        start = self.history[-1][0]
        size = max(n for _, n in self.history)    # the largest of the last few: a level
        due = start + period
        if now > due + spread + self.gap:
            return None
        return due, spread, size


@dataclass(eq=False)
class AdaptivePolicy:
    """See the module docstring. Stateful (one per core); ``plan`` depends on the time."""

    min_pool_size: int = 0
    max_pool_size: int = 0            # 0: no cap but the node's capacity
    review_seconds: float = 5.0       # the core's pool sync period under this policy
    horizon_seconds: float = 900.0
    hold_seconds: float = 300.0
    release_interval_seconds: float = 60.0
    pressure_free: int = 32
    pressure_share: int = 16          # warm at most 1/this of the free addresses above that
    lead_prior: float = 3.0           # seconds a top-up is assumed to take before any is seen
    sync_jitter: float = 1.0
    burst_gap: float = 2.0
    burst_memory: float = 1800.0
    prewarm: float = 600.0            # a recurring burst is warm from this long before it is due
    cold_start: int = 20
    band_min: int = 6
    eni_memory: float = 3600.0
    recheck_seconds: float = 20.0     # dry vSwitches described again after (``recheck_of``)
    time_invariant: ClassVar[bool] = False   # learned state and hold timers: never skipped

    def __post_init__(self) -> None:
        self._arrivals = _Decayed(self.horizon_seconds)
        self._departures = _Decayed(self.horizon_seconds)
        self._burst_pods = _Decayed(self.horizon_seconds)
        self._bursts = Bursts(self.burst_gap)
        self._first = -1.0
        self._burst_peak = 0.0
        self._burst_peak_at = 0.0
        self._lead = self.lead_prior
        self._excess_since: float | None = None
        self._last_release = -math.inf
        self._peaks: deque[tuple[float, int]] = deque()   # (time, in use): a sliding max
        self._lows: deque[tuple[float, int]] = deque()    # (time, in use): a sliding min
        self._burst_led = False           # the last target was a burst's, not the rate's
        self._dry = False                 # the last review: under pressure, nothing idle
        # bursts of short pods: the last one's pods were gone (in use back to within half its
        # size of the level before it) before the next came; (base, size) of the one watched
        self._transient = False
        self._transient_seen = False
        self._watch: tuple[int, int] | None = None

    # ------------------------------------------------------------------ hooks (IpamCore)

    def on_request(self, now: float) -> bool:
        """Learn an arrival; True (review the pool now) for the node's first request, and
        while the vSwitch is under pressure with nothing idle: the pod will wait for a top-up
        anyway, and the batch window would only add to its wait."""
        first = self._first < 0
        if first:
            self._first = now
        self._arrivals.add(now)
        self._cluster_closed(self._bursts.arrive(now), now)
        return first or self._dry

    def on_release(self, now: float) -> None:
        if self._first < 0:
            self._first = now
        self._departures.add(now)

    def on_served(self, waited: float, now: float) -> None:
        """A pod that found no idle address got one after ``waited`` seconds. Pods placed on
        the node at its start waited for its first ENIs: not what a top-up takes."""
        if self._bursts.placing(self._bursts.start) and self._bursts.size:
            return
        if now - waited <= self._bursts.placed_until:
            return
        self._lead = 0.7 * self._lead + 0.3 * max(0.0, waited)

    # ------------------------------------------------------------------ learning

    def _cluster_closed(self, cluster: tuple[float, float, int] | None, now: float) -> None:
        """A cluster of arrivals ended: a burst if arrivals at the recent rate (of all but this
        cluster) would hardly bring so many in its span (else a fast steady stream, which a
        rate describes); its pods then count as
        burst pods, not towards the rate, and it is remembered (unless it placed the node's
        first pods, which says nothing of later bursts)."""
        if cluster is None:
            return
        start, last, size = cluster
        rate = self._arrivals.rate(now, self._first, floor=self.burst_gap)
        others = rate * max(0.0, 1.0 - size / self._arrivals.value)   # all but the cluster
        expected = others * (last - start + self.burst_gap)
        if size < expected + 4.0 * math.sqrt(expected) + 2.0:
            return
        self._burst_pods.add(now, size)
        if self._bursts.placing(start):
            return
        self._bursts.record(start, size)
        base = self._lows[0][1] if self._lows else 0
        self._transient = self._watch is None and self._transient_seen
        self._watch, self._transient_seen = (base, size), False
        if size >= self._current_peak(now):
            self._burst_peak, self._burst_peak_at = float(size), now

    def _single_rate(self, now: float) -> float:
        """Recent arrivals per second that came alone (not in a burst)."""
        arrivals = self._arrivals.rate(now, self._first)
        if self._arrivals.value <= 0:
            return 0.0
        return max(0.0, arrivals * (1.0 - self._burst_pods.value / self._arrivals.value))

    def _learn(self, now: float) -> None:
        """Close a cluster whose gap has passed (its last arrival was the last of it)."""
        self._cluster_closed(self._bursts.close_due(now), now)

    def _current_peak(self, now: float) -> float:
        return self._burst_peak * math.exp(-(now - self._burst_peak_at) / self.burst_memory)

    def lead_time(self) -> float:
        """Worst wait for the next review plus the measured top-up time."""
        return self.review_seconds * (1.0 + self.sync_jitter) + self._lead

    def single_demand(self, now: float) -> int:
        """p99 of net demand of single (non-burst) arrivals over the lead time."""
        self._learn(now)
        lam = self._single_rate(now)
        mu = self._departures.rate(now, self._first)
        lead = self.lead_time()
        mean, var = (lam - mu) * lead, (lam + mu) * lead
        demand = max(0.0, mean) + Z99 * math.sqrt(var) if var > 0 else 0.0
        return math.ceil(demand - 1e-9)

    def burst_demand(self, now: float, in_use: int | None = None) -> int:
        """Addresses a burst may want now: the next one's size in its pre-warm window when
        bursts recur; else the remembered peak when burst pods matter for the p99. Given
        ``in_use`` (addresses pods hold now), net of what pods hold above the node's base
        level (the least in use over ``horizon``): a burst's pods give their addresses back
        when they end, and those are the warm pool for the next burst, so a node that has
        just served one does not warm a second set (a new ENI) beside them."""
        self._learn(now)
        nxt = self._bursts.next_due(now)
        if nxt is not None:
            due, spread, size = nxt
            size = size if now >= due - spread - self.lead_time() - self.prewarm else 0
        else:
            arrivals = self._arrivals.value
            size = 0
            if arrivals > 0 and self._burst_pods.value / arrivals > 0.01:
                size = math.ceil(self._current_peak(now) - 0.5)
        if in_use is None or not size or not self._lows:
            return size
        return max(0, size - max(0, in_use - self._lows[0][1]))

    def warm_target(self, state: PoolState, now: float) -> int:
        """Addresses to keep free (beyond pending pods)."""
        if self._first < 0:
            return self.min_pool_size
        single, burst = self.single_demand(now), self.burst_demand(now, state.used)
        if burst == 0 and self._transient and self._lows:   # a burst's pods are out, and
            single = max(0, single - (state.used - self._lows[0][1]))   # theirs come back
        self._burst_led = burst > single
        target = max(single, burst, self.min_pool_size)
        cap = self.max_pool_size or state.capacity
        return max(0, min(target, cap))

    def under_pressure(self, state: PoolState) -> bool:
        return state.vswitch_free is not None and state.vswitch_free < self.pressure_free

    def band(self, target: int, capacity: int) -> int:
        """How far above the target the pool may float before it releases (hysteresis): at
        least ``band_min`` and half the target, at most a quarter of the node's capacity (in
        exclusive mode a unit is a whole ENI)."""
        return max(1, min(max(self.band_min, math.ceil(target / 2)), capacity // 4))

    # ------------------------------------------------------------------ the plan

    def room(self, state: PoolState) -> int | None:
        """Most addresses this node may keep warm by the vSwitch: ``1/pressure_share`` of the
        free addresses its vSwitches last reported (None: not known, or no vSwitch). The node
        does not know how many others draw from them: a share leaves the rest to the others
        (a /26 shared by four nodes must not go to the first two cold starts)."""
        if state.vswitch_free is None:
            return None
        return max(0, state.vswitch_free - self.pressure_free) // max(1, self.pressure_share)

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        self._note_use(state, now)
        pressure = self.under_pressure(state)
        self._dry = pressure and state.idle == 0
        room = self.room(state)
        target = self.warm_target(state, now)
        capped = room is not None and target > room
        if capped:
            target = max(self.min_pool_size, min(target, room or 0))
        band = 0 if pressure else self.band(target, state.capacity)
        if self._burst_led:                    # a burst's size is a level: a narrow band
            band = min(band, max(1, math.ceil(target / 4)))
        if room is not None:                   # the band too stays within the node's share
            band = min(band, max(0, room - target))
        fill = target + (0 if self._burst_led else band // 2)   # a burst's size is a level
        add = max(0, fill - state.available) if state.available < target else 0
        if state.pending > 0:
            add = max(add, state.pending - state.idle - state.in_flight)
        if self._cold(state) and not pressure:
            cold = min(self.cold_start, self.max_pool_size or state.capacity)
            add = max(add, min(cold, state.pending + room) if room is not None else cold)
        if self.max_pool_size and not pressure:
            add = min(add, max(0, self.max_pool_size - state.available) + state.pending)
        over_share = room is not None and state.available > max(room, target + band)
        return PoolPlan(add, self._release(state, target, band, pressure or capped or over_share,
                                           now))

    def _eni_room(self, state: PoolState, keep: int, now: float, tight: bool = False) -> int:
        """Most addresses a release may take without emptying an ENI the node will need
        again: pods pack into the fullest ENIs, so the last ENI holds ``total - (n-1) * per``;
        taking all of them gives the ENI back (detach, delete) and a later peak makes a new one
        (create, attach, status polls: some ten calls and seconds of waiting). Unlimited
        when the recent peak plus ``keep`` fits in one ENI fewer, once the peak was watched
        for ``eni_memory`` (at once when the vSwitch is tight: its addresses matter more)."""
        per, n = state.units_per_eni, state.eni_count
        if per <= 1 or n <= 0:
            return state.idle
        peak = self._peaks[0][1] if self._peaks else state.used
        watched = tight or now - self._first >= self.eni_memory
        if watched and peak + keep <= (n - 1) * per:
            return state.idle
        return max(0, state.total - (n - 1) * per - 1)

    def _note_use(self, state: PoolState, now: float) -> None:
        """Keep the sliding maximum of addresses pods needed (used + pending) over the last
        ``eni_memory`` seconds, as seen at reviews: a deque of (time, need), need falling."""
        peaks, need = self._peaks, state.used + state.pending
        while peaks and peaks[-1][1] <= need:
            peaks.pop()
        peaks.append((now, need))
        while peaks[0][0] < now - self.eni_memory:
            peaks.popleft()
        if self._watch is not None and state.used <= self._watch[0] + self._watch[1] / 2:
            self._watch, self._transient_seen = None, True   # the last burst's pods ended
        lows = self._lows                      # and the sliding minimum in use over horizon
        while lows and lows[-1][1] >= state.used:
            lows.pop()
        lows.append((now, state.used))
        while lows[0][0] < now - self.horizon_seconds:
            lows.popleft()

    def _cold(self, state: PoolState) -> bool:
        """Pods are arriving on a node that holds no address yet (shared ENIs: in exclusive
        mode a pod needs an ENI of its own, and no ENI serves more than one)."""
        return (self._first >= 0 and state.total == 0 and state.in_flight == 0
                and state.units_per_eni > 1)

    def _release(self, state: PoolState, target: int, band: int, tight: bool,
                 now: float) -> int:
        """Idle addresses to give back: above ``max_pool_size`` at once; above the target plus
        the band only after the hold (none when the vSwitch is tight: under pressure, or more
        warm than the node's share of it), and at most once per ``release_interval``; never
        the last address of an ENI the recent peak needs (``_eni_room``)."""
        if state.pending > 0 or state.in_flight > 0:
            self._excess_since = None
            return 0
        over_max = 0
        if self.max_pool_size and not tight:
            over_max = max(0, state.available - self.max_pool_size)
        want = 0
        if state.available - target - band > 0:
            if self._excess_since is None:
                self._excess_since = now
            hold = 0.0 if tight else self.hold_seconds
            if now - self._excess_since >= hold and \
                    now - self._last_release >= self.release_interval_seconds:
                want = state.available - (target + band // 2)
        else:
            self._excess_since = None
        if want:
            want = min(want, self._eni_room(state, target + band, now, tight))
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
        pressure_share=p["pressure_share"],
        lead_prior=p["lead_prior_ms"] / 1000.0,
        sync_jitter=settings.sync_jitter,
        burst_memory=float(p["burst_memory_seconds"]),
        prewarm=float(p["prewarm_seconds"]),
        cold_start=p["cold_start"],
        band_min=p["band_min"],
        eni_memory=float(p["eni_memory_seconds"]),
        recheck_seconds=float(p["recheck_seconds"]),
    )
