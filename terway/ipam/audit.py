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

from collections.abc import Collection, Iterable
from dataclasses import dataclass

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
