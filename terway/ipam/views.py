"""Read-only views of the core for terway-cli, metrics and restart reports."""

from __future__ import annotations

from dataclasses import dataclass


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
