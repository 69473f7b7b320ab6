"""What the pool asks the cloud for on a tick: more addresses (AssignIps first, then CreateEni),
fewer (UnassignIps, or whole idle ENIs given back), the next step of ENIs between states, and
fresh vSwitch counts. Every rule of docs/ipam.md's Batching and Pool sync lives here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from terway.ipam import selection
from terway.ipam.commands import (
    AssignIps,
    Command,
    CreateEni,
    DescribeVSwitches,
    Inflight,
    UnassignIps,
)
from terway.ipam.failures import Failures
from terway.ipam.lifecycle import EniEvent, next_step, transition
from terway.ipam.model import CreatingEni, EniSlot, EniState, PendingRequest
from terway.ipam.policy import PoolState
from terway.ipam.settings import IpamSettings
from terway.ipam.vswitches import VSwitchCache

_READY = EniState.READY


class Supply:
    """Turns "add n" / "release n" into commands, within blocks, backoffs and capacity."""

    def __init__(self, settings: IpamSettings, enis: Mapping[str, EniSlot],
                 creating: dict[str, CreatingEni], pending: Mapping[str, PendingRequest],
                 inflight: Inflight, fail: Failures, vswitches: VSwitchCache,
                 rng: random.Random, state: Callable[[], PoolState], recheck: float = 0.0) -> None:
        self.s = settings
        self._enis, self._creating, self._pending = enis, creating, pending
        self._inflight, self._fail, self._vsw = inflight, fail, vswitches
        self._rng, self._state = rng, state
        self.last_activity = 0.0                 # the last request: idle reclaim's clock
        self.next_reclaim: float | None = None
        self.recheck = recheck                   # the policy's ``recheck_of`` (0: off)

    # -- how much -----------------------------------------------------------------------------
    def shortage(self, now: float) -> int:
        """Pending requests whose batch window closed, minus what is already on its way."""
        oldest = next(iter(self._pending.values()), None)   # insertion order = time order
        if oldest is None or oldest.since + self.s.batch_window > now:
            return 0
        return max(0, len(self._pending) - self._state().in_flight)

    def reclaim_budget(self, now: float) -> int:
        """Idle addresses to give back once nothing was asked for ``idle_reclaim_after``."""
        s = self.s
        after = s.idle_reclaim_after
        if after is None:
            return 0
        if now - self.last_activity < after:
            self.next_reclaim = self.last_activity + after
            return 0
        if self.next_reclaim is not None and now < self.next_reclaim:
            return 0
        jitter = self._rng.random() * s.idle_reclaim_jitter  # upstream's wait.Jitter
        self.next_reclaim = now + s.idle_reclaim_interval * (1 + jitter)
        st = self._state()
        if st.pending:
            return 0
        return min(s.idle_reclaim_batch, max(0, st.idle - s.min_pool_size))

    # -- growth -------------------------------------------------------------------------------
    def grow(self, add: int, now: float) -> list[Command]:
        if add <= 0:
            return []
        st = self._state()
        add = min(add, max(0, self.s.capacity - st.total - st.in_flight))
        cmds: list[Command] = []
        if add <= 0:
            return cmds
        if not self.s.exclusive:
            add, cmds = self._assign_more(add, now)
            add -= self._room_coming(now)  # served by later batches on ENIs already coming
        while add > 0:
            cmd = self._create_one(add, now)
            if cmd is None:
                break
            cmds.append(cmd)
            add -= self.s.units_per_eni  # the rest of a new ENI is filled by later batches
        return cmds

    def _room_coming(self, now: float) -> int:
        """Room on ENIs being created/attached or busy assigning: filled once they settle."""
        per = self.s.ips_per_eni
        room = sum(per - c.ip_count for c in self._creating.values())
        for e in self._enis.values():
            if e.state is EniState.ATTACHING or (
                e.ready and e.assigning > 0 and not self._fail.memory.eni_blocked(e.eni_id, now)
            ):
                room += max(0, per - len(e.ips) - e.assigning)
        return room

    def _assign_more(self, add: int, now: float) -> tuple[int, list[Command]]:
        cmds: list[Command] = []
        growable = [
            e for e in self._enis.values()
            if e.ready and e.busy_cmd is None and len(e.ips) < self.s.ips_per_eni
            and not self._fail.memory.eni_blocked(e.eni_id, now)
            and not self.eni_backoff(e, now)
        ]
        for eni in selection.order_enis(growable, self.s.eni_selection):
            if add <= 0:
                break
            n = min(add, self.s.ips_per_eni - len(eni.ips), self._batch_size(eni.vswitch_id))
            cmd = self._inflight.add(AssignIps(self._inflight.next_id(), eni.eni_id, n))
            eni.busy_cmd, eni.assigning = cmd.cmd_id, n
            cmds.append(cmd)
            add -= n
        return add, cmds

    def _create_one(self, want: int, now: float) -> CreateEni | None:
        s = self.s
        if len(self._enis) + len(self._creating) >= s.max_enis:
            return None
        if self._fail.memory.create_blocked(now) or self._fail.backoff.active("create", now):
            return None
        vswitch = self._choose_vswitch(now)
        if vswitch is None:
            return None
        n = 1 if s.exclusive else min(want, s.ips_per_eni, self._batch_size(vswitch))
        cmd_id = self._inflight.next_id()
        cmd = CreateEni(cmd_id, vswitch, n - 1 if not s.exclusive else 0,
                        tuple(s.security_group_ids), dict(s.tags), client_token=cmd_id,
                        resource_group_id=s.resource_group_id)
        self._creating[cmd_id] = CreatingEni(vswitch, n)
        self._vsw.took(vswitch, n)
        return self._inflight.add(cmd)

    def _batch_size(self, vswitch: str) -> int:
        return self._vsw.batch_size(vswitch, self.s.max_ips_per_call)

    def _choose_vswitch(self, now: float) -> str | None:
        blocked = self._fail.memory.vswitch_blocked
        candidates = [v for v in self.s.vswitch_ids if not blocked(v, now)]
        ordered = selection.order_vswitches(
            candidates, self._vsw.available, self.s.vswitch_selection, self._rng
        )
        return ordered[0] if ordered else None

    # -- release ------------------------------------------------------------------------------
    def release(self, budget: int, now: float) -> list[Command]:
        """Free ``budget`` idle units: whole ENIs when possible, else secondary IPs."""
        if budget <= 0:
            return self.continue_enis(now)
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
            if whole and ready_count > self.s.min_enis:
                transition(eni, EniEvent.RELEASED)
                ready_count -= 1
                budget -= len(eni.ips)
                continue
            if self.s.exclusive:
                continue
            limit = min(budget, self.s.max_ips_per_call)
            ips = [s.ip for s in idle if s.ip != eni.primary_ip][:limit]
            if not ips:
                continue
            cmd = self._inflight.add(UnassignIps(self._inflight.next_id(), eni.eni_id,
                                                 tuple(ips)))
            for ip in ips:
                eni.ips[ip].releasing = True
            eni.busy_cmd = cmd.cmd_id
            cmds.append(cmd)
            budget -= len(ips)
        return cmds + self.continue_enis(now)

    # -- ENI steps and vSwitch counts ---------------------------------------------------------
    def continue_enis(self, now: float) -> list[Command]:
        """Next step for ENIs between states: attach new ones, detach/delete released ones."""
        cmds: list[Command] = []
        todo = [e for e in self._enis.values() if e.state is not _READY and e.busy_cmd is None]
        for eni in sorted(todo, key=lambda e: e.eni_id):
            if self.eni_backoff(eni, now):
                continue
            cmd = next_step(eni, self._inflight.next_id(), self.s.instance_id)
            if cmd is not None:
                eni.busy_cmd = self._inflight.add(cmd).cmd_id
                cmds.append(cmd)
        return cmds

    def step_ready(self, at: float) -> bool:
        """An ENI between states could take its next step at ``at``."""
        for e in self._enis.values():
            if e.state is not _READY and e.busy_cmd is None and not self.eni_backoff(e, at):
                return True
        return False

    def eni_backoff(self, eni: EniSlot, now: float) -> bool:
        return self._fail.backoff.active(f"eni:{eni.eni_id}", now)

    def refresh_ttl(self) -> float:
        """How long the vSwitch counts stay fresh: ``vswitch_cache_ttl``, shorter while every
        vSwitch of the node is dry (IpNotEnough, or a count of 0) and the policy asks for
        rechecks (``recheck_of``).

        Why: a block lifts only when a describe shows addresses again, and a node whose top-up
        met a momentarily dry vSwitch would otherwise wait the whole TTL (minutes) while other
        nodes give addresses back. The interval doubles from ``recheck`` with every describe
        that still finds them dry, so a vSwitch that stays dry costs a few calls, then one per
        TTL as before.
        """
        ttl = self.s.vswitch_cache_ttl
        if not self.recheck or ttl <= 0:
            return ttl
        streak = self._vsw.dry_streak(self.s.vswitch_ids)
        return ttl if streak is None else min(ttl, self.recheck * 2.0 ** min(streak, 30))

    def refresh_due(self, now: float) -> bool:
        if (self._vsw.fresh(now, self.refresh_ttl()) or not self.s.vswitch_ids
                or self._fail.backoff.active("describe", now)):
            return False
        return not self._inflight.describing()

    def refresh_vswitches(self, now: float) -> list[Command]:
        if not self.refresh_due(now):
            return []
        cmd = DescribeVSwitches(self._inflight.next_id(), tuple(self.s.vswitch_ids))
        self._vsw.fetched_at = now  # re-asked after the TTL even if the answer never comes
        return [self._inflight.add(cmd)]
