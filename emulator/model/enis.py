"""ENI operations: create, attach/detach (asynchronous), delete, assign/unassign private IPs.

Every operation validates everything first and mutates only after: a refused call changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from . import codes
from .base import CloudBase
from .events import EventKind
from .records import (
    ATTACHING,
    AVAILABLE,
    DETACHING,
    IN_USE,
    PRIMARY,
    RUNNING,
    SECONDARY,
    Eni,
    EniView,
    VSwitch,
)

MAX_IPS_PER_CALL = 10
MAX_SECONDARY_ON_CREATE = 49
# Resource group ids are "rg-" and letters/digits; the model keeps no list of groups, so a
# well-formed id is taken to exist and any other value is a group that cannot exist.
RESOURCE_GROUP_ID = re.compile(r"rg-[A-Za-z0-9]{1,64}")


def check_explicit_ips(vsw: VSwitch, ips: Sequence[str], *, for_instance: bool = False) -> None:
    """Named addresses must not repeat (InvalidIp.IpRepeated), must be usable addresses of the
    vSwitch (InvalidVSwitchId.IpInvalid; RunInstances: InvalidPrivateIpAddress) and free
    (InvalidPrivateIpAddress.Duplicated)."""
    seen: set[str] = set()
    for ip in ips:
        if ip in seen:
            raise codes.IP_REPEATED(ip=ip)
        seen.add(ip)
    for ip in ips:
        if not vsw.pool.usable(ip):
            raise codes.IP_NOT_IN_VSWITCH() if for_instance else codes.IP_INVALID()
        if vsw.pool.in_use(ip):
            raise codes.IP_DUPLICATED()


def take_ips(vsw: VSwitch, explicit: Sequence[str], count: int, *,
             for_instance: bool = False) -> list[str]:
    """Claim the named addresses then ``count`` more; all or nothing. Too few left:
    InvalidVSwitchId.IpNotEnough (ENI actions), QuotaExceeded.PrivateIpAddress (RunInstances)."""
    if vsw.pool.available < len(explicit) + count:
        raise (codes.VSWITCH_EXHAUSTED() if for_instance
               else codes.ip_not_enough(vsw.vswitch_id))
    for ip in explicit:
        vsw.pool.claim(ip)
    return [*explicit, *vsw.pool.allocate(count)]


class EniOps(CloudBase):
    def create_network_interface(
        self,
        vswitch_id: str,
        security_group_ids: Sequence[str] = (),
        *,
        secondary_ip_count: int = 0,
        primary_ip: str | None = None,
        private_ips: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        description: str = "",
        name: str = "",
        client_token: str | None = None,
        resource_group_id: str = "",
        source_dest_check: bool = False,
    ) -> EniView:
        """CreateNetworkInterface: an Available Secondary ENI with its addresses, in
        ``resource_group_id`` ("": the account's default resource group)."""
        with self._lock:
            self._settle()
            if not vswitch_id:
                raise codes.missing("VSwitchId")
            vsw = self._vsw(vswitch_id)
            sg_ids = tuple(security_group_ids)
            self._check_sgs(sg_ids, vsw.vpc_id)
            if not 0 <= secondary_ip_count <= MAX_SECONDARY_ON_CREATE:
                raise codes.invalid("SecondaryPrivateIpAddressCount",
                                    f"must be 0 to {MAX_SECONDARY_ON_CREATE}")
            if resource_group_id and not RESOURCE_GROUP_ID.fullmatch(resource_group_id):
                raise codes.resource_group_not_found()
            tag_map = dict(tags or {})
            fingerprint = (vswitch_id, sg_ids, secondary_ip_count, primary_ip, tuple(private_ips),
                           tuple(sorted(tag_map.items())), description, name, resource_group_id,
                           source_dest_check)
            hit = self._token_hit("CreateNetworkInterface", client_token, fingerprint)
            if hit is not None and hit in self._enis:
                return self._enis[hit].view()
            explicit = ([primary_ip] if primary_ip else []) + list(private_ips)
            check_explicit_ips(vsw, explicit)
            total = 1 + secondary_ip_count + len(private_ips)
            if total > self.unattached_ip_limit:
                raise codes.ip_quota("the new network interface", self.unattached_ip_limit)
            ips = take_ips(vsw, explicit, total - len(explicit))
            eni = Eni(self._ids.new_id("eni", self._id_code(self._vpcs[vsw.vpc_id].region_id)),
                      self._ids.new_mac(), vswitch_id, vsw.vpc_id, vsw.zone_id, sg_ids,
                      SECONDARY, ips, tag_map, description, name, self._timestamp(),
                      resource_group_id=resource_group_id, source_dest_check=source_dest_check)
            self._enis[eni.eni_id] = eni
            vsw.eni_count += 1
            self._remember_token("CreateNetworkInterface", client_token, fingerprint, eni.eni_id)
            self._emit(EventKind.ENI_CREATED, eni)
            return eni.view()

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None:
        """AttachNetworkInterface: Available → Attaching → (after attach_delay) InUse."""
        with self._lock:
            self._settle()
            eni = self._eni(eni_id)
            inst = self._inst(instance_id, "InvalidEcsId")
            if inst.status != RUNNING:
                raise codes.ECS_STATE()
            if eni.status != AVAILABLE:
                raise codes.eni_state(AVAILABLE, eni.status)
            if eni.vpc_id != inst.vpc_id:
                raise codes.VPC_MISMATCH()
            if eni.zone_id != inst.zone_id:
                raise codes.ZONE_MISMATCH()
            if len(inst.eni_ids) >= inst.itype.eni_quantity:
                raise codes.ENI_PER_INSTANCE()
            if len(eni.ips) > inst.itype.eni_private_ip_quantity:
                raise codes.ip_quota(eni_id, inst.itype.eni_private_ip_quantity)
            taken = {self._enis[e].device_index for e in inst.eni_ids}
            eni.device_index = min(i for i in range(len(taken) + 1) if i not in taken)
            eni.status, eni.instance_id = ATTACHING, instance_id
            inst.eni_ids.append(eni_id)
            self._schedule(eni, self._draw(self.attach_delay))
            self._emit(EventKind.ENI_ATTACHING, eni)
            self._settle()

    def detach_network_interface(self, eni_id: str, instance_id: str | None = None) -> None:
        """DetachNetworkInterface: InUse → Detaching → (after detach_delay) Available."""
        with self._lock:
            self._settle()
            eni = self._eni(eni_id)
            if instance_id:
                self._inst(instance_id, "InvalidEcsId")
            if eni.eni_type == PRIMARY:
                raise codes.DETACH_PRIMARY()
            if eni.status != IN_USE:
                raise codes.eni_state(IN_USE, eni.status)
            if instance_id and eni.instance_id != instance_id:
                raise codes.eni_state(f"{IN_USE} on {instance_id}", eni.status)
            eni.status = DETACHING
            self._meta_changed(eni.instance_id)
            self._schedule(eni, self._draw(self.detach_delay))
            self._emit(EventKind.ENI_DETACHING, eni)
            self._settle()

    def delete_network_interface(self, eni_id: str) -> None:
        """DeleteNetworkInterface: only an Available ENI; its addresses go back to the vSwitch."""
        with self._lock:
            self._settle()
            eni = self._eni(eni_id)
            if eni.eni_type == PRIMARY:
                raise codes.ENI_TYPE()
            if eni.status != AVAILABLE:
                raise codes.eni_state(AVAILABLE, eni.status)
            self._drop_eni(eni)

    def _drop_eni(self, eni: Eni) -> None:
        vsw = self._vswitches[eni.vswitch_id]
        vsw.pool.release(eni.ips)
        vsw.eni_count -= 1
        del self._enis[eni.eni_id]
        self._emit(EventKind.ENI_DELETED, eni)

    def assign_private_ips(self, eni_id: str, count: int = 0, ips: Sequence[str] = (), *,
                           client_token: str | None = None) -> list[str]:
        """AssignPrivateIpAddresses: ``count`` (1-10) new secondaries, or the named ``ips``.

        ``client_token``: a repeat with the same parameters answers the first call's addresses
        and takes none (other parameters: IdempotentParameterMismatch)."""
        with self._lock:
            self._settle()
            if not eni_id:
                raise codes.missing("NetworkInterfaceId")
            eni = self._eni(eni_id)
            ips = list(ips)
            fingerprint = (eni_id, count, tuple(ips))
            hit = self._token_hit("AssignPrivateIpAddresses", client_token, fingerprint)
            if hit is not None:
                return hit.split(",")
            if count and ips:
                raise codes.invalid("SecondaryPrivateIpAddressCount",
                                    "cannot be combined with PrivateIpAddress.N")
            if not count and not ips:
                raise codes.missing("SecondaryPrivateIpAddressCount")
            wanted = count or len(ips)
            if not 1 <= wanted <= MAX_IPS_PER_CALL:
                param = "SecondaryPrivateIpAddressCount" if count else "PrivateIpAddress.N"
                raise codes.invalid(param, f"must be 1 to {MAX_IPS_PER_CALL}")
            self._check_eni_usable(eni)
            limit = self._ip_limit(eni)
            if len(eni.ips) + wanted > limit:
                raise codes.ip_quota(eni_id, limit)
            vsw = self._vswitches[eni.vswitch_id]
            check_explicit_ips(vsw, ips)
            new = take_ips(vsw, ips, wanted - len(ips))
            eni.ips.extend(new)
            self._remember_token("AssignPrivateIpAddresses", client_token, fingerprint,
                                 ",".join(new))
            if eni.status == IN_USE:
                self._meta_changed(eni.instance_id)
            self._emit(EventKind.IPS_ASSIGNED, eni, ips=tuple(new))
            return new

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None:
        """UnassignPrivateIpAddresses: every address must be a secondary of this ENI."""
        with self._lock:
            self._settle()
            if not eni_id:
                raise codes.missing("NetworkInterfaceId")
            eni = self._eni(eni_id)
            ips = list(ips)
            if not ips:
                raise codes.missing("PrivateIpAddress.N")
            if len(ips) > MAX_IPS_PER_CALL:
                raise codes.invalid("PrivateIpAddress.N", f"at most {MAX_IPS_PER_CALL}")
            self._check_eni_usable(eni)
            secondaries = set(eni.ips[1:])
            for ip in ips:
                if ip not in secondaries:   # the primary too: upstream takes this as done
                    raise codes.IP_UNASSIGNED()
            gone = set(ips)
            eni.ips = [ip for ip in eni.ips if ip not in gone]
            self._vswitches[eni.vswitch_id].pool.release(ips)
            if eni.status == IN_USE:
                self._meta_changed(eni.instance_id)
            self._emit(EventKind.IPS_UNASSIGNED, eni, ips=tuple(ips))

    def _check_eni_usable(self, eni: Eni) -> None:
        if eni.status not in (AVAILABLE, IN_USE):
            raise codes.eni_state(f"{AVAILABLE} or {IN_USE}", eni.status)
        if eni.eni_type == PRIMARY:
            inst = self._instances[eni.instance_id]
            if inst.status != RUNNING:
                raise codes.ECS_STATE()

    def _ip_limit(self, eni: Eni) -> int:
        inst = self._instances.get(eni.instance_id)
        return inst.itype.eni_private_ip_quantity if inst else self.unattached_ip_limit

    def get_network_interface(self, eni_id: str) -> EniView:
        with self._lock:
            self._settle()
            return self._eni(eni_id).view()

    def describe_network_interfaces(
        self,
        eni_ids: Sequence[str] | None = None,
        *,
        instance_id: str | None = None,
        vswitch_id: str | None = None,
        vpc_id: str | None = None,
        status: str | None = None,
        eni_type: str | None = None,
        tags: Mapping[str, str] | None = None,
        private_ips: Sequence[str] | None = None,
        security_group_id: str | None = None,
        primary_ip: str | None = None,
        name: str | None = None,
        resource_group_id: str | None = None,
        service_managed: bool | None = None,
        ipv6_addresses: Sequence[str] | None = None,
    ) -> list[EniView]:
        """ENIs matching every filter (DescribeNetworkInterfaces' documented ones): creation
        order, or attach order for ``instance_id``. No ENI has IPv6 addresses or is
        service-managed, so those filters match none / all as the cloud would answer."""
        with self._lock:
            self._settle()
            if eni_ids:
                enis = [self._enis[e] for e in dict.fromkeys(eni_ids) if e in self._enis]
            elif instance_id:
                inst = self._instances.get(instance_id)
                enis = [self._enis[e] for e in inst.eni_ids] if inst else []
            else:
                enis = list(self._enis.values())
            if ipv6_addresses or service_managed:
                return []
            want_ips = set(private_ips or ())
            seen = self._vpc_filter()
            return [
                e.view() for e in enis
                if (seen is None or seen(e.vpc_id))
                and (not instance_id or e.instance_id == instance_id)
                and (not vswitch_id or e.vswitch_id == vswitch_id)
                and (not vpc_id or e.vpc_id == vpc_id)
                and (not status or e.status == status)
                and (not eni_type or e.eni_type == eni_type)
                and (not security_group_id or security_group_id in e.security_group_ids)
                and (not tags or all(e.tags.get(k) == v for k, v in tags.items()))
                and (not want_ips or not want_ips.isdisjoint(e.ips))
                and (not primary_ip or e.primary_ip == primary_ip)
                and (not name or e.name == name)
                and (not resource_group_id or e.resource_group_id == resource_group_id)
            ]
