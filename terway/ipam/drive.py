"""What every driver of the core does around a command, in one place, so drivers cannot drift.

The daemon (``terway.daemon.driver``, asyncio and threads) and the simulator
(``simulator.node``, simpy callbacks) differ only in how they wait. What they decide is here:

- ``ACTION``: the cloud action a command is (rate limits, retries and metrics are per action);
- ``retry_policies`` / ``backoff_for`` (from ``terway.cloud.retry``): the backoff each action
  retries with (upstream's presets, then eni_conf ``backoff_override``);
- ``WaitPolicy``: how an attach or detach is awaited (the pauses between status checks, the
  deadline);
- ``per_eni_limiter``: upstream's per-ENI limiters, when the node runs them;
- ``FailureLog`` and ``unservable``: which waiting pods get an answer at once because nothing
  in flight can serve them (the kubelet retries the sandbox later), instead of waiting out the
  CNI timeout.

Sans-IO: no clock, no sleeps, no threads.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.retry import backoff_for, retry_policies
from terway.ipam.commands import (
    AssignIps,
    AttachEni,
    Command,
    CreateEni,
    DeleteEni,
    DescribeVSwitches,
    DetachEni,
    UnassignIps,
)
from terway.ipam.enilimit import EniOpLimiter

ACTION: Mapping[type[Command], str] = {
    CreateEni: "CreateNetworkInterface",
    AttachEni: "AttachNetworkInterface",
    AssignIps: "AssignPrivateIpAddresses",
    UnassignIps: "UnassignPrivateIpAddresses",
    DetachEni: "DetachNetworkInterface",
    DeleteEni: "DeleteNetworkInterface",
    DescribeVSwitches: "DescribeVSwitches",
}
"""The cloud action each command is (one command = one call)."""

@dataclass(frozen=True)
class WaitPolicy:
    """How an attach or detach is awaited: check the ENI's status, pause, check again — the
    first pause ``first_pause`` seconds, each next one twice as long up to ``max_pause`` —
    and give up ``timeout`` seconds after the call returned."""

    timeout: float = 60.0
    first_pause: float = 0.2
    max_pause: float = 2.0

    def pauses(self) -> Iterator[float]:
        """The pauses between status checks, for ever (the caller watches the deadline)."""
        pause = self.first_pause
        while True:
            yield pause
            pause = min(pause * 2, self.max_pause)


ERR_ATTACH_TIMEOUT = "TerwayAttachTimeout"


def wait_timed_out(policy: WaitPolicy, what: str) -> CloudError:
    """The error an attach/detach wait ends with when its deadline passed (retried later)."""
    return CloudError(ERR_ATTACH_TIMEOUT, f"timed out after {policy.timeout:g}s waiting for "
                      f"{what}", error_class=ErrorClass.TRANSIENT)


def per_eni_limiter(limit: tuple[float, int] | None) -> EniOpLimiter | None:
    """Upstream's per-ENI limiters (operations per minute, burst), or None when off."""
    return EniOpLimiter(*limit) if limit is not None else None


# -- answering a pod at once -------------------------------------------------------------------

_EXPLAINS = (ErrorClass.EXHAUSTED, ErrorClass.QUOTA)


class FailureLog:
    """The recent failures of calls that would have added addresses (create, assign), and the
    last exhaustion the core announced: what explains a pod that cannot be served."""

    def __init__(self, size: int = 32) -> None:
        self._recent: collections.deque[tuple[float, CloudError]] = collections.deque(maxlen=size)
        self.exhausted: CloudError | None = None

    def record(self, cmd: Command, err: CloudError, now: float) -> None:
        if isinstance(cmd, CreateEni | AssignIps):
            self._recent.append((now, err))

    def explain(self, since: float, condition_ok: bool) -> CloudError | None:
        """The error that best explains why allocation is stuck since ``since``, if any."""
        recent = [err for at, err in self._recent if at >= since]
        for err in reversed(recent):
            if err.error_class in _EXPLAINS:
                return err
        if not condition_ok and self.exhausted is not None:
            return self.exhausted
        return recent[-1] if recent else None


@dataclass(frozen=True)
class CoreView:
    """What ``unservable`` reads of the core (``IpamCore`` has all three)."""

    sufficient: bool            # the SufficientIP condition
    in_flight: int              # addresses being fetched
    pending: frozenset[str]     # pod keys the core still waits to serve


def unservable(view: CoreView, waiting: Mapping[str, float], running: int, now: float,
               batch_window: float, failures: FailureLog) -> Iterable[tuple[str, CloudError]]:
    """The waiting pods (key → when they asked) to answer at once, each with its cause.

    Only when the core says SufficientIP=False, no command is running, nothing is in flight,
    the pod has waited past the batch window, and a recent exhaustion or quota error explains
    it: then only a release, a block lifting or a new vSwitch can help, which the kubelet's
    retry of the sandbox picks up (upstream instead holds the CNI call for the full timeout).
    """
    if view.sufficient or running or view.in_flight or not waiting:
        return []
    out = []
    for key, since in waiting.items():
        if now < since + batch_window or key not in view.pending:
            continue
        cause = failures.explain(since, view.sufficient)
        if cause is not None and cause.error_class in _EXPLAINS:
            out.append((key, cause))
    return out


__all__ = [
    "ACTION", "ERR_ATTACH_TIMEOUT", "CoreView", "FailureLog", "WaitPolicy",
    "backoff_for", "per_eni_limiter", "retry_policies", "unservable", "wait_timed_out",
]
