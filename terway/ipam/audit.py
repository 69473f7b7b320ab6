"""What the periodic ENI sync decides: upstream's per-ENI ``sync`` (pkg/eni/local.go).

Upstream re-reads each ENI's addresses from instance metadata every minute (jitter 1.0) and
compares them with its pool: an address of the pool that metadata no longer lists is marked
invalid (never handed out again; Warning ``ResourceInvalid`` "Mark as invalid, ip: …"), and an
address metadata lists that the pool does not know is an orphan, reported once it was seen in
two syncs (``orphan ip found on ecs metadata``) and otherwise left alone.

Here both verdicts need two audits in a row: upstream waits after every assign until metadata
shows the new addresses, our executor does not, so one audit right after an assign could see a
list that is a few seconds old. The memory is per ENI and sans-IO; the core acts on the verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from terway.ipam.model import EniSlot

STRIKES = 2   # consecutive audits before an address is judged vanished or orphaned


@dataclass(frozen=True)
class IpAudit:
    """One audit's verdicts, for events and logs."""

    invalid: tuple[tuple[str, str, str], ...] = ()   # (ENI id, IP, pod key holding it or "")
    orphans: tuple[tuple[str, str], ...] = ()        # (ENI id, IP)


class Strikes:
    """How many audits in a row each address was missing from metadata, or unknown to the pool."""

    def __init__(self) -> None:
        self._missing: dict[str, dict[str, int]] = {}
        self._unknown: dict[str, dict[str, int]] = {}

    def judge(self, eni_id: str, valid: Collection[str], known: Collection[str],
              seen: Collection[str]) -> tuple[list[str], list[str]]:
        """(vanished, orphans) of one ENI: ``valid`` addresses missing ``STRIKES`` audits in a
        row (forgotten once reported), listed addresses not ``known`` to the pool (valid or
        not) for that long (reported at every audit while they stay)."""
        missing = _count(self._missing.get(eni_id, {}), (ip for ip in valid if ip not in seen))
        unknown = _count(self._unknown.get(eni_id, {}), (ip for ip in seen if ip not in known))
        vanished = sorted(ip for ip, n in missing.items() if n >= STRIKES)
        for ip in vanished:
            del missing[ip]
        self._missing[eni_id] = missing
        self._unknown[eni_id] = unknown
        return vanished, sorted(ip for ip, n in unknown.items() if n >= STRIKES)

    def forget(self, eni_id: str) -> None:
        self._missing.pop(eni_id, None)
        self._unknown.pop(eni_id, None)


def _count(before: dict[str, int], now_seen: Iterable[str]) -> dict[str, int]:
    """Streaks continued for the addresses seen again, started for the new ones."""
    return {ip: before.get(ip, 0) + 1 for ip in now_seen}


def audit(enis: Mapping[str, EniSlot], observed: Mapping[str, Sequence[str]], read_at: float,
          strikes: Strikes, unreserve: Callable[[str], None]) -> IpAudit:
    """Judge every listed ENI that can be trusted now, and take vanished addresses out of
    service (what is judged: ``IpamCore.audit_ips``). ``unreserve`` ends a pod key's hold."""
    invalid: list[tuple[str, str, str]] = []
    orphans: list[tuple[str, str]] = []
    for eni_id, listed in sorted(observed.items()):
        eni = enis.get(eni_id)
        seen = set(listed)
        if (eni is None or not eni.ready or eni.busy_cmd is not None
                or eni.changed_at >= read_at or eni.primary_ip not in seen):
            continue
        valid = [ip for ip, slot in eni.ips.items() if not slot.gone]
        vanished, unknown = strikes.judge(eni_id, valid, eni.ips, seen)
        invalid += [(eni_id, ip, _invalidate(eni, ip, unreserve)) for ip in vanished]
        orphans += [(eni_id, ip) for ip in unknown]
    return IpAudit(tuple(invalid), tuple(orphans))


def _invalidate(eni: EniSlot, ip: str, unreserve: Callable[[str], None]) -> str:
    """Take a vanished address out of service; return the pod holding it ("" if none)."""
    slot = eni.ips[ip]
    if slot.owner is not None:
        slot.gone = True             # the pod keeps it until its release, as upstream
        return slot.owner
    if slot.reserved_for is not None:
        unreserve(slot.reserved_for)
    eni.pop_ip(ip)
    return ""
