"""What the core tells the driver besides commands: results, log lines, node conditions."""

from __future__ import annotations

from dataclasses import dataclass

from terway.cloud.errors import CloudError


@dataclass(frozen=True)
class Allocation:
    """An address held by a pod. In exclusive mode ``ip`` is the ENI's primary IP."""

    pod_key: str
    ip: str
    eni_id: str
    mac: str
    vswitch_id: str
    exclusive: bool = False

    @property
    def res_id(self) -> str:
        """terway-cli's Res ID: ``<mac>.<ip>``."""
        return f"{self.mac}.{self.ip}"


@dataclass(frozen=True)
class Pending:
    """The request is queued; an ``IpReady`` notice will follow (or the driver cancels)."""

    pod_key: str
    reason: str


@dataclass(frozen=True)
class IpReady:
    pod_key: str
    allocation: Allocation


@dataclass(frozen=True)
class LogLine:
    level: str  # debug | info | warning | error
    msg: str


@dataclass(frozen=True)
class ConditionChanged:
    type: str       # "SufficientIP"
    status: bool
    reason: str     # "SufficientIP" | "InsufficientIP"
    message: str


@dataclass(frozen=True)
class Exhausted:
    scope: str          # "eni" | "vswitch" | "instance"
    resource_id: str
    until: float
    error: CloudError


Notice = IpReady | LogLine | ConditionChanged | Exhausted
