"""The running counters' reference: a full rescan of every slot, for tests and debugging.

The pool keeps per-ENI and pool-wide counts up to date on every change instead of rescanning
(model.py); this says, naming the first difference, when they drifted.
"""

from __future__ import annotations

from collections.abc import Iterable

from terway.ipam.model import EniSlot, EniState, PoolCounts


def check_counts(enis: Iterable[EniSlot], totals: PoolCounts) -> None:
    """Raise AssertionError unless every ENI's counters and ``totals`` match a rescan."""
    want = PoolCounts()
    for e in enis:
        counted = (e.n_used, e.n_reserved, e.n_idle)
        used, reserved, idle = scanned = e.recount()
        if counted != scanned:
            raise AssertionError(f"{e.eni_id}: counters (used, reserved, idle) {counted} "
                                 f"!= rescan {scanned}")
        for s in e.ips.values():
            if s.eni is not e:
                raise AssertionError(f"{e.eni_id}: slot {s.ip} not linked to its ENI")
        if e.pool is not totals:
            raise AssertionError(f"{e.eni_id}: not attached to the core's totals")
        if e.state is EniState.READY:
            want.total += len(e.ips)
            want.used += used
            want.idle += idle
            want.reserved += reserved
            want.assigning += e.assigning
        elif e.state is EniState.ATTACHING:
            want.attaching += len(e.ips)
    if want.as_tuple() != totals.as_tuple():
        raise AssertionError(f"pool totals {totals.as_tuple()} != rescan {want.as_tuple()} "
                             "(total, used, idle, reserved, assigning, attaching)")


def check_reservations(enis: Iterable[EniSlot], deadlines: list[float]) -> None:
    """Raise AssertionError unless the reservation heap's live ``deadlines`` match the slots."""
    scanned = sorted(s.reserved_until for e in enis for s in e.ips.values()
                     if s.reserved_for is not None)
    if scanned != deadlines:
        raise AssertionError(f"reservation heap {deadlines} != rescan {scanned}")
