"""IpamCore: the sans-IO pool state machine. Events and the time in, commands and notices out.

See docs/ipam.md for the contract. Nothing here does I/O, reads a clock, sleeps or awaits. The
pool serves pods and wires the parts each kept in a module of its own: ENI transitions
(lifecycle.py), the wake-up clock (schedule.py), failed calls and their deadlines (failures.py),
what to ask the cloud for (supply.py), the vSwitch cache (vswitches.py), sticky reservations
(reservations.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TypeVar

from terway.cloud.api import Eni, VSwitch
from terway.cloud.errors import CloudError
from terway.ipam import selection, views
from terway.ipam.audit import IpAudit, Strikes, audit
from terway.ipam.commands import (
    AssignIps,
    AttachEni,
    Command,
    CreateEni,
    DeleteEni,
    DescribeVSwitches,
    DetachEni,
    Inflight,
    UnassignIps,
)
from terway.ipam.failures import Failures
from terway.ipam.lifecycle import EniEvent, transition
from terway.ipam.model import CreatingEni, EniSlot, EniState, IpSlot, PendingRequest, PoolCounts
from terway.ipam.notices import Allocation, IpReady, Notice, Pending
from terway.ipam.policy import PoolPlan, PoolPolicy, PoolState, hooks_of, make_policy
from terway.ipam.reservations import Reservations
from terway.ipam.schedule import Schedule
from terway.ipam.selfcheck import check_counts, check_reservations
from terway.ipam.settings import IpamSettings
from terway.ipam.supply import Supply
from terway.ipam.views import EniView, MappingRow, PoolStats, RestoreReport
from terway.ipam.vswitches import VSwitchCache

_E = TypeVar("_E", AttachEni, AssignIps, UnassignIps, DetachEni)
_ENI_CMDS = (AssignIps, AttachEni, DetachEni, DeleteEni, UnassignIps)


class IpamCore:
    """One node's ENI/IP pool. Deterministic for given inputs, ``id_prefix`` and ``rng`` seed.

    Also answers the schedule's questions (``schedule.Agenda``: ``has_pending`` to
    ``plan_is_zero``); drivers need not call those.
    """

    def __init__(
        self,
        settings: IpamSettings,
        *,
        id_prefix: str,
        rng: random.Random | None = None,
        policy: PoolPolicy | None = None,
    ) -> None:
        if not id_prefix:
            raise ValueError("id_prefix: must be a non-empty string")
        self._s = settings
        self._rng = rng if rng is not None else random.Random(0)
        self._policy = policy if policy is not None else make_policy(settings)
        self._custom_policy = policy is not None
        self._observer, self._cooldown, recheck = hooks_of(self._policy)  # see hooks_of
        self._enis: dict[str, EniSlot] = {}
        self._totals = PoolCounts()      # running totals over self._enis (see model.py)
        self._creating: dict[str, CreatingEni] = {}
        self._inflight = Inflight(id_prefix)
        self._pending: dict[str, PendingRequest] = {}
        self._owners: dict[str, Allocation] = {}     # pod key -> its allocation (built once)
        self._res = Reservations(self._enis)
        self._vsw = VSwitchCache()
        self._notices: list[Notice] = []
        self._fail = Failures(settings, self._vsw, self._notices.append)
        self._strikes = Strikes()        # audit_ips' memory per ENI
        self._clock = Schedule(settings, self._policy, self._rng)
        self._supply = Supply(settings, self._enis, self._creating, self._pending, self._inflight,
                              self._fail, self._vsw, self._rng, self._state, recheck)

    # ------------------------------------------------------------------ inputs: pods

    def request_ip(self, pod_key: str, now: float, sticky: bool = False) -> Allocation | Pending:
        """Serve from the pool now, or queue the request (an ``IpReady`` notice follows)."""
        _check_key(pod_key)
        self._clock.advance(now, pod=True)
        self._supply.last_activity = now
        if pod_key in self._owners:
            return self._allocation(pod_key)
        if pod_key in self._pending:
            return Pending(pod_key, self.pending_reason(pod_key))
        if self._observer is not None and self._observer.on_request(now):
            self._clock.review_now(now)      # the policy asked for a pool sync at once
        if self._take_reserved(pod_key, sticky):
            return self._allocation(pod_key)
        if not self._pending and self._give_idle(pod_key, sticky):
            return self._allocation(pod_key)
        self._pending[pod_key] = PendingRequest(now, sticky)
        return Pending(pod_key, self.pending_reason(pod_key))

    def release_ip(self, pod_key: str, now: float) -> Allocation | None:
        """The pod is gone. Sticky allocations stay reserved for the key for ``sticky_ttl``."""
        _check_key(pod_key)
        self._clock.advance(now, pod=True)
        if self._pending.pop(pod_key, None) is not None or pod_key not in self._owners:
            return None
        if self._observer is not None:
            self._observer.on_release(now)
        alloc = self._allocation(pod_key)
        del self._owners[pod_key]
        eni = self._enis[alloc.eni_id]
        slot = eni.ips[alloc.ip]
        if slot.gone:                    # vanished from the cloud while held: not handed out
            eni.pop_ip(alloc.ip)
            return alloc
        slot.owner = None
        slot.idle_since = now
        if self._cooldown:
            slot.cool_until = now + self._cooldown
        if slot.sticky and self._s.sticky_ttl > 0:
            self._res.hold(pod_key, eni.eni_id, slot, now + self._s.sticky_ttl)
        slot.sticky = False
        self._serve_pending()
        return alloc

    def cancel_request(self, pod_key: str, now: float) -> bool:
        _check_key(pod_key)
        self._clock.advance(now, pod=True)
        return self._pending.pop(pod_key, None) is not None

    # ------------------------------------------------------------------ inputs: time

    def tick(self, now: float) -> list[Command]:
        """Everything due at ``now``: expiries, retries, batches, pool sync, idle reclaim."""
        self._clock.advance(now, pod=True)
        if self._clock.nothing_due(self, now):
            return []                    # the common case (a pump after a result): no work
        self._clock.struct += 1
        self._fail.expire(now)
        self._res.expire(now)
        self._serve_pending()
        cmds = [*self._supply.refresh_vswitches(now), *self._supply.continue_enis(now)]
        plan = self._policy.plan(self._state(), now) if self._clock.take_sync(now) else PoolPlan()
        cmds += self._supply.grow(max(self._supply.shortage(now), plan.ips_to_add), now)
        cmds += self._supply.release(plan.ips_to_release + self._supply.reclaim_budget(now), now)
        return cmds

    def next_wakeup(self) -> float | None:
        """The earliest future time at which ``tick`` has something to do.

        A pool sync that would do nothing (no pending request, nothing due, the policy's plan
        is zero) is left out, and so are the quiet syncs after it, until the next other
        deadline: they are accounted for (the sync schedule advanced as if ticked at each) when
        the next input or tick arrives. So re-read this after every input, as the driver loop
        in docs/ipam.md does. An input at the very time of a left-out sync comes before it: the
        sync is then due, and this returns that time (= now) so the driver ticks.
        """
        return self._clock.next_wakeup(self)

    # ------------------------------------------------------------------ the schedule's questions

    def has_pending(self) -> bool:
        return bool(self._pending)

    def reservation_due(self, at: float) -> bool:
        return self._res.due_by(at)

    def structure_quiet(self, at: float) -> bool:
        """No block, backoff or vSwitch refresh due by ``at``, no ENI step ready to go: the
        part of "nothing due" that pod inputs cannot change."""
        supply = self._supply
        return not (self._fail.due_by(at) or supply.refresh_due(at) or supply.step_ready(at))

    def structure_deadline(self, now: float) -> float:
        """The first deadline after ``now`` of blocks, backoffs, idle reclaim, vSwitch cache."""
        best = min(self._fail.first_after(now),
                   self._vsw.expiry_after(now, self._supply.refresh_ttl()))
        t = self._supply.next_reclaim
        return t if t is not None and now < t < best else best

    def pod_deadline(self, now: float) -> float:
        if not (self._pending or self._res.heap):
            return math.inf               # the common case, without a call
        best = math.inf
        if self._pending:
            window = self._s.batch_window
            for r in self._pending.values():   # oldest first: the first future window is min
                if r.since + window > now:
                    best = r.since + window
                    break
            if self._cooldown:            # a waiting pod is served when an address cools
                best = min(best, selection.next_cooled(self._enis.values(), now))
        return min(best, self._res.next_expiry(now))

    def counts(self) -> tuple[int, int, int, int, int, int, int]:
        """(total, used, idle, reserved, in_flight, pending, eni_count) from the running
        per-ENI counts: no slot scan."""
        p = self._totals
        in_flight = p.assigning + p.attaching
        if self._creating:
            for c in self._creating.values():
                in_flight += c.ip_count
        return (p.total, p.used, p.idle, p.reserved, in_flight, len(self._pending),
                len(self._enis) + len(self._creating))

    def plan_is_zero(self, at: float) -> bool:
        plan = self._policy.plan(self._state(), at)
        return plan.ips_to_add <= 0 and plan.ips_to_release <= 0

    def self_check(self) -> None:
        """Debug aid for tests: the running counters and the reservation heap must agree with
        a full rescan of every slot. Raises AssertionError naming the first difference."""
        check_counts(self._enis.values(), self._totals)
        check_reservations(self._enis.values(), self._res.deadlines())

    # ------------------------------------------------------------------ inputs: results

    def on_eni_created(self, cmd_id: str, eni: Eni, now: float) -> None:
        self._clock.advance(now, pod=False)
        if self._inflight.finish(cmd_id, CreateEni) is None:
            return
        self._creating.pop(cmd_id, None)
        self._fail.backoff.clear("create")
        self._adopt(eni, EniState.ATTACHING, now)

    def on_eni_attached(self, cmd_id: str, now: float) -> None:
        eni = self._finish_eni(cmd_id, AttachEni, now)[1]
        if eni is None:
            return
        eni.busy_cmd, eni.changed_at = None, now
        transition(eni, EniEvent.ATTACHED)
        self._fail.backoff.clear(f"eni:{eni.eni_id}")
        self._fail.granted()
        self._serve_pending()

    def on_ips_assigned(self, cmd_id: str, ips: Sequence[str], now: float) -> None:
        eni = self._finish_eni(cmd_id, AssignIps, now)[1]
        if eni is None:
            return
        eni.busy_cmd, eni.assigning, eni.changed_at = None, 0, now
        for ip in ips:
            eni.add_ip(IpSlot(ip, idle_since=now)).gone = False   # the cloud has it (again)
        self._fail.backoff.clear(f"eni:{eni.eni_id}")
        self._fail.granted()
        self._serve_pending()

    def on_ips_unassigned(self, cmd_id: str, now: float) -> None:
        cmd, eni = self._finish_eni(cmd_id, UnassignIps, now)
        if cmd is None or eni is None:
            return
        eni.busy_cmd, eni.changed_at = None, now
        for ip in cmd.ips:
            eni.pop_ip(ip)

    def on_eni_detached(self, cmd_id: str, now: float) -> None:
        eni = self._finish_eni(cmd_id, DetachEni, now)[1]
        if eni is not None:
            eni.busy_cmd, eni.error = None, ""
            transition(eni, EniEvent.DETACHED)

    def on_eni_deleted(self, cmd_id: str, now: float) -> None:
        self._clock.advance(now, pod=False)
        cmd = self._inflight.finish(cmd_id, DeleteEni)
        if cmd is not None:
            self._drop_eni(cmd.eni_id)

    def on_vswitches(
        self, vswitches: Sequence[VSwitch], now: float, cmd_id: str | None = None
    ) -> None:
        """Fresh vSwitch counts (solicited or not). Addresses back → blocks on it lift."""
        self._clock.advance(now, pod=False)
        if cmd_id is not None:
            self._inflight.finish(cmd_id, DescribeVSwitches)
            self._fail.backoff.clear("describe")
        self._vsw.fetched_at = now
        blocked = self._fail.memory.any_blocked()    # nothing to lift otherwise (the norm)
        for v in vswitches:
            self._vsw.learn(v, self._s.max_ips_per_call)
            if blocked and v.available_ip_count > 0:
                on_it = [e.eni_id for e in self._enis.values() if e.vswitch_id == v.vswitch_id]
                self._fail.addresses_back(v, on_it)
        self._fail.update_condition()

    def on_config_changed(self, settings: IpamSettings, now: float) -> None:
        """New settings take effect at once; new vSwitches are described on the next tick."""
        self._clock.advance(now, pod=False)
        added = [v for v in settings.vswitch_ids if v not in self._s.vswitch_ids]
        self._s = self._fail.s = self._supply.s = settings
        if not self._custom_policy:
            self._policy = make_policy(settings)   # an adaptive policy starts learning afresh
            self._observer, self._cooldown, self._supply.recheck = hooks_of(self._policy)
        self._clock.configure(settings, self._policy)
        if added:
            self._vsw.fetched_at = None  # refresh counts now
            self._fail.log("info", f"vSwitches added: {', '.join(added)}")

    def on_command_failed(self, cmd_id: str, error: CloudError, now: float) -> None:
        self._clock.advance(now, pod=False)
        cmd = self._inflight.by_id.pop(cmd_id, None)
        if cmd is None:
            return
        if isinstance(cmd, CreateEni):
            self._creating.pop(cmd_id, None)
        eni = self._enis.get(cmd.eni_id) if isinstance(cmd, _ENI_CMDS) else None
        if self._fail.failed(cmd, eni, error, now) and eni is not None:
            self._drop_eni(eni.eni_id)
        self._fail.update_condition()

    # ------------------------------------------------------------------ restart and ENI sync

    def restore(
        self, enis: Sequence[Eni], owners: Mapping[str, str], now: float
    ) -> RestoreReport:
        """Rebuild from cloud truth (attached secondary ENIs) and store ownership ({ip: pod})."""
        self._clock.advance(now, pod=False)
        for eni in enis:
            if eni.eni_type != "Primary":
                self._adopt(eni, EniState.READY, now)
        where = {ip: e for e in self._enis.values() for ip in e.ips}
        dropped: dict[str, str] = {}
        for ip, key in sorted(owners.items(), key=lambda kv: (kv[1], kv[0])):
            eni_slot = where.get(ip)
            if eni_slot is None or key in self._owners:
                dropped[key] = ip
                continue
            eni_slot.ips[ip].owner = key
            self._owners[key] = views.allocation(key, eni_slot, ip, self._s.exclusive)
        freed = sorted(ip for ip, e in where.items() if e.ips[ip].owner is None)
        return RestoreReport(freed=tuple(freed), dropped=dropped)

    def audit_ips(self, observed: Mapping[str, Sequence[str]], read_at: float,
                  now: float) -> IpAudit:
        """Compare the pool with each ENI's addresses as the node's metadata listed them
        (``observed``: ENI id → IPs, read from ``read_at`` on): upstream's per-ENI sync.

        An address missing from two audits in a row vanished from the cloud: it is never
        handed out again (dropped now when idle or reserved, at its release when a pod holds
        it). An address listed in two audits in a row that the pool does not know is an orphan:
        reported at every audit, never handed out, never released (a restart takes it in like
        every address on a managed ENI). Not judged: exclusive mode (upstream has no such sync
        there), ENIs not ready, with a command in flight or changed since ``read_at``, and lists
        without the ENI's primary address (an ENI always has it: the answer is not to be
        trusted).
        """
        self._clock.advance(now, pod=False)
        if self._s.exclusive:
            return IpAudit()
        return audit(self._enis, observed, read_at, self._strikes, self._res.forget)

    # ------------------------------------------------------------------ introspection

    def drain_notices(self) -> list[Notice]:
        out = self._notices[:]
        self._notices.clear()
        return out

    def allocation(self, pod_key: str) -> Allocation | None:
        return self._allocation(pod_key) if pod_key in self._owners else None

    def owner_keys(self) -> list[str]:
        """Every pod key that holds an address now."""
        return list(self._owners)

    def pending_keys(self) -> list[str]:
        return list(self._pending)

    def condition(self) -> bool:
        """SufficientIP: False while an exhaustion block is in force."""
        return self._fail.sufficient

    def pending_reason(self, pod_key: str) -> str:
        err = self._fail.memory.last_error()
        if err is not None:
            return f"error allocate ip: {err.describe()}"
        if self._eni_count() >= self._s.max_enis and not self._has_room():
            return f"error allocate ip: node capacity reached ({self._s.capacity} addresses)"
        return "waiting for addresses from the cloud"

    def stats(self) -> PoolStats:
        st = self._state()
        gone = views.disposed(self._enis.values())
        return PoolStats(st.total, st.used, st.idle, st.reserved, gone, st.in_flight, st.pending,
                         st.eni_count)

    def enis(self) -> list[EniView]:
        return views.eni_views(self._enis.values(), self._fail.memory.enis)

    def mapping(self) -> list[MappingRow]:
        return views.mapping_rows(self._enis.values())

    # ------------------------------------------------------------------ internals: serving

    def _allocation(self, pod_key: str) -> Allocation:
        a = self._owners[pod_key]   # built once; again only if the exclusive flag changed since
        if a.exclusive != self._s.exclusive:
            a = self._owners[pod_key] = views.allocation(pod_key, self._enis[a.eni_id], a.ip,
                                                         self._s.exclusive)
        return a

    def _own(self, pod_key: str, eni: EniSlot, ip: str, sticky: bool) -> None:
        slot = eni.ips[ip]
        slot.owner, slot.sticky = pod_key, sticky
        self._owners[pod_key] = views.allocation(pod_key, eni, ip, self._s.exclusive)

    def _take_reserved(self, pod_key: str, sticky: bool) -> bool:
        held = self._res.take(pod_key)
        if held is None or held[0] not in self._enis or held[1] not in self._enis[held[0]].ips:
            return False
        eni = self._enis[held[0]]
        eni.ips[held[1]].reserved_for = None
        self._own(pod_key, eni, held[1], sticky)
        return True

    def _give_idle(self, pod_key: str, sticky: bool) -> bool:
        cooled_by = self._clock.now if self._cooldown else None
        pick = selection.pick_idle(self._enis.values(), self._s.eni_selection, cooled_by)
        if pick is None:
            return False
        self._own(pod_key, pick[0], pick[1], sticky)
        return True

    def _serve_pending(self) -> None:
        if not self._pending:
            return
        served = False
        now = self._clock.now
        for key, req in list(self._pending.items()):
            if not self._give_idle(key, req.sticky):
                break
            del self._pending[key]
            if self._observer is not None:
                self._observer.on_served(now - req.since, now)
            self._notices.append(IpReady(key, self._allocation(key)))
            served = True
        if served:
            self._fail.granted()

    # ------------------------------------------------------------------ internals: sizing

    def _state(self) -> PoolState:
        total, used, idle, reserved, in_flight, pending, eni_count = self.counts()
        return PoolState(
            total=total, used=used, idle=idle, reserved=reserved, in_flight=in_flight,
            pending=pending, capacity=self._s.capacity, units_per_eni=self._s.units_per_eni,
            eni_count=eni_count, vswitch_free=self._vsw.free(self._s.vswitch_ids),
        )

    def _eni_count(self) -> int:
        return len(self._enis) + len(self._creating)

    def _has_room(self) -> bool:
        return not self._s.exclusive and any(
            e.ready and len(e.ips) + e.assigning < self._s.ips_per_eni for e in self._enis.values()
        )

    # ------------------------------------------------------------------ internals: ENIs, commands

    def _adopt(self, eni: Eni, state: EniState, now: float) -> None:
        """Manage ``eni`` (just created, or found at a restart) in ``state``."""
        slot = EniSlot(eni.eni_id, eni.mac, eni.vswitch_id, eni.primary_ip, state)
        slot.changed_at = now
        for ip in (eni.primary_ip,) if self._s.exclusive else eni.private_ips:
            slot.add_ip(IpSlot(ip, idle_since=now))
        old = self._enis.get(slot.eni_id)
        if old is not None:
            old.detach_pool()
        self._enis[slot.eni_id] = slot
        slot.attach_pool(self._totals)

    def _drop_eni(self, eni_id: str) -> None:
        eni = self._enis.pop(eni_id, None)
        if eni is None:
            return
        eni.detach_pool()
        for s in eni.ips.values():
            if s.owner is not None:
                self._owners.pop(s.owner, None)
            if s.reserved_for is not None:
                self._res.forget(s.reserved_for)
        self._fail.memory.enis.pop(eni_id, None)
        self._fail.backoff.clear(f"eni:{eni_id}")
        self._strikes.forget(eni_id)

    def _finish_eni(self, cmd_id: str, kind: type[_E],
                    now: float) -> tuple[_E | None, EniSlot | None]:
        """A result about an ENI: the clock moved on; the command and its ENI, if known."""
        self._clock.advance(now, pod=False)
        cmd = self._inflight.finish(cmd_id, kind)
        return cmd, (self._enis.get(cmd.eni_id) if cmd is not None else None)


def _check_key(pod_key: str) -> None:
    if not isinstance(pod_key, str) or not pod_key:
        raise ValueError(f"pod_key: must be a non-empty string, got {pod_key!r}")
