"""Retries with backoff for cloud calls, sans-IO: sleep, clock and randomness are injected.

The policy mirrors Kubernetes' ``wait.Backoff`` that upstream uses: ``steps`` attempts, the first
pause ``initial`` seconds, each next one ``factor`` times longer, each stretched by up to
``jitter`` times itself. Only THROTTLED and TRANSIENT failures are retried; on giving up the
caller gets the last classified ``CloudError``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from terway.cloud.errors import CloudError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    initial: float          # seconds before the second attempt
    factor: float = 1.0     # growth per step
    steps: int = 1          # attempts in total (1 = no retry)
    jitter: float = 0.0     # each pause is d + U[0,1) * jitter * d
    cap: float | None = None  # no single pause longer than this (before jitter)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"backoff steps must be >= 1, got {self.steps}")
        if self.initial < 0 or self.factor < 0 or self.jitter < 0:
            raise ValueError("backoff initial, factor and jitter must be >= 0")

    def delays(self, rng: random.Random) -> list[float]:
        """The ``steps - 1`` pauses between attempts, jittered from ``rng``."""
        out: list[float] = []
        base = self.initial
        for _ in range(self.steps - 1):
            d = min(base, self.cap) if self.cap is not None else base
            if self.jitter > 0:
                d += rng.random() * self.jitter * d
            out.append(d)
            base *= self.factor
        return out


# Upstream's presets (pkg/backoff), seconds.
NO_RETRY = Backoff(0.0, 1.0, 1)
DEFAULT = Backoff(2.0, 1.5, 6, jitter=0.3)
ENI_CREATE = Backoff(10.0, 2.0, 2, jitter=0.3)
ENI_OPS = Backoff(5.0, 2.0, 6, jitter=0.3)        # create/attach/detach/delete ENI
ENI_RELEASE = Backoff(4.0, 2.0, 8, jitter=0.5)
ENI_IP_OPS = Backoff(5.0, 1.0, 6, jitter=1.3)     # assign/unassign private IPs
WAIT_ENI_STATUS = Backoff(5.0, 1.5, 8, jitter=0.5)

ECS_ENI_OPS = ("CreateNetworkInterface", "AttachNetworkInterface", "DetachNetworkInterface",
               "DeleteNetworkInterface")
ECS_IP_OPS = ("AssignPrivateIpAddresses", "UnassignPrivateIpAddresses")

# eni_conf backoff_override keys (upstream's names) → the API calls they govern, applied in this
# order (the specific ones win over eni_ops). Upstream's other keys name waits terway-py does
# not have (its attach wait is --attach-timeout).
OVERRIDE_APIS: Mapping[str, tuple[str, ...]] = {
    "": ("",),
    "eni_ops": ECS_ENI_OPS,
    "eni_create": ("CreateNetworkInterface",),
    "eni_release": ("DetachNetworkInterface", "DeleteNetworkInterface"),
    "eni_ip_ops": ECS_IP_OPS,
}

DEFAULT_POLICIES: Mapping[str, Backoff] = {
    **dict.fromkeys(ECS_ENI_OPS, ENI_OPS),
    **dict.fromkeys(ECS_IP_OPS, ENI_IP_OPS),
    "": DEFAULT,
}
"""Upstream's retry presets per API (``""``: every other API)."""


def retry_policies(overrides: Mapping[str, Backoff]) -> dict[str, Backoff]:
    """Per-API retry policies: eni_conf ``backoff_override`` (upstream's keys, or API names)
    over ``DEFAULT_POLICIES``. Every driver retries with these (the daemon in its SDK client,
    the simulator around simpy time)."""
    out = dict(DEFAULT_POLICIES)
    for key, apis in OVERRIDE_APIS.items():
        if key in overrides:
            out.update(dict.fromkeys(apis, overrides[key]))
    out.update({k: v for k, v in overrides.items() if k not in OVERRIDE_APIS})
    return out


def backoff_for(action: str, policies: Mapping[str, Backoff]) -> Backoff:
    """The policy an API call retries with (``""`` covers every API not named)."""
    return policies.get(action) or policies[""]


PRESETS: Mapping[str, Backoff] = {
    "": DEFAULT,
    "eni_create": ENI_CREATE,
    "eni_ops": ENI_OPS,
    "eni_release": ENI_RELEASE,
    "eni_ip_ops": ENI_IP_OPS,
    "wait_eni_status": WAIT_ENI_STATUS,
}


class Limiter(Protocol):
    """Anything that hands out a wait before the next call (a ``TokenBucket``)."""

    def reserve(self, now: float) -> float: ...


OnRetry = Callable[[int, CloudError, float], None]
"""Called before each pause: (attempt number that failed, its error, pause seconds)."""


def call_with_retry(
    fn: Callable[[], T],
    policy: Backoff,
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
    limiter: Limiter | None = None,
    on_retry: OnRetry | None = None,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it succeeds, fails for good, or the policy's steps run out.

    Each attempt first waits for the limiter. Non-``CloudError`` exceptions propagate untouched:
    the SDK wrapper has already turned network failures into TRANSIENT ``CloudError``.
    """
    pauses = policy.delays(rng if rng is not None else random.Random(0))
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            wait = limiter.reserve(now())
            if wait > 0:
                sleep(wait)
        try:
            return fn()
        except CloudError as err:
            if not err.retryable or attempt > len(pauses):
                raise
            pause = pauses[attempt - 1]
            if on_retry is not None:
                on_retry(attempt, err, pause)
            sleep(pause)
