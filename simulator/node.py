"""A simulated node: the plugin's IPAM core driven in simpy time against the emulated cloud.

The driver does what ``terwayd`` does around the core, nothing more: it feeds pod requests and
command results in, ticks the core at ``next_wakeup()``, and executes each command after the
client-side rate limit (``terway.cloud.ratelimit``) and a latency drawn for that action, retrying
THROTTLED/TRANSIENT failures with the daemon's per-API policies. The cloud call itself is
``terway.ipam.execute`` on ``ModelCloud``; attach/detach then wait for the ENI status on the
daemon's schedule, and a pod nothing can serve now is answered at once. Every one of those rules
comes from ``terway.ipam.drive``, the daemon's too. Everything is callbacks on simpy timeouts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from terway.cloud.api import Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.ratelimit import RateLimits
from terway.cloud.retry import backoff_for
from terway.ipam import (
    AssignIps,
    AttachEni,
    Command,
    ConditionChanged,
    CreateEni,
    DeleteEni,
    DetachEni,
    Exhausted,
    IpamCore,
    IpamSettings,
    IpReady,
    LogLine,
    Pending,
    PoolPlan,
    PoolState,
    UnassignIps,
    execute,
    feed,
)
from terway.ipam.drive import (
    ACTION,
    CoreView,
    FailureLog,
    per_eni_limiter,
    unservable,
    wait_timed_out,
)
from terway.ipam.enilimit import EniOpLimiter

if TYPE_CHECKING:
    from simulator.engine import Run

class NoopPolicy:
    """Never tops up, never releases: addresses are only fetched for pending pods."""

    def plan(self, state: PoolState, now: float) -> PoolPlan:
        return PoolPlan(0, 0)


class SimNode:
    """One node: its kubelet-facing API (request/release/cancel) and its command executor."""

    def __init__(self, run: Run, name: str, instance_id: str, settings: IpamSettings,
                 max_pods: int, rng: random.Random) -> None:
        self.run = run
        self.env = run.env
        self.name = name
        self.instance_id = instance_id
        self.settings = settings
        self.max_pods = max_pods
        self.rng = rng
        self.alive = True           # the instance exists
        self.up = False             # the daemon answers
        self.pod_count = 0
        self.waiting = 0            # its pods still waiting for an address
        self.gen = 0
        self.inflight = 0
        self.core: IpamCore | None = None
        self.limits = RateLimits(run.rate_limit)
        self.eni_limiter: EniOpLimiter | None = None      # the daemon's per-ENI limiters
        self.eni_ips: dict[str, tuple[str, int]] = {}     # eni id → (vSwitch, addresses)
        self._wake_at = math.inf
        self._wake_token = 0
        self.condition_ok = True
        self.asked: dict[str, float] = {}   # pods waiting for an address → when they asked
        self.failures = FailureLog()

    # -- life cycle -------------------------------------------------------------------------------
    def start(self, restore_from_cloud: bool = False) -> None:
        """(Re)start the daemon: a fresh core, rebuilt from cloud truth and pod owners."""
        self.gen += 1
        policy = NoopPolicy() if self.run.policy_runtime.noop else None
        self.core = IpamCore(self.settings, id_prefix=f"{self.name}-g{self.gen}",
                             rng=random.Random(f"{self.run.seed}:{self.name}:{self.gen}"),
                             policy=policy)
        self.eni_limiter = per_eni_limiter(self.run.policy_runtime.per_eni_limit)
        self.asked = {}
        self.failures = FailureLog()
        if restore_from_cloud:
            self._restore()
        self.up = True
        self.run.hist.add((self.env.now, self.name, "daemon-start", f"gen {self.gen}"))
        self.pump()

    def _restore(self) -> None:
        assert self.core is not None
        cloud = self.run.cloud_truth
        enis = [e for e in cloud.describe_network_interfaces(instance_id=self.instance_id)
                if e.eni_type != "Primary" and e.status in ("InUse", "Attaching")]
        owners = {p.ip: p.key for p in self.run.cluster.pods_on(self) if p.ip and p.state == 3}
        report = self.core.restore(enis, owners, self.env.now)
        col = self.run.col
        for vsw, n in self.eni_ips.values():
            col.held[vsw] -= n
        self.eni_ips = {e.eni_id: (e.vswitch_id, len(e.private_ips)) for e in enis}
        for vsw, n in self.eni_ips.values():
            col.held[vsw] = col.held.get(vsw, 0) + n
        self.run.hist.add((self.env.now, self.name, "restore",
                           f"{len(enis)} ENIs, {len(report.freed)} idle, "
                           f"{len(report.dropped)} dropped"))

    def restart(self, downtime: float) -> None:
        """Kill the daemon; it comes back after ``downtime`` once its old calls have landed."""
        if not self.up:
            return
        self.up = False
        self.gen += 1                 # results of calls in flight go nowhere now
        self.run.col.daemon_restarts += 1
        self.run.hist.add((self.env.now, self.name, "daemon-stop", ""))
        self.run.cluster.fail_waiting(self)
        self._after(downtime, self._come_back)

    def _come_back(self) -> None:
        if not self.alive:
            return
        if self.inflight:
            self._after(1.0, self._come_back)
            return
        self.start(restore_from_cloud=True)

    def remove(self) -> None:
        """The node leaves the cluster; its instance is deleted (secondary ENIs → Available)."""
        self.alive = self.up = False
        self.gen += 1
        col = self.run.col
        for vsw, n in self.eni_ips.values():
            col.held[vsw] -= n
        self.eni_ips = {}

    # -- kubelet-facing ---------------------------------------------------------------------------
    def request(self, pod_key: str, sticky: bool) -> Any:
        """An Allocation now, True when pending (IpReady follows), None when the daemon is down."""
        if not self.up:
            return None
        core = self.core
        assert core is not None
        res = core.request_ip(pod_key, self.env.now, sticky)
        if isinstance(res, Pending):
            self.asked[pod_key] = self.env.now
            self.pump()
            return True
        if self.run.eager_tick:
            self.pump()
        else:
            self._schedule_wake(core)   # the core may now want a pool sync it had left out
        return res

    def release(self, pod_key: str, sticky: bool = False) -> None:
        """Lazy mode: a release needs no tick now (the core serves waiting pods inside
        ``release_ip`` and nothing it does falls due before ``next_wakeup``), but the wake-up
        is re-read: a reservation's expiry, or a pool sync the core had left out as quiet."""
        core = self.core
        if not self.up or core is None:
            return
        core.release_ip(pod_key, self.env.now)
        if self.run.eager_tick:
            self.pump()
            return
        notices = core.drain_notices()
        if notices:
            self._handle(notices)
        self._schedule_wake(core)

    def cancel(self, pod_key: str) -> None:
        self.asked.pop(pod_key, None)
        if self.up and self.core is not None:
            self.core.cancel_request(pod_key, self.env.now)
            self.pump()

    def set_settings(self, settings: IpamSettings, reload: bool) -> None:
        self.settings = settings
        if reload and self.up and self.core is not None:
            self.core.on_config_changed(settings, self.env.now)
            self.pump()

    # -- the driver loop --------------------------------------------------------------------------
    def pump(self) -> None:
        core = self.core
        if core is None or not self.up:
            return
        now = self.env.now
        for cmd in core.tick(now):
            self._start(cmd)
        notices = core.drain_notices()
        if notices:
            self._handle(notices)
        if self.asked and self.run.policy_runtime.fail_fast and self._answer_unservable(core):
            for cmd in core.tick(now):          # the withdrawn requests may change the plan
                self._start(cmd)
            notices = core.drain_notices()
            if notices:
                self._handle(notices)
        self._schedule_wake(core)

    def _answer_unservable(self, core: IpamCore) -> int:
        """Pods nothing in flight can serve are answered at once (``drive.unservable``, as the
        daemon does): their requests are withdrawn and the kubelet retries the sandbox after
        its backoff. Returns how many were answered."""
        if core.condition():
            return 0
        now = self.env.now
        view = CoreView(False, core.stats().in_flight, frozenset(core.pending_keys()))
        told = list(unservable(view, self.asked, self.inflight, now,
                               self.settings.batch_window, self.failures))
        for key, _cause in told:
            del self.asked[key]
            core.cancel_request(key, now)
            self.run.cluster.on_unavailable(key)
        return len(told)

    def _schedule_wake(self, core: IpamCore) -> None:
        wake = core.next_wakeup()
        if wake is not None and wake < self._wake_at:
            self._wake_at = wake
            self._wake_token += 1
            token = self._wake_token
            delay = wake - self.env.now
            self.env.timeout(delay if delay > 0.0 else 0.0).callbacks.append(
                lambda _e: self._wake(token))

    def _wake(self, token: int) -> None:
        if token == self._wake_token:
            self._wake_at = math.inf
            self.pump()

    def _handle(self, notices: list[Any]) -> None:
        run = self.run
        now = self.env.now
        for n in notices:
            if isinstance(n, IpReady):
                self.asked.pop(n.pod_key, None)
                run.cluster.on_ip_ready(n.pod_key, n.allocation)
            elif isinstance(n, LogLine):
                run.log.write(now, n.level, n.msg, self.name)
            elif isinstance(n, ConditionChanged):
                self.condition_ok = n.status
                run.hist.add((now, self.name, "condition", f"{n.type}={n.status} {n.reason}"))
            elif isinstance(n, Exhausted):
                self.failures.exhausted = n.error
                run.col.log_lines[f"exhausted_{n.scope}"] += 1
                run.hist.add((now, self.name, "exhausted", f"{n.scope} {n.resource_id}"))

    # -- executing commands -----------------------------------------------------------------------
    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        self.env.timeout(delay).callbacks.append(lambda _e: fn())

    def _start(self, cmd: Command) -> None:
        self.inflight += 1
        self.run.hist.add((self.env.now, self.name, "cmd", cmd))     # str() when reported
        gen = self.gen
        wait = self.eni_limiter.reserve(cmd, self.env.now) if self.eni_limiter else 0.0
        if wait > 0:                  # the ENI's own limiter, once per command as the daemon
            self._after(wait, lambda: self._limited(cmd, gen))
        else:
            self._try(cmd, ACTION[type(cmd)], gen, 0, None)

    def _limited(self, cmd: Command, gen: int) -> None:
        """The per-ENI limiter let ``cmd`` go: the call, unless the daemon that waited is gone
        (a killed daemon makes no call)."""
        if gen != self.gen:
            self.inflight -= 1
            return
        self._try(cmd, ACTION[type(cmd)], gen, 0, None)

    def _try(self, cmd: Command, action: str, gen: int, attempt: int,
             pauses: list[float] | None) -> None:
        run = self.run
        now = self.env.now
        wait = self.limits.reserve(action, now)
        latency, error = run.latency(action, cmd, now + wait, self.rng)
        self._after(wait + latency,
                    lambda: self._complete(cmd, action, gen, attempt, pauses, error))

    def _complete(self, cmd: Command, action: str, gen: int, attempt: int,
                  pauses: list[float] | None, error: CloudError | None) -> None:
        run = self.run
        if not self.alive:
            self.inflight -= 1
            return
        outcome: Any = None
        if error is None:
            try:
                outcome = execute(cmd, run.cloud)
            except CloudError as err:
                error = err
        run.col.api_calls[(action, "OK" if error is None else error.code)] += 1
        if isinstance(cmd, DetachEni) and error is not None and \
                error.error_class is ErrorClass.NOT_FOUND:
            error = None              # already gone: the daemon's executor takes that as done
        if error is not None:
            run.hist.add((self.env.now, self.name, "cmd-failed", f"{cmd.cmd_id} {error.code}"))
            if error.retryable:
                if pauses is None:
                    pauses = backoff_for(action, run.retry_policies).delays(self.rng)
                if attempt < len(pauses):
                    self._after(pauses[attempt],
                                lambda: self._try(cmd, action, gen, attempt + 1, pauses))
                    return
            self._finish(cmd, gen, error)
            return
        if isinstance(cmd, AttachEni | DetachEni):
            wait = run.wait_policy
            self._check(cmd, gen, self.env.now + wait.timeout, wait.pauses())
            return
        self._finish(cmd, gen, outcome)

    def _check(self, cmd: AttachEni | DetachEni, gen: int, deadline: float,
               pauses: Iterator[float]) -> None:
        """One status check of an attach/detach, then the next pause of the daemon's
        ``WaitPolicy`` (``terway.daemon.executor`` waits the same way)."""
        run = self.run
        if not self.alive:
            self.inflight -= 1
            return
        found = run.cloud.describe_network_interfaces(eni_ids=[cmd.eni_id])
        run.col.api_calls[("DescribeNetworkInterfaces", "OK")] += 1
        attach = isinstance(cmd, AttachEni)
        if not found:
            self._finish(cmd, gen, CloudError("InvalidEniId.NotFound", f"ENI {cmd.eni_id} "
                                              "disappeared while attaching") if attach else None)
        elif found[0].status == ("InUse" if attach else "Available"):
            self._finish(cmd, gen, None)
        elif self.env.now >= deadline:
            what = f"ENI {cmd.eni_id} to be {'InUse' if attach else 'Available'}"
            self._finish(cmd, gen, wait_timed_out(run.wait_policy, what))
        else:
            self._after(next(pauses), lambda: self._check(cmd, gen, deadline, pauses))

    def _finish(self, cmd: Command, gen: int, outcome: Any) -> None:
        self.inflight -= 1
        if gen != self.gen or self.core is None:
            return                    # the daemon that asked is gone
        if self.eni_limiter is not None:
            self.eni_limiter.settle(cmd, outcome)
        if isinstance(outcome, CloudError):
            self.failures.record(cmd, outcome, self.env.now)
        else:
            self._account(cmd, outcome)
        feed(self.core, cmd, outcome, self.env.now)
        self.pump()

    def _account(self, cmd: Command, outcome: Any) -> None:
        """Keep the per-vSwitch count of addresses on this node's managed ENIs."""
        held = self.run.col.held
        eni_ips = self.eni_ips
        if isinstance(cmd, CreateEni) and isinstance(outcome, Eni):
            eni_ips[outcome.eni_id] = (outcome.vswitch_id, len(outcome.private_ips))
            held[outcome.vswitch_id] = held.get(outcome.vswitch_id, 0) + len(outcome.private_ips)
        elif isinstance(cmd, AssignIps) and cmd.eni_id in eni_ips:
            vsw, n = eni_ips[cmd.eni_id]
            eni_ips[cmd.eni_id] = (vsw, n + len(outcome))
            held[vsw] += len(outcome)
        elif isinstance(cmd, UnassignIps) and cmd.eni_id in eni_ips:
            vsw, n = eni_ips[cmd.eni_id]
            eni_ips[cmd.eni_id] = (vsw, n - len(cmd.ips))
            held[vsw] -= len(cmd.ips)
        elif isinstance(cmd, DeleteEni) and cmd.eni_id in eni_ips:
            vsw, n = eni_ips.pop(cmd.eni_id)
            held[vsw] -= n

    def stuck(self, available: dict[str, int]) -> bool:
        """No vSwitch can help this node now: no idle address, no free ENI slot, and every
        ENI with room sits on a vSwitch with no address left (``available``: per vSwitch).
        Its waiting pods wait until a pod on it goes away (docs/ipam.md, known gaps)."""
        core = self.core
        if core is None or not self.up:
            return False
        st = core.stats()
        if st.idle or st.in_flight or st.eni_count < self.settings.max_enis:
            return False
        per = self.settings.ips_per_eni
        return not any(len(e.ips) < per and available.get(e.vswitch_id, 0) > 0
                       for e in core.enis())

    @property
    def settled(self) -> bool:
        return self.up and self.inflight == 0
