"""VPC-side operations: VPCs, vSwitches (with address pools) and security groups."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from . import codes
from .addressing import AddressPool
from .base import CloudBase
from .records import SecurityGroup, SecurityGroupView, Vpc, VpcView, VSwitch, VSwitchView
from .regions import REGIONS


def parse_cidr(cidr: str, low: int, high: int) -> ipaddress.IPv4Network:
    """A strict IPv4 CIDR whose prefix is within [low, high], else InvalidCidrBlock.Malformed."""
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        raise codes.CIDR_MALFORMED() from None
    if "/" not in cidr or not low <= net.prefixlen <= high:
        raise codes.CIDR_MALFORMED()
    return net


class NetworkOps(CloudBase):
    def create_vpc(self, cidr_block: str, *, name: str = "", description: str = "",
                   client_token: str | None = None, region_id: str | None = None) -> VpcView:
        with self._lock:
            region = region_id or self._scoped_region() or self.region_id
            if region not in REGIONS:
                raise codes.not_found("InvalidRegionId", region)
            if not cidr_block:
                raise codes.missing("CidrBlock")
            net = parse_cidr(cidr_block, 8, 28)
            fingerprint = (cidr_block, name, region)
            hit = self._token_hit("CreateVpc", client_token, fingerprint)
            if hit is not None and hit in self._vpcs:
                return self._vpcs[hit].view()
            code = self._id_code(region)
            vpc = Vpc(self._ids.new_id("vpc", code), region, net, name, description,
                      self._ids.new_id("vrt", code), creation_time=self._timestamp())
            self._vpcs[vpc.vpc_id] = vpc
            self._remember_token("CreateVpc", client_token, fingerprint, vpc.vpc_id)
            return vpc.view()

    def describe_vpcs(self, vpc_ids: Sequence[str] | None = None, *, name: str | None = None,
                      region_id: str | None = None) -> list[VpcView]:
        with self._lock:
            vpcs = ([self._vpcs[v] for v in vpc_ids if v in self._vpcs] if vpc_ids
                    else list(self._vpcs.values()))
            return [v.view() for v in vpcs
                    if self._visible(v.region_id)
                    and (name is None or v.name == name)
                    and (region_id is None or v.region_id == region_id)]

    def delete_vpc(self, vpc_id: str, *, client_token: str | None = None) -> None:
        """DeleteVpc; a repeat with the same ClientToken is answered as done."""
        with self._lock:
            if self._token_hit("DeleteVpc", client_token, vpc_id) is not None:
                return
            vpc = self._vpc(vpc_id)
            if vpc.vswitch_ids:
                raise codes.DEPENDENCY_VSWITCH()
            if any(sg.vpc_id == vpc_id for sg in self._sgs.values()):
                raise codes.DEPENDENCY_SECURITY_GROUP()
            del self._vpcs[vpc_id]
            self._remember_token("DeleteVpc", client_token, vpc_id, vpc_id)

    def create_vswitch(self, vpc_id: str, zone_id: str, cidr_block: str, *, name: str = "",
                       description: str = "", client_token: str | None = None) -> VSwitchView:
        with self._lock:
            if not vpc_id:
                raise codes.missing("VpcId")
            if not zone_id:
                raise codes.missing("ZoneId")
            if not cidr_block:
                raise codes.missing("CidrBlock")
            vpc = self._vpc(vpc_id)
            if zone_id not in REGIONS[vpc.region_id]:
                raise codes.not_found("InvalidZoneId", zone_id)
            net = parse_cidr(cidr_block, 16, 29)
            if not net.subnet_of(vpc.cidr):
                raise codes.CIDR_NOT_IN_VPC()
            fingerprint = (vpc_id, zone_id, cidr_block, name)
            hit = self._token_hit("CreateVSwitch", client_token, fingerprint)
            if hit is not None and hit in self._vswitches:
                return self._vswitches[hit].view()
            for other in vpc.vswitch_ids:
                if self._vswitches[other].pool.network.overlaps(net):
                    raise codes.CIDR_OVERLAPPED()
            vsw = VSwitch(self._ids.new_id("vsw", self._id_code(vpc.region_id)), vpc_id, zone_id,
                          AddressPool(cidr_block), name, description,
                          creation_time=self._timestamp())
            self._vswitches[vsw.vswitch_id] = vsw
            vpc.vswitch_ids.append(vsw.vswitch_id)
            self._remember_token("CreateVSwitch", client_token, fingerprint, vsw.vswitch_id)
            return vsw.view()

    def get_vswitch(self, vswitch_id: str) -> VSwitchView:
        with self._lock:
            return self._vsw(vswitch_id).view()

    def describe_vswitches(self, vswitch_ids: Sequence[str] | None = None, *,
                           vpc_id: str | None = None, zone_id: str | None = None,
                           name: str | None = None) -> list[VSwitchView]:
        with self._lock:
            vsws = ([self._vswitches[v] for v in vswitch_ids if v in self._vswitches]
                    if vswitch_ids else list(self._vswitches.values()))
            seen = self._vpc_filter()
            return [v.view() for v in vsws
                    if (seen is None or seen(v.vpc_id))
                    and (vpc_id is None or v.vpc_id == vpc_id)
                    and (zone_id is None or v.zone_id == zone_id)
                    and (name is None or v.name == name)]

    def delete_vswitch(self, vswitch_id: str) -> None:
        with self._lock:
            vsw = self._vsw(vswitch_id)
            if vsw.eni_count:
                raise codes.DEPENDENCY()
            del self._vswitches[vswitch_id]
            self._vpcs[vsw.vpc_id].vswitch_ids.remove(vswitch_id)

    def create_security_group(self, vpc_id: str, *, name: str = "", description: str = "",
                              client_token: str | None = None) -> SecurityGroupView:
        with self._lock:
            if not vpc_id:
                raise codes.missing("VpcId")
            vpc = self._vpc(vpc_id)
            fingerprint = (vpc_id, name)
            hit = self._token_hit("CreateSecurityGroup", client_token, fingerprint)
            if hit is not None and hit in self._sgs:
                return self._sgs[hit].view()
            sg = SecurityGroup(self._ids.new_id("sg", self._id_code(vpc.region_id)), vpc_id, name,
                               description)
            self._sgs[sg.security_group_id] = sg
            self._remember_token("CreateSecurityGroup", client_token, fingerprint,
                                 sg.security_group_id)
            return sg.view()

    def describe_security_groups(self, sg_ids: Sequence[str] | None = None, *,
                                 vpc_id: str | None = None) -> list[SecurityGroupView]:
        with self._lock:
            sgs = ([self._sgs[s] for s in sg_ids if s in self._sgs] if sg_ids
                   else list(self._sgs.values()))
            seen = self._vpc_filter()
            return [s.view() for s in sgs
                    if (seen is None or seen(s.vpc_id)) and (vpc_id is None or s.vpc_id == vpc_id)]
