"""What the core asks the driver to do: one command = one CloudAPI call (see docs/ipam.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar


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


_C = TypeVar("_C", CreateEni, AttachEni, AssignIps, UnassignIps, DetachEni, DeleteEni,
              DescribeVSwitches)
_T = TypeVar("_T", bound=Command)


class Inflight:
    """The commands handed to the driver and not answered yet, by id (``<prefix>-<n>``)."""

    def __init__(self, prefix: str) -> None:
        self.by_id: dict[str, Command] = {}
        self._prefix = prefix
        self._seq = 0

    def next_id(self) -> str:
        self._seq += 1
        return f"{self._prefix}-{self._seq}"

    def add(self, cmd: _T) -> _T:
        self.by_id[cmd.cmd_id] = cmd
        return cmd

    def finish(self, cmd_id: str, kind: type[_C]) -> _C | None:
        """The answer to ``cmd_id`` came, if it is a ``kind`` in flight (None: it is not)."""
        cmd = self.by_id.get(cmd_id)
        if not isinstance(cmd, kind):
            return None
        del self.by_id[cmd_id]
        return cmd

    def describing(self) -> bool:
        """A DescribeVSwitches is in flight."""
        return any(isinstance(c, DescribeVSwitches) for c in self.by_id.values())
