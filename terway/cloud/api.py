"""The cloud boundary: the operations the daemon needs, as one synchronous interface.

Three things implement it: ``terway.cloud.sdk.SdkCloud`` (the official SDK, real cloud or the
emulator over HTTP), ``emulator.inprocess.ModelCloud`` (the emulator's model called directly, used
by the simulator and unit tests), and test doubles. Everything raises
``terway.cloud.errors.CloudError``.

It is synchronous on purpose: the daemon runs calls in worker threads, the simulator advances simpy
time around them, and neither leaks into the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class InstanceTypeLimits:
    instance_type: str
    eni_quantity: int               # EniQuantity: ENIs including the primary
    ips_per_eni: int                # EniPrivateIpAddressQuantity: IPv4 per ENI (primary incl.)
    eni_total_quantity: int = 0     # EniTotalQuantity (incl. trunk/member ENIs)
    trunk_supported: bool = False


@dataclass(frozen=True)
class VSwitch:
    vswitch_id: str
    zone_id: str
    cidr: str
    available_ip_count: int
    vpc_id: str = ""


@dataclass(frozen=True)
class Eni:
    eni_id: str
    mac: str
    vswitch_id: str
    zone_id: str
    status: str                     # Available | Attaching | InUse | Detaching | Deleting
    primary_ip: str
    private_ips: tuple[str, ...]    # primary first, then secondaries
    instance_id: str = ""
    eni_type: str = "Secondary"     # Primary | Secondary
    security_group_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    resource_group_id: str = ""     # ResourceGroupId ("" when the cloud does not say)

    @property
    def secondary_ips(self) -> tuple[str, ...]:
        return tuple(ip for ip in self.private_ips if ip != self.primary_ip)


class CloudAPI(Protocol):
    """What the daemon (and the simulated daemon) may ask of the cloud."""

    def describe_instance_type(self, instance_type: str) -> InstanceTypeLimits: ...

    def describe_vswitches(self, vswitch_ids: Sequence[str]) -> list[VSwitch]: ...

    def create_network_interface(
        self,
        *,
        vswitch_id: str,
        security_group_ids: Sequence[str],
        secondary_ip_count: int,
        tags: Mapping[str, str],
        client_token: str,
        description: str = "",
        resource_group_id: str = "",
    ) -> Eni:
        """``resource_group_id`` "": the account's default resource group (eni_conf
        ``resource_group_id``, upstream's ResourceGroupId)."""
        ...

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None: ...

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None: ...

    def delete_network_interface(self, eni_id: str) -> None: ...

    def describe_network_interfaces(
        self,
        *,
        instance_id: str | None = None,
        eni_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        vswitch_id: str | None = None,
        status: str | None = None,
    ) -> list[Eni]: ...

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]: ...

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None: ...
