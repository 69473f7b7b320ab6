"""What a failed cloud call costs the pool: a retry backoff, an exhaustion block (IpNotEnough,
quotas) until a deadline, an ENI given back or forgotten, and the SufficientIP condition.

Kept apart from the pool so every "failed → wait until when" rule is read in one place
(docs/ipam.md, Exhaustion memory and Retries).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from terway.cloud.api import VSwitch
from terway.cloud.errors import CloudError, ErrorClass
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
from terway.ipam.lifecycle import EniEvent, transition
from terway.ipam.model import EniSlot
from terway.ipam.notices import ConditionChanged, Exhausted, LogLine, Notice
from terway.ipam.settings import IpamSettings
from terway.ipam.vswitches import VSwitchCache

CONDITION = "SufficientIP"
ENI_LIMIT_CODE = "EniPerInstanceLimitExceeded"  # blocks creation eni_limit_block, not 10 min


@dataclass(slots=True)
class _Backoff:
    until: float
    failures: int


class Backoffs:
    """Retry delays per target (``create``, ``describe``, ``eni:<id>``): ``retry_base`` doubling
    up to ``retry_cap`` with each failure in a row, forgotten on a success."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Backoff] = {}

    def fail(self, key: str, now: float, base: float, cap: float) -> None:
        b = self._by_key.get(key)
        n = b.failures + 1 if b is not None else 1
        self._by_key[key] = _Backoff(now + min(cap, base * 2 ** (n - 1)), n)

    def clear(self, key: str) -> None:
        self._by_key.pop(key, None)

    def active(self, key: str, now: float) -> bool:
        b = self._by_key.get(key)
        return b is not None and b.until > now

    def due_by(self, at: float) -> bool:
        if self._by_key:
            for b in self._by_key.values():
                if b.until <= at:
                    return True
        return False

    def first_after(self, now: float, best: float = math.inf) -> float:
        """The first backoff to end after ``now``, if before ``best``."""
        if self._by_key:
            for b in self._by_key.values():
                if now < b.until < best:
                    best = b.until
        return best

    def expire(self, now: float) -> None:
        if self.due_by(now):
            self._by_key = {k: b for k, b in self._by_key.items() if b.until > now}


