"""Read-only views of the core for terway-cli, metrics and restart reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from terway.ipam.exhaustion import Block
from terway.ipam.model import EniSlot, EniState
from terway.ipam.notices import Allocation


@dataclass(frozen=True)
class MappingRow:
    status: str   # Normal | Idle | Error
    pod_key: str  # "" when idle
    eni_id: str
    mac: str
    ip: str

    @property
    def res_id(self) -> str:
        return f"{self.mac}.{self.ip}"


@dataclass(frozen=True)
class PoolStats:
    total: int
    used: int
    idle: int
    reserved: int
    disposed: int
    in_flight: int
    pending: int
    eni_count: int


@dataclass(frozen=True)
class EniView:
    eni_id: str
    mac: str
    vswitch_id: str
    state: str
    ips: tuple[str, ...]
    used: int
    blocked_until: float | None


@dataclass(frozen=True)
class RestoreReport:
    freed: tuple[str, ...]     # IPs nobody owns: idle in the pool now
    dropped: dict[str, str]    # pod key -> IP that no longer exists: delete these records


def eni_views(enis: Iterable[EniSlot], blocks: Mapping[str, Block]) -> list[EniView]:
    """Every ENI, by id, with the end of its exhaustion block if any."""
    return [
        EniView(e.eni_id, e.mac, e.vswitch_id, e.state.value, tuple(sorted(e.ips)), e.used,
                blocks[e.eni_id].until if e.eni_id in blocks else None)
        for e in sorted(enis, key=lambda e: e.eni_id)
    ]


def disposed(enis: Iterable[EniSlot]) -> int:
    """Addresses on their way back to the cloud: whole ENIs leaving, IPs being unassigned."""
    return sum(
        len(e.ips) if e.state in (EniState.DETACHING, EniState.DELETING)
        else sum(1 for s in e.ips.values() if s.releasing)
        for e in enis
    )


def mapping_rows(enis: Iterable[EniSlot]) -> list[MappingRow]:
    """Every address of every ENI, as ``terway-cli mapping`` lists them (by ENI, then IP)."""
    rows = []
    for e in sorted(enis, key=lambda e: e.eni_id):
        for ip in sorted(e.ips, key=_ip_key):
            s = e.ips[ip]
            status = "Error" if e.error else ("Normal" if s.owner else "Idle")
            rows.append(MappingRow(status, s.owner or "", e.eni_id, e.mac, ip))
    return rows


def _ip_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in ip.split("."))
    except ValueError:
        return (0,)


def allocation(pod_key: str, eni: EniSlot, ip: str, exclusive: bool) -> Allocation:
    """What a pod is told it holds; the pool builds it once per hand-out (an ENI's MAC and
    vSwitch never change) instead of at every answer and release."""
    return Allocation(pod_key, ip, eni.eni_id, eni.mac, eni.vswitch_id, exclusive)
