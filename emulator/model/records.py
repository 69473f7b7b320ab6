"""The model's resources: mutable records inside the lock, frozen views handed out.

Callers never get a mutable record, so a view read outside the lock is never half-updated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from .addressing import AddressPool
from .catalog import InstanceType

# ENI states, as the API spells them.
AVAILABLE, ATTACHING, IN_USE, DETACHING = "Available", "Attaching", "InUse", "Detaching"
PRIMARY, SECONDARY = "Primary", "Secondary"
RUNNING = "Running"


@dataclass(frozen=True, slots=True)
class VpcView:
    vpc_id: str
    region_id: str
    cidr_block: str
    name: str
    description: str
    vrouter_id: str
    vswitch_ids: tuple[str, ...]
    status: str = "Available"
    creation_time: str = ""


@dataclass(frozen=True, slots=True)
class VSwitchView:
    vswitch_id: str
    vpc_id: str
    zone_id: str
    cidr_block: str
    available_ip_count: int
    gateway: str
    name: str
    description: str
    status: str = "Available"
    creation_time: str = ""


@dataclass(frozen=True, slots=True)
class SecurityGroupView:
    security_group_id: str
    vpc_id: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class InstanceView:
    instance_id: str
    instance_type: str
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    security_group_ids: tuple[str, ...]
    status: str
    name: str
    primary_eni_id: str
    primary_ip: str
    eni_ids: tuple[str, ...]        # primary first, then attached/attaching/detaching ENIs
    creation_time: str = ""


@dataclass(frozen=True, slots=True)
class EniView:
    eni_id: str
    mac: str
    vswitch_id: str
    vpc_id: str
    zone_id: str
    status: str
    eni_type: str
    primary_ip: str
    private_ips: tuple[str, ...]    # primary first
    instance_id: str
    security_group_ids: tuple[str, ...]
    tags: Mapping[str, str]
    description: str
    name: str
    creation_time: str
    device_index: int = -1
    resource_group_id: str = ""
    source_dest_check: bool = False

    @property
    def secondary_ips(self) -> tuple[str, ...]:
        return self.private_ips[1:]


@dataclass(slots=True)
class Vpc:
    vpc_id: str
    region_id: str
    cidr: ipaddress.IPv4Network
    name: str
    description: str
    vrouter_id: str
    vswitch_ids: list[str] = field(default_factory=list)
    creation_time: str = ""

    def view(self) -> VpcView:
        return VpcView(self.vpc_id, self.region_id, str(self.cidr), self.name, self.description,
                       self.vrouter_id, tuple(self.vswitch_ids), "Available", self.creation_time)


@dataclass(slots=True)
class VSwitch:
    vswitch_id: str
    vpc_id: str
    zone_id: str
    pool: AddressPool
    name: str
    description: str
    eni_count: int = 0
    creation_time: str = ""

    def view(self) -> VSwitchView:
        return VSwitchView(self.vswitch_id, self.vpc_id, self.zone_id, self.pool.cidr,
                           self.pool.available, self.pool.gateway, self.name, self.description,
                           "Available", self.creation_time)


@dataclass(slots=True)
class SecurityGroup:
    security_group_id: str
    vpc_id: str
    name: str
    description: str

    def view(self) -> SecurityGroupView:
        return SecurityGroupView(self.security_group_id, self.vpc_id, self.name, self.description)


@dataclass(slots=True)
class Instance:
    instance_id: str
    itype: InstanceType
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    security_group_ids: tuple[str, ...]
    name: str
    primary_eni_id: str = ""
    status: str = RUNNING
    eni_ids: list[str] = field(default_factory=list)
    creation_time: str = ""

    def view(self, primary_ip: str) -> InstanceView:
        return InstanceView(self.instance_id, self.itype.instance_type_id, self.region_id,
                            self.zone_id, self.vpc_id, self.vswitch_id, self.security_group_ids,
                            self.status, self.name, self.primary_eni_id, primary_ip,
                            tuple(self.eni_ids), self.creation_time)


@dataclass(slots=True)
class Eni:
    eni_id: str
    mac: str
    vswitch_id: str
    vpc_id: str
    zone_id: str
    security_group_ids: tuple[str, ...]
    eni_type: str
    ips: list[str]                  # primary first
    tags: dict[str, str]
    description: str
    name: str
    creation_time: str
    status: str = AVAILABLE
    instance_id: str = ""
    due: float = 0.0                # when Attaching/Detaching completes
    device_index: int = -1
    resource_group_id: str = ""     # "" = the account's default resource group
    source_dest_check: bool = False

    @property
    def primary_ip(self) -> str:
        return self.ips[0]

    def view(self) -> EniView:
        return EniView(self.eni_id, self.mac, self.vswitch_id, self.vpc_id, self.zone_id,
                       self.status, self.eni_type, self.ips[0], tuple(self.ips),
                       self.instance_id, self.security_group_ids, dict(self.tags),
                       self.description, self.name, self.creation_time, self.device_index,
                       self.resource_group_id, self.source_dest_check)
