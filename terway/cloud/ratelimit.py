"""Client-side rate limits: one token bucket per OpenAPI action.

Sans-IO on purpose: callers pass the current time in and get a delay back, so the daemon (real
clock, real sleeps) and the simulator (simpy time) drive the same arithmetic.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

# Upstream's per-minute defaults (pkg/aliyun/client ratelimit). "" is the shared bucket every
# action without its own entry draws from, as upstream does.
DEFAULT_KEY = ""
UPSTREAM_PER_MINUTE: Mapping[str, int] = {
    DEFAULT_KEY: 500,
    "CreateNetworkInterface": 500,
    "AttachNetworkInterface": 500,
    "DeleteNetworkInterface": 500,
    "DescribeNetworkInterfaces": 800,
    "DescribeNetworkInterfaceAttribute": 2000,
    "DetachNetworkInterface": 400,
    "AssignPrivateIpAddresses": 400,
    "UnassignPrivateIpAddresses": 400,
    "AssignIpv6Addresses": 400,
    "UnassignIpv6Addresses": 400,
    "DescribeInstanceTypes": 400,
    "DescribeVSwitches": 300,
}


class TokenBucket:
    """A token bucket that may go into debt, so concurrent reservations queue up in order.

    ``reserve`` always takes a token and says how long the caller must wait before using it;
    ``try_take`` takes one only if it is available now. Thread safe (a lock, no I/O).
    """

    def __init__(self, rate_per_s: float, burst: int, now: float = 0.0) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self._tokens = float(burst)
        self._last = float(now)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_s={self.rate_per_s:g}, burst={self.burst})"

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
            self._last = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (negative while reservations are queued)."""
        with self._lock:
            self._refill(now)
            return self._tokens

    def reserve(self, now: float) -> float:
        """Take one token; return the seconds to wait before acting (0.0 when one was free)."""
        with self._lock:
            self._refill(now)
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate_per_s

    def try_take(self, now: float) -> bool:
        """Take one token if one is available now; never goes into debt."""
        with self._lock:
            self._refill(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class RateLimits:
    """Per-action buckets with upstream's defaults, overridable from eni_conf ``rate_limit``.

    Like upstream, a limit of N per minute means rate N/60 per second and a burst of N unless
    ``burst`` is given (one number for all buckets; useful to measure the steady rate).
    """

    def __init__(
        self,
        overrides: Mapping[str, int] | None = None,
        *,
        burst: int | None = None,
        now: float = 0.0,
    ) -> None:
        per_minute = dict(UPSTREAM_PER_MINUTE)
        per_minute.update(validate_rate_limit(overrides or {}))
        self.per_minute: Mapping[str, int] = per_minute
        self._buckets = {
            api: TokenBucket(n / 60.0, burst if burst is not None else n, now)
            for api, n in per_minute.items()
        }

    def bucket(self, api: str) -> TokenBucket:
        """The bucket ``api`` draws from (the shared default one when it has none)."""
        return self._buckets.get(api) or self._buckets[DEFAULT_KEY]

    def reserve(self, api: str, now: float) -> float:
        return self.bucket(api).reserve(now)

    def try_take(self, api: str, now: float) -> bool:
        return self.bucket(api).try_take(now)


def validate_rate_limit(raw: Mapping[str, object]) -> dict[str, int]:
    """Check eni_conf ``rate_limit``: action name → positive whole number per minute."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"rate_limit: expected a mapping of API name to per-minute limit, "
                         f"got {type(raw).__name__}")
    out: dict[str, int] = {}
    for api, value in raw.items():
        if not isinstance(api, str):
            raise ValueError(f"rate_limit: API name must be a string, got {api!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"rate_limit.{api}: expected a positive integer per minute, "
                             f"got {value!r}")
        out[api] = value
    return out
