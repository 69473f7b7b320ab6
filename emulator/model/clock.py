"""Clocks: the model never reads time itself, it is handed a ``Callable[[], float]``."""

from __future__ import annotations

import threading


class ManualClock:
    """A clock that only moves when told to: for unit tests and the simulator."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards by {seconds}")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            if now < self._now:
                raise ValueError(f"cannot move a clock backwards from {self._now} to {now}")
            self._now = now
