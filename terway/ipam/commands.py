"""What the core asks the driver to do: one command = one CloudAPI call (see docs/ipam.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CreateEni:
    cmd_id: str
    vswitch_id: str
    secondary_ip_count: int
    security_group_ids: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    client_token: str = ""
    resource_group_id: str = ""     # "": the account's default resource group


@dataclass(frozen=True)
class AttachEni:
    """Attach and wait until InUse (and, in the daemon, until the link shows up on the node)."""

    cmd_id: str
    eni_id: str
    instance_id: str


@dataclass(frozen=True)
class AssignIps:
    cmd_id: str
    eni_id: str
    count: int


@dataclass(frozen=True)
class UnassignIps:
    cmd_id: str
    eni_id: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class DetachEni:
    """Detach and wait until Available."""

    cmd_id: str
    eni_id: str
    instance_id: str


@dataclass(frozen=True)
class DeleteEni:
    cmd_id: str
    eni_id: str


@dataclass(frozen=True)
class DescribeVSwitches:
    cmd_id: str
    vswitch_ids: tuple[str, ...]


Command = (
    CreateEni | AttachEni | AssignIps | UnassignIps | DetachEni | DeleteEni | DescribeVSwitches
)
