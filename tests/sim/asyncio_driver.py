"""A minimal asyncio driver of the IPAM core, on an event loop with virtual time.

It does what ``emulator.sim.node.SimNode`` does (tick after every input, each command completes
after a constant latency, attach/detach polled every second) but with asyncio's own timers and
nothing from the simulator. Same-instant timers fire in the order they were set (asyncio's heap
does not promise that, so one handle per instant runs a FIFO list).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from typing import Any

from terway.cloud.errors import CloudError
from terway.ipam import AttachEni, Command, DetachEni, IpamCore, IpReady, Pending, execute, feed


class _VirtualSelector(selectors.DefaultSelector):
    """select(timeout) jumps the loop's clock instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout and timeout > 0:
            self.now += timeout
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._vsel = _VirtualSelector()
        super().__init__(self._vsel)

    def time(self) -> float:
        return self._vsel.now


class AsyncNode:
    def __init__(self, loop: VirtualLoop, core: IpamCore, cloud: Any, latency: float,
                 setup: float) -> None:
        self.loop, self.core, self.cloud = loop, core, cloud
        self.latency, self.setup = latency, setup
        self._due: dict[float, list[Callable[[], None]]] = {}
        self._wake_at = float("inf")
        self.waiting: dict[str, Callable[[Any], None]] = {}

    def at(self, when: float, fn: Callable[[], None]) -> None:
        if when not in self._due:
            self._due[when] = []
            self.loop.call_at(when, self._fire, when)
        self._due[when].append(fn)

    def _fire(self, when: float) -> None:
        for fn in self._due.pop(when):
            fn()

    def now(self) -> float:
        return self.loop.time()

    def pump(self) -> None:
        for cmd in self.core.tick(self.now()):
            self.at(self.now() + self.latency, lambda cmd=cmd: self._complete(cmd))
        for n in self.core.drain_notices():
            if isinstance(n, IpReady) and n.pod_key in self.waiting:
                self.waiting.pop(n.pod_key)(n.allocation)
        wake = self.core.next_wakeup()
        if wake is not None and wake < self._wake_at:
            self._wake_at = wake
            self.at(wake, self._wake)

    def _wake(self) -> None:
        if self.now() >= self._wake_at:
            self._wake_at = float("inf")
            self.pump()

    def _complete(self, cmd: Command) -> None:
        try:
            outcome: Any = execute(cmd, self.cloud)
        except CloudError as err:
            outcome = err
        if not isinstance(outcome, CloudError) and isinstance(cmd, AttachEni | DetachEni):
            target = "InUse" if isinstance(cmd, AttachEni) else "Available"
            self.at(self.now() + 1.0, lambda: self._poll(cmd, target))
            return
        feed(self.core, cmd, outcome, self.now())
        self.pump()

    def _poll(self, cmd: AttachEni | DetachEni, target: str) -> None:
        found = self.cloud.describe_network_interfaces(eni_ids=[cmd.eni_id])
        if found and found[0].status == target:
            feed(self.core, cmd, None, self.now())
            self.pump()
        else:
            self.at(self.now() + 1.0, lambda: self._poll(cmd, target))

    async def pod(self, key: str, lifetime: float) -> None:
        """A pod: ask for an address, run ``setup + lifetime``, release."""
        res = self.core.request_ip(key, self.now())
        self.pump()
        if isinstance(res, Pending):
            fut: asyncio.Future[Any] = self.loop.create_future()
            self.waiting[key] = fut.set_result
            await fut
        done: asyncio.Future[None] = self.loop.create_future()
        self.at(self.now() + self.setup + lifetime, lambda: done.set_result(None))
        await done
        self.core.release_ip(key, self.now())
        self.pump()
