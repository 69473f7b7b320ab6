"""IpamCore: the sans-IO pool state machine. Events and the time in, commands and notices out.

See docs/ipam.md for the contract. Nothing here does I/O, reads a clock, sleeps or awaits.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from terway.cloud.api import Eni, VSwitch
from terway.cloud.errors import CloudError, ErrorClass
from terway.ipam import selection
from terway.ipam.audit import IpAudit, Strikes
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
from terway.ipam.exhaustion import Block, ExhaustionMemory
from terway.ipam.model import CreatingEni, EniSlot, EniState, IpSlot, PendingRequest, PoolCounts
from terway.ipam.notices import (
    Allocation,
    ConditionChanged,
    Exhausted,
    IpReady,
    LogLine,
    Notice,
    Pending,
)
from terway.ipam.policy import DemandObserver, PoolPlan, PoolPolicy, PoolState, make_policy
from terway.ipam.settings import IpamSettings
from terway.ipam.views import EniView, MappingRow, PoolStats, RestoreReport

CONDITION = "SufficientIP"
# (policy, capacity, units per ENI) -> {pool counts: the policy's plan is empty}; _plan_is_zero
_ZERO_PLANS: dict[tuple[object, int, int], dict[tuple[int, ...], bool]] = {}
_READY = EniState.READY
_ATTACHING = EniState.ATTACHING
_C = TypeVar("_C", CreateEni, AttachEni, AssignIps, UnassignIps, DetachEni, DeleteEni,
              DescribeVSwitches)


@dataclass
class _Backoff:
    until: float
    failures: int


ENI_LIMIT_CODE = "EniPerInstanceLimitExceeded"  # blocks creation eni_limit_block, not 10 min

def _observer(policy: PoolPolicy) -> DemandObserver | None:
    """The policy, when it wants the demand hooks (``DemandObserver``)."""
    return policy if callable(getattr(policy, "on_request", None)) else None  # type: ignore[return-value]


class IpamCore:
    """One node's ENI/IP pool. Deterministic for given inputs, ``id_prefix`` and ``rng`` seed."""

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
        self._prefix = id_prefix
        self._seq = 0
        self._rng = rng if rng is not None else random.Random(0)
        self._policy = policy if policy is not None else make_policy(settings)
        self._custom_policy = policy is not None
        self._observer = _observer(self._policy)
        self._now = 0.0
        self._enis: dict[str, EniSlot] = {}
        self._totals = PoolCounts()      # running totals over self._enis (see model.py)
        self._creating: dict[str, CreatingEni] = {}
        self._inflight: dict[str, Command] = {}
        self._pending: dict[str, PendingRequest] = {}
        self._owners: dict[str, tuple[str, str]] = {}        # pod key -> (eni id, ip)
        self._reserved: dict[str, tuple[str, str]] = {}      # sticky pod key -> (eni id, ip)
        # reservation deadlines (until, seq, slot, key); stale entries are skipped when popped
        self._res_heap: list[tuple[float, int, IpSlot, str]] = []
        self._res_seq = 0
        self._vsw_available: dict[str, int | None] = {}
        # largest batch a nearly dry vSwitch is known to take (calls are all-or-nothing)
        self._batch_cap: dict[str, int] = {}
        self._vsw_fetched_at: float | None = None
        self._memory = ExhaustionMemory()
        self._strikes = Strikes()        # audit_ips' memory per ENI
        self._backoff: dict[str, _Backoff] = {}
        self._notices: list[Notice] = []
        self._sufficient = True
        self._next_sync: float | None = None
        self._last_activity = 0.0
        self._next_reclaim: float | None = None
        # quiet pool syncs left out of next_wakeup(): (state version, first other deadline)
        self._ver = 0
        self._skip: tuple[int, float] | None = None
        self._sync_owed = False          # a left-out sync fell due exactly at _now, not yet run
        self._quiet_ok = self._quiet_syncs_possible()
        # Structure version: bumped by every input but the pod ones (request/release/cancel),
        # which touch no block, backoff, command, ENI state or vSwitch cache. The parts of the
        # wake-up that depend only on those are memoised per version (see next_wakeup).
        self._struct = 0
        self._other_memo: tuple[int, float] = (-1, 0.0)          # (version, deadline)
        self._quiet_memo: tuple[int, float, bool] = (-1, 0.0, False)  # (version, at, quiet)

    # ------------------------------------------------------------------ inputs: pods

    def request_ip(self, pod_key: str, now: float, sticky: bool = False) -> Allocation | Pending:
        """Serve from the pool now, or queue the request (an ``IpReady`` notice follows)."""
        _check_key(pod_key)
        self._advance(now, pod=True)
        self._last_activity = now
        if pod_key in self._owners:
            return self._allocation(pod_key)
        if pod_key in self._pending:
            return Pending(pod_key, self.pending_reason(pod_key))
        if self._observer is not None:
            self._observer.on_request(now)
        if self._take_reserved(pod_key, sticky):
            return self._allocation(pod_key)
        if not self._pending and self._give_idle(pod_key, sticky):
            return self._allocation(pod_key)
        self._pending[pod_key] = PendingRequest(now, sticky)
        return Pending(pod_key, self.pending_reason(pod_key))

    def release_ip(self, pod_key: str, now: float) -> Allocation | None:
        """The pod is gone. Sticky allocations stay reserved for the key for ``sticky_ttl``."""
        _check_key(pod_key)
        self._advance(now, pod=True)
        if self._pending.pop(pod_key, None) is not None:
            return None
        if pod_key not in self._owners:
            return None
        if self._observer is not None:
            self._observer.on_release(now)
        alloc = self._allocation(pod_key)
        eni_id, ip = self._owners.pop(pod_key)
        eni = self._enis[eni_id]
        slot = eni.ips[ip]
        if slot.gone:                    # vanished from the cloud while held: not handed out
            eni.pop_ip(ip)
            return alloc
        slot.owner = None
        slot.idle_since = now
        if slot.sticky and self._s.sticky_ttl > 0:
            slot.reserved_for, slot.reserved_until = pod_key, now + self._s.sticky_ttl
            self._reserved[pod_key] = (eni_id, ip)
            self._res_seq += 1
            heapq.heappush(self._res_heap, (slot.reserved_until, self._res_seq, slot, pod_key))
        slot.sticky = False
        self._serve_pending()
        return alloc

    def cancel_request(self, pod_key: str, now: float) -> bool:
        _check_key(pod_key)
        self._advance(now, pod=True)
        return self._pending.pop(pod_key, None) is not None

    # ------------------------------------------------------------------ inputs: time

    def tick(self, now: float) -> list[Command]:
        """Everything due at ``now``: expiries, retries, batches, pool sync, idle reclaim."""
        self._advance(now, pod=True)
        if self._nothing_due(now):
            return []                    # the common case (a pump after a result): no work
        self._struct += 1
        self._expire(now)
        self._serve_pending()
        cmds: list[Command] = []
        cmds += self._refresh_vswitches(now)
        cmds += self._continue_enis(now)
        plan = self._sync_plan(now)
        add = max(self._pending_shortage(now), plan.ips_to_add)
        cmds += self._grow(add, now)
        cmds += self._release(plan.ips_to_release + self._reclaim_budget(now), now)
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
        now = self._now
        other = self._next_other_deadline()
        ns = self._next_sync
        self._skip = None
        if ns is None or ns >= other or ns < now or (ns == now and not self._sync_owed):
            return None if other == math.inf else other
        if self._quiet_ok and not self._pending and self._sync_would_be_quiet(ns):
            self._skip = (self._ver, other)
            return None if other == math.inf else other
        return ns

    def _sync_would_be_quiet(self, at: float) -> bool:
        """tick(at) would only move the sync schedule on, if nothing else happens first.

        Conservative: any pending request, idle reclaim, anything due by ``at``, an ENI step
        ready to go or a stale vSwitch cache counts as work; the policy must be time-invariant
        (``plan`` ignores ``now``) so that the same state gives the same (empty) plan later.
        The caller has checked ``_quiet_ok`` and that nothing is pending.
        """
        heap = self._res_heap
        if heap and heap[0][0] <= at:
            return False
        memo = self._quiet_memo
        if memo[0] == self._struct and memo[1] == at:
            quiet = memo[2]
        else:
            quiet = self._structure_quiet(at)
            self._quiet_memo = (self._struct, at, quiet)
        return quiet and self._plan_is_zero(at)

    def _structure_quiet(self, at: float) -> bool:
        """The part of _sync_would_be_quiet that pod inputs cannot change: no block, backoff
        or vSwitch refresh due by ``at``, no ENI step ready to go."""
        mem = self._memory
        if (mem.enis or mem.vswitches or mem.create) and mem.earliest() <= at:
            return False
        if self._backoff:
            for b in self._backoff.values():
                if b.until <= at:
                    return False
        fetched = self._vsw_fetched_at
        if (fetched is None or at >= fetched + self._s.vswitch_cache_ttl) and self._refresh_due(at):
            return False
        for e in self._enis.values():
            if (e.state is not _READY and e.busy_cmd is None
                    and not self._backing_off(f"eni:{e.eni_id}", at)):
                return False
        return True

    def _nothing_due(self, now: float) -> bool:
        """tick(now) would change nothing: no pending request, no expiry or retry due, no
        ENI step ready to go, no vSwitch refresh, no pool sync, no idle reclaim."""
        if self._pending or self._s.idle_reclaim_after is not None:
            return False
        ns = self._next_sync
        if ns is None or now >= ns:
            return False
        mem = self._memory
        if (mem.enis or mem.vswitches or mem.create) and mem.earliest() <= now:
            return False
        if self._backoff:
            for b in self._backoff.values():
                if b.until <= now:
                    return False
        heap = self._res_heap
        if heap and heap[0][0] <= now:
            return False
        fetched = self._vsw_fetched_at
        if (fetched is None or now >= fetched + self._s.vswitch_cache_ttl) and \
                self._refresh_due(now):
            return False
        for e in self._enis.values():
            if (e.state is not _READY and e.busy_cmd is None
                    and not self._backing_off(f"eni:{e.eni_id}", now)):
                return False
        return True

    def _quiet_syncs_possible(self) -> bool:
        """Syncs can be left out at all: a positive period, no idle reclaim (its own clock),
        a hashable policy whose plan ignores the time. Also sets the plan memo's key."""
        plan_key = (self._policy, self._s.capacity, self._s.units_per_eni)
        self._zero_memo: dict[tuple[int, ...], bool] = {}
        try:
            self._zero_memo = _ZERO_PLANS.setdefault(plan_key, self._zero_memo)
        except TypeError:            # an unhashable custom policy: no memo shared, no skipping
            return False
        return (self._s.sync_period > 0 and self._s.idle_reclaim_after is None
                and bool(getattr(self._policy, "time_invariant", False)))

    def _catch_up_syncs(self, now: float) -> None:
        """Move the sync schedule past the quiet syncs next_wakeup() left out (those before
        ``now``; one at ``now`` itself stays due: the input or tick at ``now`` comes first)."""
        skip = self._skip
        if skip is None:
            return
        self._skip = None
        ver, limit = skip
        ns = self._next_sync
        if ver != self._ver or ns is None:
            return
        while ns < limit and ns < now:
            ns += self._sync_interval()  # what tick(ns) would have set, the same RNG draw
        self._next_sync = ns
        self._sync_owed = ns == now

    def _next_other_deadline(self) -> float:
        """The earliest future deadline other than the pool sync (math.inf: none)."""
        now = self._now
        memo = self._other_memo
        if memo[0] == self._struct and memo[1] > now:
            best = memo[1]   # still the first of those deadlines after now (all were > it)
        else:
            best = self._next_structure_deadline(now)
            self._other_memo = (self._struct, best)
        if self._pending:
            window = self._s.batch_window
            for r in self._pending.values():   # oldest first: the first future window is min
                t = r.since + window
                if t > now:
                    best = min(best, t)
                    break
        if self._res_heap:
            best = min(best, self._next_reservation_expiry())
        return best

    def _next_structure_deadline(self, now: float) -> float:
        """The first deadline after ``now`` of blocks, backoffs, idle reclaim and the vSwitch
        cache: what pod inputs cannot change."""
        best = math.inf
        if self._memory.any_blocked():
            for t in self._memory.deadlines():
                if now < t < best:
                    best = t
        if self._backoff:
            for b in self._backoff.values():
                if now < b.until < best:
                    best = b.until
        t2 = self._next_reclaim
        if t2 is not None and now < t2 < best:
            best = t2
        if self._vsw_fetched_at is not None and self._s.vswitch_cache_ttl > 0:
            t = self._vsw_fetched_at + self._s.vswitch_cache_ttl
            if now < t < best:
                best = t
        return best

    def self_check(self) -> None:
        """Debug aid for tests: the running counters and the reservation heap must agree with
        a full rescan of every slot. Raises AssertionError naming the first difference."""
        for e in self._enis.values():
            counted = (e.n_used, e.n_reserved, e.n_idle)
            scanned = e.recount()
            if counted != scanned:
                raise AssertionError(f"{e.eni_id}: counters (used, reserved, idle) {counted} "
                                     f"!= rescan {scanned}")
            for s in e.ips.values():
                if s.eni is not e:
                    raise AssertionError(f"{e.eni_id}: slot {s.ip} not linked to its ENI")
        want = PoolCounts()
        for e in self._enis.values():
            used, reserved, idle = e.recount()
            if e.state is _READY:
                want.total += len(e.ips)
                want.used += used
                want.idle += idle
                want.reserved += reserved
                want.assigning += e.assigning
            elif e.state is _ATTACHING:
                want.attaching += len(e.ips)
            if e.pool is not self._totals:
                raise AssertionError(f"{e.eni_id}: not attached to the core's totals")
        if want.as_tuple() != self._totals.as_tuple():
            raise AssertionError(f"pool totals {self._totals.as_tuple()} != rescan "
                                 f"{want.as_tuple()} (total, used, idle, reserved, assigning, "
                                 "attaching)")
        scanned_until = sorted(
            s.reserved_until for e in self._enis.values() for s in e.ips.values()
            if s.reserved_for is not None
        )
        live = sorted(u for u, _, s, k in self._res_heap if self._reservation_live(s, k, u))
        if scanned_until != live:
            raise AssertionError(f"reservation heap {live} != rescan {scanned_until}")

    # ------------------------------------------------------------------ inputs: results

    def on_eni_created(self, cmd_id: str, eni: Eni, now: float) -> None:
        self._advance(now)
        if self._finish(cmd_id, CreateEni) is None:
            return
        self._creating.pop(cmd_id, None)
        self._backoff.pop("create", None)
        slot = EniSlot(eni.eni_id, eni.mac, eni.vswitch_id, eni.primary_ip, EniState.ATTACHING)
        slot.changed_at = now
        ips = (eni.primary_ip,) if self._s.exclusive else eni.private_ips
        for ip in ips:
            slot.add_ip(IpSlot(ip, idle_since=now))
        self._put_eni(slot)

    def on_eni_attached(self, cmd_id: str, now: float) -> None:
        self._advance(now)
        cmd = self._finish(cmd_id, AttachEni)
        if cmd is None or cmd.eni_id not in self._enis:
            return
        eni = self._enis[cmd.eni_id]
        eni.busy_cmd, eni.state, eni.changed_at = None, EniState.READY, now
        self._backoff.pop(f"eni:{eni.eni_id}", None)
        self._granted()
        self._serve_pending()

    def on_ips_assigned(self, cmd_id: str, ips: Sequence[str], now: float) -> None:
        self._advance(now)
        cmd = self._finish(cmd_id, AssignIps)
        if cmd is None or cmd.eni_id not in self._enis:
            return
        eni = self._enis[cmd.eni_id]
        eni.busy_cmd, eni.assigning, eni.changed_at = None, 0, now
        for ip in ips:
            eni.add_ip(IpSlot(ip, idle_since=now)).gone = False   # the cloud has it (again)
        self._backoff.pop(f"eni:{eni.eni_id}", None)
        self._granted()
        self._serve_pending()

    def on_ips_unassigned(self, cmd_id: str, now: float) -> None:
        self._advance(now)
        cmd = self._finish(cmd_id, UnassignIps)
        if cmd is None or cmd.eni_id not in self._enis:
            return
        eni = self._enis[cmd.eni_id]
        eni.busy_cmd, eni.changed_at = None, now
        for ip in cmd.ips:
            eni.pop_ip(ip)

    def on_eni_detached(self, cmd_id: str, now: float) -> None:
        self._advance(now)
        cmd = self._finish(cmd_id, DetachEni)
        if cmd is not None and cmd.eni_id in self._enis:
            eni = self._enis[cmd.eni_id]
            eni.busy_cmd, eni.state, eni.error = None, EniState.DELETING, ""

    def on_eni_deleted(self, cmd_id: str, now: float) -> None:
        self._advance(now)
        cmd = self._finish(cmd_id, DeleteEni)
        if cmd is not None:
            self._drop_eni(cmd.eni_id)

    def on_vswitches(
        self, vswitches: Sequence[VSwitch], now: float, cmd_id: str | None = None
    ) -> None:
        """Fresh vSwitch counts (solicited or not). Addresses back → blocks on it lift."""
        self._advance(now)
        if cmd_id is not None:
            self._finish(cmd_id, DescribeVSwitches)
            self._backoff.pop("describe", None)
        self._vsw_fetched_at = now
        for v in vswitches:
            self._vsw_available[v.vswitch_id] = v.available_ip_count
            if v.available_ip_count >= self._s.max_ips_per_call:
                self._batch_cap.pop(v.vswitch_id, None)
            if v.available_ip_count > 0:
                on_it = [e.eni_id for e in self._enis.values() if e.vswitch_id == v.vswitch_id]
                if self._memory.lift_vswitch(v.vswitch_id, on_it):
                    self._log("info", f"vSwitch {v.vswitch_id} has {v.available_ip_count} "
                              "free addresses again; allocation resumes")
        self._update_condition()

    def on_config_changed(self, settings: IpamSettings, now: float) -> None:
        """New settings take effect at once; new vSwitches are described on the next tick."""
        self._advance(now)
        added = [v for v in settings.vswitch_ids if v not in self._s.vswitch_ids]
        self._s = settings
        if not self._custom_policy:
            self._policy = make_policy(settings)   # an adaptive policy starts learning afresh
            self._observer = _observer(self._policy)
        self._quiet_ok = self._quiet_syncs_possible()
        if added:
            self._vsw_fetched_at = None  # refresh counts now
            self._log("info", f"vSwitches added: {', '.join(added)}")

    def on_command_failed(self, cmd_id: str, error: CloudError, now: float) -> None:
        self._advance(now)
        cmd = self._inflight.pop(cmd_id, None)
        if cmd is None:
            return
        match cmd:
            case CreateEni():
                self._create_failed(cmd, error, now)
            case AssignIps():
                self._assign_failed(cmd, error, now)
            case AttachEni() | DetachEni() | DeleteEni() | UnassignIps():
                self._eni_op_failed(cmd, error, now)
            case DescribeVSwitches():
                self._back_off("describe", now)
                self._log("warning", f"describe vSwitches failed: {error.describe()}")
        self._update_condition()

    # ------------------------------------------------------------------ restart

    def restore(
        self, enis: Sequence[Eni], owners: Mapping[str, str], now: float
    ) -> RestoreReport:
        """Rebuild from cloud truth (attached secondary ENIs) and store ownership ({ip: pod})."""
        self._advance(now)
        for eni in enis:
            if eni.eni_type == "Primary":
                continue
            slot = EniSlot(eni.eni_id, eni.mac, eni.vswitch_id, eni.primary_ip, EniState.READY)
            slot.changed_at = now
            ips = (eni.primary_ip,) if self._s.exclusive else eni.private_ips
            for ip in ips:
                slot.add_ip(IpSlot(ip, idle_since=now))
            self._put_eni(slot)
        where = {ip: e for e in self._enis.values() for ip in e.ips}
        dropped: dict[str, str] = {}
        for ip, key in sorted(owners.items(), key=lambda kv: (kv[1], kv[0])):
            eni_slot = where.get(ip)
            if eni_slot is None or key in self._owners:
                dropped[key] = ip
                continue
            eni_slot.ips[ip].owner = key
            self._owners[key] = (eni_slot.eni_id, ip)
        freed = sorted(ip for ip, e in where.items() if e.ips[ip].owner is None)
        return RestoreReport(freed=tuple(freed), dropped=dropped)

    # ------------------------------------------------------------------ periodic ENI sync

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
        self._advance(now)
        if self._s.exclusive:
            return IpAudit()
        invalid: list[tuple[str, str, str]] = []
        orphans: list[tuple[str, str]] = []
        for eni_id, listed in sorted(observed.items()):
            eni = self._enis.get(eni_id)
            seen = set(listed)
            if (eni is None or not eni.ready or eni.busy_cmd is not None
                    or eni.changed_at >= read_at or eni.primary_ip not in seen):
                continue
            valid = [ip for ip, slot in eni.ips.items() if not slot.gone]
            vanished, unknown = self._strikes.judge(eni_id, valid, eni.ips, seen)
            invalid += [(eni_id, ip, self._invalidate(eni, ip)) for ip in vanished]
            orphans += [(eni_id, ip) for ip in unknown]
        return IpAudit(tuple(invalid), tuple(orphans))

    def _invalidate(self, eni: EniSlot, ip: str) -> str:
        """Take a vanished address out of service; return the pod holding it ("" if none)."""
        slot = eni.ips[ip]
        if slot.owner is not None:
            slot.gone = True             # the pod keeps it until its release, as upstream
            return slot.owner
        if slot.reserved_for is not None:
            self._reserved.pop(slot.reserved_for, None)
        eni.pop_ip(ip)
        return ""

    # ------------------------------------------------------------------ introspection

    def drain_notices(self) -> list[Notice]:
        out, self._notices = self._notices, []
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
        return self._sufficient

    def pending_reason(self, pod_key: str) -> str:
        err = self._memory.last_error()
        if err is not None:
            return f"error allocate ip: {err.describe()}"
        if self._eni_count() >= self._s.max_enis and not self._has_room():
            return f"error allocate ip: node capacity reached ({self._s.capacity} addresses)"
        return "waiting for addresses from the cloud"

    def stats(self) -> PoolStats:
        st = self._state()
        disposed = sum(
            len(e.ips) if e.state in (EniState.DETACHING, EniState.DELETING)
            else sum(1 for s in e.ips.values() if s.releasing)
            for e in self._enis.values()
        )
        return PoolStats(st.total, st.used, st.idle, st.reserved, disposed, st.in_flight,
                         st.pending, st.eni_count)

    def enis(self) -> list[EniView]:
        return [
            EniView(e.eni_id, e.mac, e.vswitch_id, e.state.value, tuple(sorted(e.ips)), e.used,
                    self._memory.enis[e.eni_id].until if e.eni_id in self._memory.enis else None)
            for e in sorted(self._enis.values(), key=lambda e: e.eni_id)
        ]

    def mapping(self) -> list[MappingRow]:
        rows = []
        for e in sorted(self._enis.values(), key=lambda e: e.eni_id):
            for ip in sorted(e.ips, key=_ip_key):
                s = e.ips[ip]
                status = "Error" if e.error else ("Normal" if s.owner else "Idle")
                rows.append(MappingRow(status, s.owner or "", e.eni_id, e.mac, ip))
        return rows

    # ------------------------------------------------------------------ internals: time

    def _advance(self, now: float, pod: bool = False) -> None:
        """Move time on. ``pod``: a pod input (or a tick that may turn out to do nothing),
        which leaves the structure version alone."""
        if now < 0 or now < self._now:
            raise ValueError(f"now: must not go backwards ({now} < {self._now})")
        if self._skip is not None:
            self._catch_up_syncs(now)
        self._ver += 1                   # every input and tick may change what is due
        if not pod:
            self._struct += 1
        self._now = now
        if self._next_sync is None:
            self._next_sync = now  # first sync at the first tick

    def _expire(self, now: float) -> None:
        if self._memory.expire(now):
            self._update_condition()
        if any(b.until <= now for b in self._backoff.values()):
            self._backoff = {k: b for k, b in self._backoff.items() if b.until > now}
        heap = self._res_heap
        while heap and heap[0][0] <= now:
            until, _, s, key = heapq.heappop(heap)
            if self._reservation_live(s, key, until):
                self._reserved.pop(key, None)
                s.reserved_for, s.idle_since = None, now

    def _reservation_live(self, s: IpSlot, key: str, until: float) -> bool:
        """A heap entry still describes a reservation on an ENI the core manages."""
        eni = s.eni
        return (eni is not None and self._enis.get(eni.eni_id) is eni
                and s.reserved_for == key and s.reserved_until == until)

    def _next_reservation_expiry(self) -> float:
        heap = self._res_heap
        while heap and not self._reservation_live(heap[0][2], heap[0][3], heap[0][0]):
            heapq.heappop(heap)
        if not heap:
            return math.inf
        if heap[0][0] > self._now:
            return heap[0][0]
        # due but not yet expired (no tick since): the next one after now, by a scan (rare)
        return min((u for u, _, s, k in heap if u > self._now and self._reservation_live(s, k, u)),
                   default=math.inf)

    def _back_off(self, key: str, now: float) -> None:
        n = self._backoff[key].failures + 1 if key in self._backoff else 1
        delay = min(self._s.retry_cap, self._s.retry_base * 2 ** (n - 1))
        self._backoff[key] = _Backoff(now + delay, n)

    def _backing_off(self, key: str, now: float) -> bool:
        b = self._backoff.get(key)
        return b is not None and b.until > now

    # ------------------------------------------------------------------ internals: serving

    def _allocation(self, pod_key: str) -> Allocation:
        eni_id, ip = self._owners[pod_key]
        e = self._enis[eni_id]
        return Allocation(pod_key, ip, eni_id, e.mac, e.vswitch_id, self._s.exclusive)

    def _own(self, pod_key: str, eni: EniSlot, ip: str, sticky: bool) -> None:
        slot = eni.ips[ip]
        slot.owner, slot.sticky = pod_key, sticky
        self._owners[pod_key] = (eni.eni_id, ip)

    def _take_reserved(self, pod_key: str, sticky: bool) -> bool:
        held = self._reserved.pop(pod_key, None)
        if held is None or held[0] not in self._enis or held[1] not in self._enis[held[0]].ips:
            return False
        eni = self._enis[held[0]]
        eni.ips[held[1]].reserved_for = None
        self._own(pod_key, eni, held[1], sticky)
        return True

    def _give_idle(self, pod_key: str, sticky: bool) -> bool:
        pick = selection.pick_idle(self._enis.values(), self._s.eni_selection)
        if pick is None:
            return False
        self._own(pod_key, pick[0], pick[1], sticky)
        return True

    def _serve_pending(self) -> None:
        if not self._pending:
            return
        served = False
        for key, req in list(self._pending.items()):
            if not self._give_idle(key, req.sticky):
                break
            del self._pending[key]
            if self._observer is not None:
                self._observer.on_served(self._now - req.since, self._now)
            self._notices.append(IpReady(key, self._allocation(key)))
            served = True
        if served and not self._sufficient:
            self._set_condition(True, "addresses are being allocated again")

    # ------------------------------------------------------------------ internals: planning

    def _counts(self) -> tuple[int, int, int, int, int, int, int]:
        """(total, used, idle, reserved, in_flight, pending, eni_count) from the running
        per-ENI counts: no slot scan."""
        p = self._totals
        in_flight = p.assigning + p.attaching
        if self._creating:
            for c in self._creating.values():
                in_flight += c.ip_count
        return (p.total, p.used, p.idle, p.reserved, in_flight, len(self._pending),
                len(self._enis) + len(self._creating))

    def _state(self) -> PoolState:
        total, used, idle, reserved, in_flight, pending, eni_count = self._counts()
        return PoolState(
            total=total,
            used=used,
            idle=idle,
            reserved=reserved,
            in_flight=in_flight,
            pending=pending,
            capacity=self._s.capacity,
            units_per_eni=self._s.units_per_eni,
            eni_count=eni_count,
            vswitch_free=self._vswitch_free(),
        )

    def _vswitch_free(self) -> int | None:
        """The cached free addresses of the node's vSwitches (None: none known yet)."""
        known = [n for v in self._s.vswitch_ids if (n := self._vsw_available.get(v)) is not None]
        return sum(known) if known else None

    def _plan_is_zero(self, at: float) -> bool:
        """The (time-invariant) policy's plan for the current counts adds and releases nothing.
        Memoised per (policy, capacity, counts), shared by every core of the process: the same
        few pool states recur all day on every node."""
        key = self._counts()
        memo = self._zero_memo
        zero = memo.get(key)
        if zero is None:
            plan = self._policy.plan(self._state(), at)
            zero = plan.ips_to_add <= 0 and plan.ips_to_release <= 0
            if len(memo) >= 65536:
                memo.clear()
            memo[key] = zero
        return zero

    def _eni_count(self) -> int:
        return len(self._enis) + len(self._creating)

    def _has_room(self) -> bool:
        return not self._s.exclusive and any(
            e.ready and len(e.ips) + e.assigning < self._s.ips_per_eni for e in self._enis.values()
        )

    def _sync_plan(self, now: float) -> PoolPlan:
        if self._next_sync is None or now < self._next_sync:
            return PoolPlan()
        self._sync_owed = False
        self._next_sync = now + self._sync_interval()
        return self._policy.plan(self._state(), now)

    def _sync_interval(self) -> float:
        """The wait until the next pool sync: upstream's ``wait.JitterUntil(syncPool, period,
        1.0, ...)`` waits ``period * (1 + U[0, 1))``, so nodes started together do not call
        the cloud in step. Drawn from the core's seeded RNG: reproducible, and a skipped quiet
        sync draws exactly what ticking it would have."""
        period, jitter = self._s.sync_period, self._s.sync_jitter
        if jitter <= 0:
            return period
        return period * (1.0 + jitter * self._rng.random())

    def _pending_shortage(self, now: float) -> int:
        """Pending requests whose batch window closed, minus what is already on its way."""
        oldest = next(iter(self._pending.values()), None)   # insertion order = time order
        if oldest is None or oldest.since + self._s.batch_window > now:
            return 0
        return max(0, len(self._pending) - self._state().in_flight)

    def _grow(self, add: int, now: float) -> list[Command]:
        if add <= 0:
            return []
        st = self._state()
        add = min(add, max(0, self._s.capacity - st.total - st.in_flight))
        cmds: list[Command] = []
        if add <= 0:
            return cmds
        if not self._s.exclusive:
            add, cmds = self._assign_more(add, now)
            add -= self._room_coming(now)  # served by later batches on ENIs already coming
        while add > 0:
            cmd = self._create_one(add, now)
            if cmd is None:
                break
            cmds.append(cmd)
            add -= self._s.units_per_eni  # the rest of a new ENI is filled by later batches
        return cmds

    def _room_coming(self, now: float) -> int:
        """Room on ENIs being created/attached or busy assigning: filled once they settle."""
        per = self._s.ips_per_eni
        room = sum(per - c.ip_count for c in self._creating.values())
        for e in self._enis.values():
            if e.state is EniState.ATTACHING or (
                e.ready and e.assigning > 0 and not self._memory.eni_blocked(e.eni_id, now)
            ):
                room += max(0, per - len(e.ips) - e.assigning)
        return room

    def _assign_more(self, add: int, now: float) -> tuple[int, list[Command]]:
        cmds: list[Command] = []
        growable = [
            e for e in self._enis.values()
            if e.ready and e.busy_cmd is None and len(e.ips) < self._s.ips_per_eni
            and not self._memory.eni_blocked(e.eni_id, now)
            and not self._backing_off(f"eni:{e.eni_id}", now)
        ]
        for eni in selection.order_enis(growable, self._s.eni_selection):
            if add <= 0:
                break
            n = min(add, self._s.ips_per_eni - len(eni.ips), self._batch_size(eni.vswitch_id))
            cmd = AssignIps(self._next_id(), eni.eni_id, n)
            eni.busy_cmd, eni.assigning = cmd.cmd_id, n
            self._inflight[cmd.cmd_id] = cmd
            cmds.append(cmd)
            add -= n
        return add, cmds

    def _create_one(self, want: int, now: float) -> CreateEni | None:
        if self._eni_count() >= self._s.max_enis or self._memory.create_blocked(now):
            return None
        if self._backing_off("create", now):
            return None
        vswitch = self._choose_vswitch(now)
        if vswitch is None:
            return None
        n = 1 if self._s.exclusive else min(want, self._s.ips_per_eni, self._batch_size(vswitch))
        cmd_id = self._next_id()
        cmd = CreateEni(cmd_id, vswitch, n - 1 if not self._s.exclusive else 0,
                        tuple(self._s.security_group_ids), dict(self._s.tags), client_token=cmd_id,
                        resource_group_id=self._s.resource_group_id)
        self._creating[cmd_id] = CreatingEni(vswitch, n)
        self._inflight[cmd_id] = cmd
        known = self._vsw_available.get(vswitch)
        if known is not None:
            self._vsw_available[vswitch] = max(0, known - n)
        return cmd

    def _batch_size(self, vswitch: str) -> int:
        return self._batch_cap.get(vswitch, self._s.max_ips_per_call)

    def _shrink_batch(self, vswitch: str, failed: int, error: CloudError) -> bool:
        """IpNotEnough on a batch of ``failed`` > 1 says only "fewer than that are left": halve
        the batch and retry at once instead of blocking, so the vSwitch's last addresses still
        reach pods (upstream blocks, leaving up to 9 of them unused). Beyond upstream, on purpose.
        """
        if error.error_class is not ErrorClass.EXHAUSTED or failed <= 1:
            return False
        self._batch_cap[vswitch] = failed // 2
        known = self._vsw_available.get(vswitch)
        self._vsw_available[vswitch] = failed - 1 if known is None else min(known, failed - 1)
        return True

    def _choose_vswitch(self, now: float) -> str | None:
        candidates = [
            v for v in self._s.vswitch_ids if not self._memory.vswitch_blocked(v, now)
        ]
        ordered = selection.order_vswitches(
            candidates, self._vsw_available, self._s.vswitch_selection, self._rng
        )
        return ordered[0] if ordered else None

    def _refresh_due(self, now: float) -> bool:
        fresh = self._vsw_fetched_at is not None and (
            now < self._vsw_fetched_at + self._s.vswitch_cache_ttl
        )
        if fresh or not self._s.vswitch_ids or self._backing_off("describe", now):
            return False
        return not any(isinstance(c, DescribeVSwitches) for c in self._inflight.values())

    def _refresh_vswitches(self, now: float) -> list[Command]:
        if not self._refresh_due(now):
            return []
        cmd = DescribeVSwitches(self._next_id(), tuple(self._s.vswitch_ids))
        self._inflight[cmd.cmd_id] = cmd
        self._vsw_fetched_at = now  # re-asked after the TTL even if the answer never comes
        return [cmd]

    def _continue_enis(self, now: float) -> list[Command]:
        """Next step for ENIs between states: attach new ones, detach/delete released ones."""
        cmds: list[Command] = []
        todo = [e for e in self._enis.values() if e.state is not _READY and e.busy_cmd is None]
        if not todo:
            return cmds
        for eni in sorted(todo, key=lambda e: e.eni_id):
            if self._backing_off(f"eni:{eni.eni_id}", now):
                continue
            cmd: Command
            if eni.state is EniState.ATTACHING:
                cmd = AttachEni(self._next_id(), eni.eni_id, self._s.instance_id)
            elif eni.state is EniState.DETACHING:
                cmd = DetachEni(self._next_id(), eni.eni_id, self._s.instance_id)
            elif eni.state is EniState.DELETING:
                cmd = DeleteEni(self._next_id(), eni.eni_id)
            else:
                continue
            eni.busy_cmd = cmd.cmd_id
            self._inflight[cmd.cmd_id] = cmd
            cmds.append(cmd)
        return cmds

    # ------------------------------------------------------------------ internals: release

    def _reclaim_budget(self, now: float) -> int:
        after = self._s.idle_reclaim_after
        if after is None:
            return 0
        if now - self._last_activity < after:
            self._next_reclaim = self._last_activity + after
            return 0
        if self._next_reclaim is not None and now < self._next_reclaim:
            return 0
        jitter = self._rng.random() * self._s.idle_reclaim_jitter  # upstream's wait.Jitter
        self._next_reclaim = now + self._s.idle_reclaim_interval * (1 + jitter)
        st = self._state()
        if st.pending:
            return 0
        return min(self._s.idle_reclaim_batch, max(0, st.idle - self._s.min_pool_size))

    def _release(self, budget: int, now: float) -> list[Command]:
        """Free ``budget`` idle units: whole ENIs when possible, else secondary IPs."""
        if budget <= 0:
            return self._continue_enis(now)
        cmds: list[Command] = []
        enis = sorted(
            (e for e in self._enis.values() if e.ready and e.busy_cmd is None),
            key=lambda e: (e.used + e.reserved, -len(e.ips), e.eni_id),
        )
        ready_count = sum(1 for e in self._enis.values() if e.ready)
        for eni in enis:
            if budget <= 0:
                break
            idle = eni.idle_ips()
            whole = len(idle) == len(eni.ips) and len(eni.ips) <= budget
            if whole and ready_count > self._s.min_enis:
                eni.state = EniState.DETACHING
                ready_count -= 1
                budget -= len(eni.ips)
                continue
            if self._s.exclusive:
                continue
            ips = [s.ip for s in idle if s.ip != eni.primary_ip][: min(budget,
                                                                      self._s.max_ips_per_call)]
            if not ips:
                continue
            cmd = UnassignIps(self._next_id(), eni.eni_id, tuple(ips))
            for ip in ips:
                eni.ips[ip].releasing = True
            eni.busy_cmd = cmd.cmd_id
            self._inflight[cmd.cmd_id] = cmd
            cmds.append(cmd)
            budget -= len(ips)
        return cmds + self._continue_enis(now)

    def _put_eni(self, slot: EniSlot) -> None:
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
                self._reserved.pop(s.reserved_for, None)
        self._memory.enis.pop(eni_id, None)
        self._backoff.pop(f"eni:{eni_id}", None)
        self._strikes.forget(eni_id)

    # ------------------------------------------------------------------ internals: failures

    def _create_failed(self, cmd: CreateEni, error: CloudError, now: float) -> None:
        self._creating.pop(cmd.cmd_id, None)
        until = now + self._s.exhaustion_block
        if self._shrink_batch(cmd.vswitch_id, cmd.secondary_ip_count + 1, error):
            self._log("warning", f"create network interface on vSwitch {cmd.vswitch_id} "
                      f"failed: {error.describe()}, retrying with "
                      f"{self._batch_size(cmd.vswitch_id)} addresses")
        elif error.error_class is ErrorClass.EXHAUSTED:
            self._memory.vswitches[cmd.vswitch_id] = Block(until, error)
            self._vsw_available[cmd.vswitch_id] = 0
            self._exhausted("vswitch", cmd.vswitch_id, until, error)
            self._log("warning", f"create network interface on vSwitch {cmd.vswitch_id} "
                      f"failed: {error.describe()}, trying another vSwitch")
        elif error.error_class is ErrorClass.QUOTA:
            if error.code == ENI_LIMIT_CODE:
                until = now + self._s.eni_limit_block
            self._memory.create = Block(until, error)
            self._exhausted("instance", self._s.instance_id, until, error)
            self._log("warning", f"create network interface failed: {error.describe()}")
        else:
            self._back_off("create", now)
            self._log("warning", f"create network interface failed: {error.describe()}, "
                      "retrying")

    def _assign_failed(self, cmd: AssignIps, error: CloudError, now: float) -> None:
        eni = self._enis.get(cmd.eni_id)
        if eni is None:
            return
        eni.busy_cmd, eni.assigning = None, 0
        self._log("warning", f"Assign private ip address failed: {error.describe()}, retrying")
        until = now + self._s.exhaustion_block
        if self._shrink_batch(eni.vswitch_id, cmd.count, error):
            pass  # retried on the next tick with a smaller batch
        elif error.error_class in (ErrorClass.EXHAUSTED, ErrorClass.QUOTA):
            self._memory.enis[eni.eni_id] = Block(until, error)
            self._exhausted("eni", eni.eni_id, until, error)
            if error.error_class is ErrorClass.EXHAUSTED:
                self._memory.vswitches[eni.vswitch_id] = Block(until, error)
                self._vsw_available[eni.vswitch_id] = 0
                self._exhausted("vswitch", eni.vswitch_id, until, error)
        elif error.error_class is ErrorClass.NOT_FOUND:
            lost = sorted(s.owner for s in eni.ips.values() if s.owner)
            self._log("error", f"ENI {eni.eni_id} no longer exists; forgetting it"
                      + (f" and the addresses of {', '.join(lost)}" if lost else ""))
            self._drop_eni(eni.eni_id)
        else:
            self._back_off(f"eni:{eni.eni_id}", now)

    def _eni_op_failed(
        self, cmd: AttachEni | DetachEni | DeleteEni | UnassignIps, error: CloudError, now: float
    ) -> None:
        eni = self._enis.get(cmd.eni_id)
        if eni is None:
            return
        eni.busy_cmd, eni.changed_at = None, now
        gone = error.error_class is ErrorClass.NOT_FOUND
        match cmd:
            case UnassignIps():
                for ip in cmd.ips:
                    if gone and ip in eni.ips:
                        eni.pop_ip(ip)
                    elif ip in eni.ips:
                        eni.ips[ip].releasing = False
            case AttachEni() if not error.retryable:
                eni.state = EniState.DETACHING  # give the half-made ENI back
                self._back_off("create", now)   # and do not make another one at once
                if error.error_class is ErrorClass.QUOTA:  # EniPerInstanceLimitExceeded
                    until = now + self._s.eni_limit_block
                    self._memory.create = Block(until, error)
                    self._exhausted("instance", self._s.instance_id, until, error)
            case DetachEni() if gone or error.error_class is ErrorClass.INVALID_STATE:
                eni.state = EniState.DELETING
            case DeleteEni() if gone:
                self._drop_eni(eni.eni_id)
                return
            case DetachEni() | DeleteEni():
                eni.error = error.describe()
        if not (gone and isinstance(cmd, UnassignIps)):
            self._back_off(f"eni:{eni.eni_id}", now)
        level = "warning" if error.retryable else "error"
        self._log(level, f"{type(cmd).__name__} {cmd.eni_id} failed: {error.describe()}")

    # ------------------------------------------------------------------ internals: notices

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self._prefix}-{self._seq}"

    def _finish(self, cmd_id: str, kind: type[_C]) -> _C | None:
        cmd = self._inflight.get(cmd_id)
        if not isinstance(cmd, kind):
            return None
        del self._inflight[cmd_id]
        return cmd

    def _log(self, level: str, msg: str) -> None:
        self._notices.append(LogLine(level, msg))

    def _exhausted(self, scope: str, resource_id: str, until: float, error: CloudError) -> None:
        self._notices.append(Exhausted(scope, resource_id, until, error))
        if self._sufficient:
            self._set_condition(False, error.describe())

    def _set_condition(self, ok: bool, message: str) -> None:
        self._sufficient = ok
        reason = "SufficientIP" if ok else "InsufficientIP"
        self._notices.append(ConditionChanged(CONDITION, ok, reason, message))

    def _granted(self) -> None:
        """The cloud gave addresses (an ENI attached, IPs assigned): SufficientIP is True again,
        even while another vSwitch stays exhausted (pods asking at once, as with fail-fast,
        never wait in the queue whose serving would say so)."""
        if not self._sufficient:
            self._set_condition(True, "addresses are being allocated again")

    def _update_condition(self) -> None:
        if not self._sufficient and not self._memory.any_blocked():
            self._set_condition(True, "no vSwitch or ENI is exhausted any more")


def _check_key(pod_key: str) -> None:
    if not isinstance(pod_key, str) or not pod_key:
        raise ValueError(f"pod_key: must be a non-empty string, got {pod_key!r}")


def _ip_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in ip.split("."))
    except ValueError:
        return (0,)
