"""Invariants checked while a run goes: a violation stops it with the events that led there.

- no address is owned by two pods at once (checked at every hand-out, O(1));
- a settled node (no command in flight) and the cloud agree on its ENIs and their addresses,
  and every address a pod holds is on an ENI attached to that pod's node;
- quotas hold: ENIs per instance, addresses per ENI, a vSwitch never gives out more than it has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from simulator.units import format_duration


class InvariantViolation(Exception):
    """Raised to stop a run; ``history`` holds the most recent events, oldest first."""

    def __init__(self, now: float, what: str, history: Iterable[tuple[Any, ...]]) -> None:
        self.now = now
        self.what = what
        self.history = [(t, node, kind, str(detail)) for t, node, kind, detail in history]
        super().__init__(f"invariant violated at t={format_duration(now)} ({now:.3f}s): {what}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (InvariantViolation, (self.now, self.what, self.history))

    def report(self) -> str:
        lines = [str(self), f"last {len(self.history)} events (oldest first):"]
        lines += [f"  {t:12.3f}  {node:<12} {kind:<14} {detail}"
                  for t, node, kind, detail in self.history]
        return "\n".join(lines)


class History:
    """A ring buffer of ``(time, node, kind, detail)``; appending is the only hot-path cost
    (``detail`` may be any object, e.g. a command: it is only turned into text with ``str``
    when a violation is reported)."""

    def __init__(self, size: int) -> None:
        self.events: deque[tuple[float, str, str, Any]] = deque(maxlen=size)
        self.add = self.events.append     # bound once: record((t, node, kind, detail))


class Owners:
    """Who owns which address, cluster-wide."""

    def __init__(self, history: History) -> None:
        self.by_ip: dict[str, str] = {}
        self.history = history

    def claim(self, ip: str, pod_key: str, now: float) -> None:
        holder = self.by_ip.get(ip)
        if holder is not None and holder != pod_key:
            raise InvariantViolation(now, f"address {ip} handed to {pod_key} while {holder} "
                                          "still owns it", self.history.events)
        self.by_ip[ip] = pod_key

    def release(self, ip: str, pod_key: str) -> None:
        if self.by_ip.get(ip) == pod_key:
            del self.by_ip[ip]


def compare_node(core_enis: dict[str, frozenset[str]], cloud_enis: dict[str, frozenset[str]],
                 pod_ips: Iterable[tuple[str, str]]) -> str | None:
    """Why a settled node and the cloud disagree, or None. Arguments: ENI id → addresses."""
    for eni_id, ips in sorted(core_enis.items()):
        if eni_id not in cloud_enis:
            return f"node uses {eni_id} but the cloud has no such ENI attached to it"
        extra = ips - cloud_enis[eni_id]
        if extra:
            return f"node believes {sorted(extra)[:5]} are on {eni_id}; the cloud does not"
    for eni_id, ips in sorted(cloud_enis.items()):
        if eni_id not in core_enis:
            return f"cloud has {eni_id} attached to the node but the node does not manage it"
        missing = ips - core_enis[eni_id]
        if missing:
            return f"cloud has {sorted(missing)[:5]} on {eni_id}; the node does not know them"
    all_ips = frozenset().union(*cloud_enis.values()) if cloud_enis else frozenset()
    for pod, ip in pod_ips:
        if ip not in all_ips:
            return f"pod {pod} holds {ip}, which is on no ENI attached to its node"
    return None
