"""Virtual time for the real daemon: an asyncio loop whose clock jumps, and threads that take turns.

The daemon is asyncio plus worker threads (``asyncio.to_thread`` for cloud calls, the datapath,
Kubernetes) and it polls ENI status with ``Clock.sleep_blocking`` inside those threads. To run
it deterministically in compressed time:

- ``VirtualLoop``: when nothing is ready, ``select(timeout)`` advances the loop's clock by
  ``timeout`` instead of waiting (socket I/O that is ready is served first, without a jump).
- ``HandoffExecutor`` (the loop's default executor): ``submit`` starts a thread and *blocks the
  loop* until that thread finishes or sleeps, so exactly one thread of control runs at a time,
  in submission order.
- ``VirtualClock.sleep_blocking`` (in a worker) parks the thread on a loop timer and hands
  control back; when the timer fires the loop blocks again until the thread finishes or sleeps.

Same inputs → the same interleaving, every run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import threading
from collections.abc import Callable
from typing import Any

_tls = threading.local()


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:          # nothing scheduled at all: let real time pass a little
            return super().select(0.01)
        self.now += timeout
        return []


class HandoffExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each job in its own thread while the submitting (loop) thread waits its turn."""

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        turn = threading.Event()

        def work() -> None:
            _tls.turn = turn
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)
            finally:
                _tls.turn.set()

        threading.Thread(target=work, daemon=True, name="handoff").start()
        turn.wait()
        return fut


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._vsel = _VirtualSelector()
        super().__init__(self._vsel)
        self.set_default_executor(HandoffExecutor())

    def time(self) -> float:
        return self._vsel.now


class VirtualClock:
    """``terway.daemon.clock.Clock`` on a ``VirtualLoop``."""

    def __init__(self, loop: VirtualLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_blocking(self, seconds: float) -> None:
        """In a worker thread: park on a loop timer; the loop runs meanwhile."""
        turn: threading.Event | None = getattr(_tls, "turn", None)
        if turn is None:
            raise RuntimeError("sleep_blocking outside a HandoffExecutor thread")
        resume = threading.Event()
        again = threading.Event()

        def wake() -> None:                  # in the loop thread, at the virtual deadline
            resume.set()
            again.wait()                     # until the worker finishes or sleeps again

        self.loop.call_at(self.loop.time() + max(0.0, seconds), wake)
        turn.set()
        resume.wait()
        _tls.turn = again


def run_virtual(main: Callable[[], Any]) -> Any:
    """Run the coroutine function ``main`` on a fresh ``VirtualLoop``; close it after."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()
