"""The daemon's driver of the IPAM core: asyncio around the sans-IO state machine.

It owns no pool policy. It feeds the core the time and events, runs the commands the core returns
in worker threads (``asyncio.to_thread``: the cloud client is synchronous), feeds the results back,
sleeps until the core's next wake-up, and turns notices into RPC answers, log lines and node
conditions. Before a cloud call that could leak something on a crash it writes an intent to the
store (with the call's ClientToken) and clears it once the outcome is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from terway.cloud.api import Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.daemon import logfmt
from terway.daemon.clock import Clock
from terway.daemon.executor import Executor
from terway.daemon.metrics import Metrics
from terway.daemon.store import ERR_STORE, Intent, Store, StoreError
from terway.ipam import IpamCore
from terway.ipam.commands import (
    AssignIps,
    AttachEni,
    Command,
    CreateEni,
    DeleteEni,
    DetachEni,
    UnassignIps,
)
from terway.ipam.drive import CoreView, FailureLog, unservable
from terway.ipam.enilimit import EniOpLimiter
from terway.ipam.execute import Outcome, feed
from terway.ipam.notices import (
    Allocation,
    ConditionChanged,
    Exhausted,
    IpReady,
    LogLine,
    Notice,
)

log = logfmt.get("driver")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
INTENT_CREATE = "create_eni"
INTENT_RELEASE = "release_eni"
INTENT_ASSIGN = "assign_ips"
INTENT_UNASSIGN = "unassign_ips"
ERR_INTERNAL = "TerwayDriverError"


class AllocTimeout(Exception):
    """A pending request was not served in time; ``cause`` is the cloud error that explains why."""

    def __init__(self, pod_key: str, timeout: float, cause: CloudError | None,
                 reason: str = "") -> None:
        self.pod_key = pod_key
        self.cause = cause
        why = cause.describe() if cause else (reason or "no address became available")
        super().__init__(f"error allocate ip for pod {pod_key}: no address within "
                         f"{timeout:g}s: {why}")


class AllocUnavailable(AllocTimeout):
    """No address can be had now (exhaustion or quota, nothing in flight that could serve the
    request): answered at once instead of at the timeout; the core keeps working on it."""

    def __init__(self, pod_key: str, cause: CloudError) -> None:
        self.pod_key = pod_key
        self.cause = cause
        Exception.__init__(self, f"error allocate ip for pod {pod_key}: no address can be had "
                                 f"now, retry later: {cause.describe()}")


def release_token(eni_id: str) -> str:
    return f"release-{eni_id}"


class Driver:
    """Runs ``IpamCore`` in real (or scaled) time; one instance per daemon, one event loop."""

    def __init__(
        self,
        core: IpamCore,
        executor: Executor,
        store: Store,
        clock: Clock,
        *,
        metrics: Metrics | None = None,
        on_condition: Callable[[ConditionChanged], None] | None = None,
        on_alloc_failure: Callable[[CloudError], None] | None = None,
        max_idle: float = 30.0,
        limiter: EniOpLimiter | None = None,
    ) -> None:
        self.core = core
        self.executor = executor
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.on_condition = on_condition
        self.on_alloc_failure = on_alloc_failure  # a cloud call that should have added addresses
        self.max_idle = max_idle
        self.limiter = limiter             # upstream's per-ENI 10/min limiters (None: off)
        self.condition: ConditionChanged | None = None
        self._waiters: dict[str, asyncio.Future[Allocation]] = {}
        self._since: dict[str, float] = {}
        self._running = 0                  # commands started and not yet fed back
        self.batch_window = 0.0            # the core's batch window (IpamSettings.batch_window)
        self.fail_fast = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._create_tokens: dict[str, str] = {}
        self._failures = FailureLog()
        self._stopping = False

    # -- the loop -----------------------------------------------------------------------------

    def pump(self) -> None:
        """Let the core act now: start its commands, handle its notices, re-arm the timer."""
        for cmd in self.core.tick(self.clock.now()):
            self._start(cmd)
        self._handle_notices()
        self._fail_unservable()
        self._update_metrics()
        self._wake.set()

    async def run(self) -> None:
        """Tick at every wake-up the core asks for (and at least every ``max_idle`` s)."""
        while not self._stopping:
            self._wake.clear()
            self.pump()
            self._wake.clear()
            nxt = self.core.next_wakeup()
            delay = self.max_idle if nxt is None else min(self.max_idle,
                                                          max(0.0, nxt - self.clock.now()))
            await self._sleep_or_wake(delay)

    async def _sleep_or_wake(self, delay: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop ticking; give running cloud calls ``grace`` s to land (intents cover the rest)."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)

    async def drain(self) -> None:
        """Wait until no command is running (tests; also used after restore)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    @property
    def busy(self) -> int:
        return len(self._tasks)

    # -- pod requests -------------------------------------------------------------------------

    async def request(self, pod_key: str, *, sticky: bool, timeout: float) -> Allocation:
        """An address for ``pod_key``: at once from the pool, else after the cloud calls."""
        try:
            alloc = await self._request(pod_key, sticky, timeout)
        except BaseException:
            self._count_alloc("", False)
            raise
        self._count_alloc(alloc.mac, True)
        return alloc

    def _count_alloc(self, mac: str, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.count_alloc(mac, ok)

    async def _request(self, pod_key: str, sticky: bool, timeout: float) -> Allocation:
        since = self.clock.now()
        res = self.core.request_ip(pod_key, since, sticky=sticky)
        if isinstance(res, Allocation):
            self.pump()
            return res
        fut: asyncio.Future[Allocation] = asyncio.get_running_loop().create_future()
        self._waiters[pod_key] = fut
        self._since[pod_key] = since
        self.pump()
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        both: set[asyncio.Future[Any]] = {fut, sleeper}
        try:
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
            failed = fut.exception() if fut.done() else None
            if fut.done() and failed is None:
                return fut.result()
            reason = self.core.pending_reason(pod_key)
            self.core.cancel_request(pod_key, self.clock.now())
            self.pump()
            raise failed or AllocTimeout(pod_key, timeout, self.explain(since), reason)
        finally:
            sleeper.cancel()
            self._waiters.pop(pod_key, None)
            self._since.pop(pod_key, None)

    def release(self, pod_key: str) -> Allocation | None:
        released = self.core.release_ip(pod_key, self.clock.now())
        self.pump()
        return released

    def _fail_unservable(self) -> None:
        """Answer waiters at once when the core cannot serve them now: the rule is
        ``terway.ipam.drive.unservable``, shared with the simulator's kubelet."""
        if not self.fail_fast or not self._waiters:
            return
        core = self.core
        view = CoreView(core.condition(), core.stats().in_flight, frozenset(core.pending_keys()))
        waiting = {k: self._since[k] for k, f in self._waiters.items() if not f.done()}
        for key, cause in unservable(view, waiting, self._running, self.clock.now(),
                                     self.batch_window, self._failures):
            log.info("no address can be had now; answering at once", extra=logfmt.fields(
                pod=key, reason=core.pending_reason(key)))
            self._waiters[key].set_exception(AllocUnavailable(key, cause))

    def explain(self, since: float) -> CloudError | None:
        """The cloud error that best explains why allocation is stuck, if any."""
        ok = self.condition is None or self.condition.status
        return self._failures.explain(since, ok)

    # -- commands -----------------------------------------------------------------------------

    def _start(self, cmd: Command) -> None:
        self._running += 1
        task = asyncio.ensure_future(self._execute(cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, cmd: Command) -> None:
        if self.limiter is not None:
            delay = self.limiter.reserve(cmd, self.clock.now())
            if delay > 0:                  # the ENI's own limiter, before the intent and call
                await self.clock.sleep(delay)
                if self._stopping:
                    self._running -= 1
                    return
        try:
            self._before(cmd)
        except StoreError as exc:  # the call is not made: its intent could not be kept
            log.error("state store write failed; cloud call not made", extra=logfmt.fields(
                command=type(cmd).__name__, error=str(exc)))
            self._store_failed(cmd, exc)
            return
        try:
            outcome: Outcome = await asyncio.to_thread(self.executor.run, cmd)
        except CloudError as err:
            self._failed(cmd, err)
        except Exception as exc:  # a bug or an unclassified client failure: retry like transient
            log.error("cloud call failed unexpectedly", exc_info=True,
                      extra=logfmt.fields(command=type(cmd).__name__))
            self._failed(cmd, CloudError(ERR_INTERNAL, f"{type(exc).__name__}: {exc}",
                                         error_class=ErrorClass.TRANSIENT))
        else:
            self._succeeded(cmd, outcome)
        finally:
            self._running -= 1
        if not self._stopping:
            self.pump()

    def _store_failed(self, cmd: Command, exc: StoreError) -> None:
        """Feed the core a transient failure and answer every waiter now with the store's
        error: waiting cannot help until the disk does, and a cloud error would mislead."""
        err = CloudError(ERR_STORE, str(exc), error_class=ErrorClass.TRANSIENT)
        self._running -= 1
        if self.limiter is not None:
            self.limiter.settle(cmd, err)
        feed(self.core, cmd, err, self.clock.now())
        for key, fut in self._waiters.items():
            if not fut.done():
                fut.set_exception(AllocUnavailable(key, err))
        if not self._stopping:
            self.pump()

    def _before(self, cmd: Command) -> None:
        """Write the intent for a call that changes something, before making it."""
        self._count_disposed(cmd)
        match cmd:
            case CreateEni():
                self.store.add_intent(Intent(cmd.client_token or cmd.cmd_id, INTENT_CREATE, {
                    "cmd_id": cmd.cmd_id, "vswitch_id": cmd.vswitch_id,
                    "security_group_ids": list(cmd.security_group_ids),
                    "secondary_ip_count": cmd.secondary_ip_count, "tags": dict(cmd.tags),
                    "client_token": cmd.client_token,
                    "resource_group_id": cmd.resource_group_id}))
            case DetachEni():
                self.store.add_intent(Intent(release_token(cmd.eni_id), INTENT_RELEASE,
                                             {"eni_id": cmd.eni_id}))
            case DeleteEni():
                self.store.add_intent(Intent(release_token(cmd.eni_id), INTENT_RELEASE,
                                             {"eni_id": cmd.eni_id}))
            case AssignIps():
                self.store.add_intent(Intent(cmd.cmd_id, INTENT_ASSIGN,
                                             {"eni_id": cmd.eni_id, "count": cmd.count}))
            case UnassignIps():
                self.store.add_intent(Intent(cmd.cmd_id, INTENT_UNASSIGN,
                                             {"eni_id": cmd.eni_id, "ips": list(cmd.ips)}))
            case _:
                pass

    def _count_disposed(self, cmd: Command) -> None:
        """Upstream's ``terway_resource_pool_disposed_count``: every address the pool gives up,
        counted when the call is made (an unassign, or the detach of an ENI with its own)."""
        if self.metrics is None:
            return
        match cmd:
            case UnassignIps():
                self.metrics.count_disposed(len(cmd.ips))
            case DetachEni():
                ips = [len(e.ips) for e in self.core.enis() if e.eni_id == cmd.eni_id]
                self.metrics.count_disposed(sum(ips))
            case _:
                pass

    def _succeeded(self, cmd: Command, outcome: Outcome) -> None:
        """Settle the intent, then feed the outcome to the core."""
        try:
            self._settle_succeeded(cmd, outcome)
        except StoreError as exc:  # the intent stays; reconcile at start settles it
            log.error("state store write failed after a cloud call", extra=logfmt.fields(
                command=type(cmd).__name__, error=str(exc)))
        if self.limiter is not None:
            self.limiter.settle(cmd, outcome)
        feed(self.core, cmd, outcome, self.clock.now())

    def _settle_succeeded(self, cmd: Command, outcome: Outcome) -> None:
        match cmd:
            case CreateEni():
                assert isinstance(outcome, Eni)
                token = cmd.client_token or cmd.cmd_id
                self._create_tokens[outcome.eni_id] = token
                intent = next((i for i in self.store.intents() if i.token == token), None)
                if intent is not None:
                    self.store.update_intent(token, {**intent.params, "eni_id": outcome.eni_id})
            case AttachEni():
                self._clear_create(cmd.eni_id)
            case AssignIps() | UnassignIps():
                self.store.clear_intent(cmd.cmd_id)
            case DeleteEni():
                self._clear_create(cmd.eni_id)
                self.store.clear_intent(release_token(cmd.eni_id))
            case _:
                pass

    def _failed(self, cmd: Command, err: CloudError) -> None:
        now = self.clock.now()
        self._failures.record(cmd, err, now)
        if self.on_alloc_failure is not None and isinstance(cmd, CreateEni | AttachEni | AssignIps):
            self.on_alloc_failure(err)
        try:
            self._settle_failed(cmd, err, now)
        except StoreError as exc:
            log.error("state store write failed after a cloud call", extra=logfmt.fields(
                command=type(cmd).__name__, error=str(exc)))
        if self.limiter is not None:
            self.limiter.settle(cmd, err)
        feed(self.core, cmd, err, now)

    def _settle_failed(self, cmd: Command, err: CloudError, now: float) -> None:
        match cmd:
            case CreateEni():
                if not err.retryable:  # a definite "no": nothing was created
                    self.store.clear_intent(cmd.client_token or cmd.cmd_id)
            case AssignIps() | UnassignIps():
                self.store.clear_intent(cmd.cmd_id)
            case DeleteEni() if err.error_class is ErrorClass.NOT_FOUND:
                self._clear_create(cmd.eni_id)
                self.store.clear_intent(release_token(cmd.eni_id))
            case _:
                pass

    def _clear_create(self, eni_id: str) -> None:
        token = self._create_tokens.pop(eni_id, None)
        if token is not None:
            self.store.clear_intent(token)

    # -- notices ------------------------------------------------------------------------------

    def _handle_notices(self) -> None:
        for notice in self.core.drain_notices():
            self._handle(notice)

    def _handle(self, notice: Notice) -> None:
        match notice:
            case IpReady(pod_key=key, allocation=alloc):
                fut = self._waiters.get(key)
                if fut is not None and not fut.done():
                    fut.set_result(alloc)
                else:  # nobody waits any more (timed out): give it back
                    self.core.release_ip(key, self.clock.now())
            case LogLine(level=level, msg=msg):
                log.log(_LEVELS.get(level, logging.INFO), msg)
            case ConditionChanged():
                self.condition = notice
                if self.on_condition is not None:
                    self.on_condition(notice)
            case Exhausted(error=err):
                self._failures.exhausted = err

    def _update_metrics(self) -> None:
        if self.metrics is None:
            return
        s = self.core.stats()
        self.metrics.set_pool(total=s.total, idle=s.idle,
                              ips_by_eni={e.mac: len(e.ips) for e in self.core.enis()})