class Failures:
    """Handles every failed command; owns the backoffs, the exhaustion memory and SufficientIP.

    ``failed`` returns True when the ENI the command was about is gone from the cloud: the
    pool then forgets it (only the pool knows every table an ENI appears in).
    """

    def __init__(self, settings: IpamSettings, vswitches: VSwitchCache,
                 emit: Callable[[Notice], None]) -> None:
        self.s = settings
        self.backoff = Backoffs()
        self.memory = ExhaustionMemory()
        self.sufficient = True
        self._vsw = vswitches
        self._emit = emit

    # -- deadlines ----------------------------------------------------------------------------
    def back_off(self, key: str, now: float) -> None:
        self.backoff.fail(key, now, self.s.retry_base, self.s.retry_cap)

    def due_by(self, at: float) -> bool:
        """A block or a backoff ends by ``at``."""
        return self.memory.earliest() <= at or self.backoff.due_by(at)

    def first_after(self, now: float) -> float:
        """The first block or backoff to end after ``now`` (math.inf: none)."""
        best = math.inf
        if self.memory.any_blocked():     # loops, not min(): this runs at every wake-up
            for t in self.memory.deadlines():
                if now < t < best:
                    best = t
        return self.backoff.first_after(now, best)

    def expire(self, now: float) -> None:
        if self.memory.expire(now):
            self.update_condition()
        self.backoff.expire(now)

    def addresses_back(self, v: VSwitch, eni_ids_on_it: list[str]) -> None:
        """A vSwitch described with free addresses: its blocks and its ENIs' IpNotEnough lift."""
        if self.memory.lift_vswitch(v.vswitch_id, eni_ids_on_it):
            self.log("info", f"vSwitch {v.vswitch_id} has {v.available_ip_count} free "
                     "addresses again; allocation resumes")

    # -- failed commands ----------------------------------------------------------------------
    def failed(self, cmd: Command, eni: EniSlot | None, error: CloudError, now: float) -> bool:
        forget = False
        match cmd:
            case CreateEni():
                self._create_failed(cmd, error, now)
            case AssignIps() if eni is not None:
                forget = self._assign_failed(cmd, eni, error, now)
            case AttachEni() | DetachEni() | DeleteEni() | UnassignIps() if eni is not None:
                forget = self._eni_op_failed(cmd, eni, error, now)
            case DescribeVSwitches():
                self.back_off("describe", now)
                self.log("warning", f"describe vSwitches failed: {error.describe()}")
        return forget

    def _create_failed(self, cmd: CreateEni, error: CloudError, now: float) -> None:
        vsw = cmd.vswitch_id
        until = now + self.s.exhaustion_block
        if self._vsw.shrink_batch(vsw, cmd.secondary_ip_count + 1, error):
            self.log("warning", f"create network interface on vSwitch {vsw} failed: "
                     f"{error.describe()}, retrying with "
                     f"{self._vsw.batch_size(vsw, self.s.max_ips_per_call)} addresses")
        elif error.error_class is ErrorClass.EXHAUSTED:
            self._vswitch_dry(vsw, until, error)
            self.log("warning", f"create network interface on vSwitch {vsw} failed: "
                     f"{error.describe()}, trying another vSwitch")
        elif error.error_class is ErrorClass.QUOTA:
            self._block_create(now, error)
            self.log("warning", f"create network interface failed: {error.describe()}")
        else:
            self.back_off("create", now)
            self.log("warning", f"create network interface failed: {error.describe()}, "
                     "retrying")

    def _assign_failed(self, cmd: AssignIps, eni: EniSlot, error: CloudError,
                       now: float) -> bool:
        eni.busy_cmd, eni.assigning = None, 0
        self.log("warning", f"Assign private ip address failed: {error.describe()}, retrying")
        until = now + self.s.exhaustion_block
        if self._vsw.shrink_batch(eni.vswitch_id, cmd.count, error):
            pass  # retried on the next tick with a smaller batch
        elif error.error_class in (ErrorClass.EXHAUSTED, ErrorClass.QUOTA):
            self.memory.enis[eni.eni_id] = Block(until, error)
            self.exhausted("eni", eni.eni_id, until, error)
            if error.error_class is ErrorClass.EXHAUSTED:
                self._vswitch_dry(eni.vswitch_id, until, error)
        elif error.error_class is ErrorClass.NOT_FOUND:
            lost = sorted(s.owner for s in eni.ips.values() if s.owner)
            self.log("error", f"ENI {eni.eni_id} no longer exists; forgetting it"
                     + (f" and the addresses of {', '.join(lost)}" if lost else ""))
            return True
        else:
            self.back_off(f"eni:{eni.eni_id}", now)
        return False

    def _eni_op_failed(self, cmd: AttachEni | DetachEni | DeleteEni | UnassignIps,
                       eni: EniSlot, error: CloudError, now: float) -> bool:
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
                transition(eni, EniEvent.ATTACH_REFUSED)   # give the half-made ENI back
                self.back_off("create", now)               # and do not make another one at once
                if error.error_class is ErrorClass.QUOTA:  # EniPerInstanceLimitExceeded
                    self._block_create(now, error, eni_limit=True)
            case DetachEni() if gone or error.error_class is ErrorClass.INVALID_STATE:
                transition(eni, EniEvent.DETACHED)
            case DeleteEni() if gone:
                return True
            case DetachEni() | DeleteEni():
                eni.error = error.describe()
        if not (gone and isinstance(cmd, UnassignIps)):
            self.back_off(f"eni:{eni.eni_id}", now)
        level = "warning" if error.retryable else "error"
        self.log(level, f"{type(cmd).__name__} {cmd.eni_id} failed: {error.describe()}")
        return False

    def _vswitch_dry(self, vswitch: str, until: float, error: CloudError) -> None:
        self.memory.vswitches[vswitch] = Block(until, error)
        self._vsw.dry(vswitch)
        self.exhausted("vswitch", vswitch, until, error)

    def _block_create(self, now: float, error: CloudError, eni_limit: bool = False) -> None:
        """No ENI creation for a while: ``eni_limit_block`` after the per-instance ENI limit,
        ``exhaustion_block`` after an account quota."""
        limited = eni_limit or error.code == ENI_LIMIT_CODE
        until = now + (self.s.eni_limit_block if limited else self.s.exhaustion_block)
        self.memory.create = Block(until, error)
        self.exhausted("instance", self.s.instance_id, until, error)

    # -- notices and SufficientIP -------------------------------------------------------------
    def log(self, level: str, msg: str) -> None:
        self._emit(LogLine(level, msg))

    def exhausted(self, scope: str, resource_id: str, until: float, error: CloudError) -> None:
        self._emit(Exhausted(scope, resource_id, until, error))
        if self.sufficient:
            self.set_condition(False, error.describe())

    def set_condition(self, ok: bool, message: str) -> None:
        self.sufficient = ok
        reason = "SufficientIP" if ok else "InsufficientIP"
        self._emit(ConditionChanged(CONDITION, ok, reason, message))

    def granted(self) -> None:
        """The cloud gave addresses (an ENI attached, IPs assigned): SufficientIP is True again,
        even while another vSwitch stays exhausted (pods asking at once, as with fail-fast,
        never wait in the queue whose serving would say so)."""
        if not self.sufficient:
            self.set_condition(True, "addresses are being allocated again")

    def update_condition(self) -> None:
        if not self.sufficient and not self.memory.any_blocked():
            self.set_condition(True, "no vSwitch or ENI is exhausted any more")
