"""ECS instances: RunInstances gives each a Running instance with a Primary ENI in InUse."""

from __future__ import annotations

from collections.abc import Sequence

from . import codes
from .base import CloudBase
from .catalog import CATALOG, InstanceType
from .enis import check_explicit_ips, take_ips
from .events import EventKind
from .records import AVAILABLE, IN_USE, PRIMARY, RUNNING, Eni, Instance, InstanceView

MAX_AMOUNT = 100


class ComputeOps(CloudBase):
    def instance_types(self) -> list[InstanceType]:
        return list(CATALOG.values())

    def get_instance_type(self, instance_type: str) -> InstanceType:
        itype = CATALOG.get(instance_type)
        if itype is None:
            raise codes.not_found("InvalidInstanceType", instance_type)
        return itype

    def run_instances(
        self,
        instance_type: str,
        vswitch_id: str,
        security_group_ids: Sequence[str],
        amount: int = 1,
        *,
        name: str = "",
        zone_id: str | None = None,
        private_ip: str | None = None,
        client_token: str | None = None,
    ) -> list[str]:
        """RunInstances: ``amount`` Running instances, each with a primary ENI; all or none."""
        with self._lock:
            self._settle()
            if not instance_type:
                raise codes.missing("InstanceType")
            if not vswitch_id:
                raise codes.missing("VSwitchId")
            itype = self.get_instance_type(instance_type)
            vsw = self._vsw(vswitch_id)
            sg_ids = tuple(security_group_ids)
            self._check_sgs(sg_ids, vsw.vpc_id)
            if zone_id and zone_id != vsw.zone_id:
                raise codes.invalid("ZoneId", f"{vswitch_id} is in {vsw.zone_id}")
            if not 1 <= amount <= MAX_AMOUNT:
                raise codes.invalid("Amount", f"must be 1 to {MAX_AMOUNT}")
            if private_ip and amount != 1:
                raise codes.invalid("PrivateIpAddress", "only with Amount=1")
            fingerprint = (instance_type, vswitch_id, sg_ids, amount, name, private_ip)
            hit = self._token_hit("RunInstances", client_token, fingerprint)
            if hit is not None:
                return hit.split(",")
            explicit = [private_ip] if private_ip else []
            check_explicit_ips(vsw, explicit, for_instance=True)
            ips = take_ips(vsw, explicit, amount - len(explicit), for_instance=True)
            ids = [self._launch(itype, vsw.vswitch_id, sg_ids, name, ip) for ip in ips]
            self._remember_token("RunInstances", client_token, fingerprint, ",".join(ids))
            return ids

    def _launch(self, itype: InstanceType, vswitch_id: str, sg_ids: tuple[str, ...], name: str,
                ip: str) -> str:
        vsw = self._vswitches[vswitch_id]
        region = self._vpcs[vsw.vpc_id].region_id
        code = self._id_code(region)
        inst = Instance(self._ids.new_id("i", code), itype, region, vsw.zone_id, vsw.vpc_id,
                        vswitch_id, sg_ids, name, creation_time=self._timestamp())
        eni = Eni(self._ids.new_id("eni", code), self._ids.new_mac(), vswitch_id, vsw.vpc_id,
                  vsw.zone_id, sg_ids, PRIMARY, [ip], {}, "", "", self._timestamp(),
                  status=IN_USE, instance_id=inst.instance_id, device_index=0)
        inst.primary_eni_id = eni.eni_id
        inst.eni_ids.append(eni.eni_id)
        if not inst.name:
            inst.name = inst.instance_id
        self._instances[inst.instance_id] = inst
        self._enis[eni.eni_id] = eni
        vsw.eni_count += 1
        self._meta_changed(inst.instance_id)
        self._emit(EventKind.INSTANCE_CREATED, eni)
        return inst.instance_id

    def describe_instances(
        self,
        instance_ids: Sequence[str] | None = None,
        *,
        vpc_id: str | None = None,
        vswitch_id: str | None = None,
        zone_id: str | None = None,
        status: str | None = None,
        instance_type: str | None = None,
    ) -> list[InstanceView]:
        with self._lock:
            self._settle()
            insts = ([self._instances[i] for i in dict.fromkeys(instance_ids)
                      if i in self._instances] if instance_ids
                     else list(self._instances.values()))
            return [
                i.view(self._enis[i.primary_eni_id].primary_ip) for i in insts
                if self._visible(i.region_id)
                and (not vpc_id or i.vpc_id == vpc_id)
                and (not vswitch_id or i.vswitch_id == vswitch_id)
                and (not zone_id or i.zone_id == zone_id)
                and (not status or i.status == status)
                and (not instance_type or i.itype.instance_type_id == instance_type)
            ]

    def get_instance(self, instance_id: str) -> InstanceView:
        with self._lock:
            self._settle()
            inst = self._inst(instance_id)
            return inst.view(self._enis[inst.primary_eni_id].primary_ip)

    def delete_instance(self, instance_id: str, *, force: bool = True) -> None:
        """DeleteInstance: secondary ENIs fall back to Available; the primary ENI goes away.

        ``force=False`` is the API's default: a Running instance (they all are) is refused with
        IncorrectInstanceStatus. The typed default is ``True`` (tests and the simulator tear
        nodes down)."""
        with self._lock:
            self._settle()
            inst = self._inst(instance_id)
            if not force and inst.status == RUNNING:
                raise codes.INSTANCE_STATUS()
            self._delete_instance(inst)

    def delete_instances(self, instance_ids: Sequence[str], *, force: bool = False,
                         client_token: str | None = None) -> None:
        """DeleteInstances: all or nothing; a repeat with the same ClientToken is done."""
        with self._lock:
            self._settle()
            ids = tuple(dict.fromkeys(instance_ids))
            if self._token_hit("DeleteInstances", client_token, (ids, force)) is not None:
                return
            insts = [self._inst(i) for i in ids]
            if not force and any(i.status == RUNNING for i in insts):
                raise codes.INSTANCE_STATUS()
            for inst in insts:
                self._delete_instance(inst)
            self._remember_token("DeleteInstances", client_token, (ids, force), ",".join(ids))

    def _delete_instance(self, inst: Instance) -> None:
        instance_id = inst.instance_id
        for eni_id in list(inst.eni_ids):
            eni = self._enis[eni_id]
            if eni.eni_type == PRIMARY:
                continue
            eni.status, eni.instance_id, eni.device_index = AVAILABLE, "", -1
            self._emit(EventKind.ENI_DETACHED, eni, instance_id=instance_id)
        primary = self._enis[inst.primary_eni_id]
        del self._instances[instance_id]
        self._meta.pop(instance_id, None)
        self._drop_eni(primary)
        self._emit(EventKind.INSTANCE_DELETED, primary, instance_id=instance_id)
