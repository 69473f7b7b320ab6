"""What a run measures: counters bumped in the hot path, gauges sampled on an interval.

Hot-path updates are plain attribute and dict increments; time series are only built by
``sample()``, which the engine calls every ``sample_interval`` — so cost does not grow with the
event rate. ``idle_ip_hours`` integrates the sampled idle count (left Riemann sum), and
``stuck_while_idle_pod_seconds`` the sampled count of pods stuck while addresses sat idle
elsewhere (``stuck_while_idle`` below) the same way.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Every metric an expectation may name (simulator/expect.py checks against these, so a typo is
# a scenario error, not a failed run). Keep in step with scalars() and sample() below;
# tests/sim/test_cli_sim.py checks that a run's keys are all listed.
SCALARS = frozenset((
    "pods_created", "pods_deleted", "pods_ready", "pod_events", "cni_failures", "api_calls",
    "api_errors", "api_calls_per_pod", "idle_ip_hours", "invariant_violations",
    "invariant_checks", "daemon_restarts", "p50_network_ready", "p90_network_ready",
    "p99_network_ready", "max_network_ready", "mean_idle_ips",
    "stuck_while_idle_pod_seconds",
    "leaked_enis", "first_ip_not_enough", "peak_addresses"))   # the last three: RunResult
SERIES = frozenset((
    "pending_pods", "stuck_pods", "pending_pods_with_room", "stuck_while_idle", "running_pods",
    "nodes", "used_ips", "idle_ips", "pods_created", "cni_failures", "api_calls", "api_errors"))
# NAME[label]: scalars labelled by API action / error code / log line, series by vSwitch label
LABELLED_SCALARS = frozenset(("api_calls", "api_errors", "log_lines"))
LABELLED_SERIES = frozenset(("used_ips", "idle_ips", "available_ips"))


def stuck_while_idle(starved: Iterable[tuple[int, Iterable[str]]],
                     idle: Mapping[str, int]) -> int:
    """Waiting pods that idle addresses on other nodes could have served now.

    ``starved``: per node whose pods wait and that can get no address itself (no idle address
    of its own, and none of the vSwitches it could draw from has one left to give), its
    waiting pods and those vSwitches; ``idle``: idle addresses per vSwitch, cluster-wide (a
    starved node holds none, so they are all elsewhere). A starved node's pods count when one
    of its vSwitches holds idle addresses elsewhere, all of them at most as many as those
    addresses. Why: addresses parked in one node's pool while a pod elsewhere stays
    ContainerCreating for want of one is the waste a pool policy should yield on a small
    vSwitch."""
    pods = 0
    vswitches: set[str] = set()
    for waiting, usable in starved:
        usable = tuple(usable)
        if any(idle.get(v, 0) > 0 for v in usable):
            pods += waiting
            vswitches.update(usable)
    return min(pods, sum(max(0, idle.get(v, 0)) for v in vswitches))


def quantile(sorted_values: array[float] | list[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted sequence (nan when empty)."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    idx = min(n - 1, max(0, math.ceil(q * n) - 1))
    return float(sorted_values[idx])


@dataclass
class NodeWaits:
    """One node's pods waiting for an address, as sampled (the report's per-node view)."""

    peak_waiting: int = 0
    peak_stuck: int = 0          # waiting pods no vSwitch could help (see SimNode.stuck)
    pod_seconds: float = 0.0     # waiting pods times the sample interval, summed
    first: float = math.nan      # first sample with a waiting pod
    last: float = math.nan       # last sample with a waiting pod
    waiting: int = 0             # at the latest sample
    stuck: int = 0

    def to_json(self) -> dict[str, float | int | None]:
        return {k: _clean(v) for k, v in vars(self).items()}


class Collector:
    """Counters, gauges and samples of one run (one policy)."""

    def __init__(self, vswitches: Mapping[str, str]) -> None:
        """``vswitches``: cloud vSwitch id → the label the scenario gave it (used in series)."""
        self.labels: dict[str, str] = dict(vswitches)
        self.vswitch_ids: list[str] = list(vswitches)
        # hot-path counters
        self.pods_created = 0
        self.pods_deleted = 0
        self.pods_ready = 0
        self.pending = 0                    # pods waiting for an address (ContainerCreating)
        self.running = 0
        self.cni_failures = 0               # CNI ADD gave up (timeout / daemon down)
        self.api_calls: Counter[tuple[str, str]] = Counter()   # (action, "OK" | code)
        self.log_lines: Counter[str] = Counter()
        self.used: dict[str, int] = dict.fromkeys(self.vswitch_ids, 0)   # owned by pods
        self.held: dict[str, int] = dict.fromkeys(self.vswitch_ids, 0)   # on managed ENIs
        self.latencies: array[float] = array("d")
        self.invariant_violations = 0
        self.invariant_checks = 0
        self.daemon_restarts = 0
        self.nodes = 0
        # samples
        self.t: list[float] = []
        self.series: dict[str, list[float]] = {}
        self.idle_ip_seconds = 0.0
        self._last_t = 0.0
        self._last_idle = 0
        self.stuck_while_idle_seconds = 0.0     # pod-seconds, sampled (stuck_while_idle)
        self._last_stuck_idle = 0
        self.node_waits: dict[str, NodeWaits] = {}     # only nodes that ever had a waiting pod
        self._waiting_now: set[str] = set()

    def add_vswitch(self, vswitch_id: str, label: str) -> None:
        if vswitch_id not in self.used:
            self.vswitch_ids.append(vswitch_id)
            self.labels[vswitch_id] = label
            self.used[vswitch_id] = 0
            self.held[vswitch_id] = 0
            for key in (f"used_ips[{label}]", f"idle_ips[{label}]", f"available_ips[{label}]"):
                self.series[key] = [math.nan] * len(self.t)

    def _put(self, key: str, value: float) -> None:
        col = self.series.get(key)
        if col is None:
            col = self.series[key] = [math.nan] * (len(self.t) - 1)
        col.append(value)

    def sample(self, now: float, available: Mapping[str, int], stuck: int = 0,
               waiting: Mapping[str, tuple[int, bool]] | None = None,
               starved: Sequence[tuple[int, Iterable[str]]] = ()) -> None:
        """Record every gauge at ``now``; ``available`` is the cloud's free count per vSwitch;
        ``stuck``: waiting pods on nodes no vSwitch can help (every ENI slot taken, no room on
        a vSwitch with addresses); ``waiting``: node → (its waiting pods, stuck?);
        ``starved``: see ``stuck_while_idle``."""
        self._sample_nodes(now, waiting or {})
        idle_total = sum(self.held.values()) - sum(self.used.values())
        dt = now - self._last_t
        self.idle_ip_seconds += self._last_idle * dt
        self.stuck_while_idle_seconds += self._last_stuck_idle * dt
        stuck_idle = stuck_while_idle(starved, {v: self.held[v] - self.used[v]
                                                for v in self.vswitch_ids}) if starved else 0
        self._last_t, self._last_idle, self._last_stuck_idle = now, idle_total, stuck_idle
        self.t.append(now)
        put = self._put
        put("pending_pods", self.pending)
        put("stuck_pods", stuck)
        put("pending_pods_with_room", self.pending - stuck)
        put("stuck_while_idle", stuck_idle)
        put("running_pods", self.running)
        put("nodes", self.nodes)
        put("used_ips", sum(self.used.values()))
        put("idle_ips", idle_total)
        put("pods_created", self.pods_created)
        put("cni_failures", self.cni_failures)
        for vsw in self.vswitch_ids:
            label = self.labels[vsw]
            put(f"used_ips[{label}]", self.used[vsw])
            put(f"idle_ips[{label}]", self.held[vsw] - self.used[vsw])
            put(f"available_ips[{label}]", available.get(vsw, math.nan))
        put("api_calls", sum(self.api_calls.values()))
        put("api_errors", sum(n for (_, code), n in self.api_calls.items() if code != "OK"))

    def _sample_nodes(self, now: float, waiting: Mapping[str, tuple[int, bool]]) -> None:
        """Per-node waits; costs only the nodes with waiting pods (now or at the last sample)."""
        dt = now - self.t[-1] if self.t else 0.0
        for name in self._waiting_now:          # left Riemann sum, as idle_ip_seconds
            self.node_waits[name].pod_seconds += self.node_waits[name].waiting * dt
        for name in self._waiting_now - waiting.keys():
            self.node_waits[name].waiting = self.node_waits[name].stuck = 0
        for name, (n, is_stuck) in waiting.items():
            w = self.node_waits.get(name)
            if w is None:
                w = self.node_waits[name] = NodeWaits(first=now)
            w.waiting, w.stuck, w.last = n, n if is_stuck else 0, now
            w.peak_waiting = max(w.peak_waiting, n)
            w.peak_stuck = max(w.peak_stuck, w.stuck)
        self._waiting_now = set(waiting)

    def scalars(self) -> dict[str, float]:
        lat = array("d", sorted(self.latencies))
        calls = sum(self.api_calls.values())
        errors = sum(n for (_, code), n in self.api_calls.items() if code != "OK")
        out: dict[str, float] = {
            "pods_created": self.pods_created,
            "pods_deleted": self.pods_deleted,
            "pods_ready": self.pods_ready,
            "pod_events": self.pods_created + self.pods_deleted,
            "cni_failures": self.cni_failures,
            "api_calls": calls,
            "api_errors": errors,
            "api_calls_per_pod": calls / self.pods_ready if self.pods_ready else math.nan,
            "idle_ip_hours": self.idle_ip_seconds / 3600.0,
            "stuck_while_idle_pod_seconds": self.stuck_while_idle_seconds,
            "invariant_violations": self.invariant_violations,
            "invariant_checks": self.invariant_checks,
            "daemon_restarts": self.daemon_restarts,
            "p50_network_ready": quantile(lat, 0.50),
            "p90_network_ready": quantile(lat, 0.90),
            "p99_network_ready": quantile(lat, 0.99),
            "max_network_ready": float(lat[-1]) if lat else math.nan,
            "mean_idle_ips": (self.idle_ip_seconds / self._last_t) if self._last_t else math.nan,
        }
        for (action, code), n in self.api_calls.items():
            out[f"api_calls[{action}]"] = out.get(f"api_calls[{action}]", 0) + n
            if code != "OK":
                out[f"api_errors[{code}]"] = out.get(f"api_errors[{code}]", 0) + n
        for key, n in self.log_lines.items():
            out[f"log_lines[{key}]"] = n
        return out

    def series_view(self) -> dict[str, tuple[list[float], list[float]]]:
        return {k: (self.t, v) for k, v in self.series.items()}

    def to_json(self) -> dict[str, Any]:
        """Everything, in a deterministic order (same seed → identical bytes)."""
        calls: dict[str, dict[str, int]] = {}
        for (action, code), n in sorted(self.api_calls.items()):
            calls.setdefault(action, {})[code] = n
        return {
            "scalars": {k: _clean(v) for k, v in sorted(self.scalars().items())},
            "api_calls": calls,
            "log_lines": dict(sorted(self.log_lines.items())),
            "series": {"t": self.t, **{k: [_clean(x) for x in v]
                                       for k, v in sorted(self.series.items())}},
            "network_ready_quantiles": self.latency_quantiles(),
            "waiting_by_node": {k: w.to_json() for k, w in sorted(self.node_waits.items())},
        }

    def latency_quantiles(self) -> dict[str, float | None]:
        lat = array("d", sorted(self.latencies))
        return {f"p{q:g}": _clean(quantile(lat, q / 100)) for q in (1, 10, 25, 50, 75, 90, 95,
                                                                    99, 99.9, 100)}


def _clean(v: float) -> float | None:
    """JSON has no NaN: missing values become null; floats are rounded to keep files stable."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return round(v, 6) if isinstance(v, float) else v
