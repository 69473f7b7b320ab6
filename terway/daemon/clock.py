"""Time for the daemon, injectable so tests can compress it.

The IPAM core is handed ``now`` (monotonic seconds) on every input; the driver sleeps until the
core's next wake-up. ``ScaledClock`` runs both ``k`` times faster than the wall clock, so a test
can cross a 120 s pool-sync period or a 10 min exhaustion block in a fraction of a second without
any timed assertion.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (any epoch); never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def sleep_blocking(self, seconds: float) -> None:
        """For worker threads (polling a cloud call's progress)."""
        ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ScaledClock:
    """Daemon time runs ``factor`` times faster than real time."""

    def __init__(self, factor: float) -> None:
        if not factor > 0:
            raise ValueError(f"clock factor must be > 0, got {factor!r}")
        self.factor = factor
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.factor)
