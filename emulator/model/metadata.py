"""The instance metadata service's view of the model (``/latest/meta-data/``; docs/emulator.md).

With ``metadata_lag > 0`` the network part is served from a short per-instance history, so a
change becomes visible ``metadata_lag`` seconds after it happened (as the real service lags).
ENIs appear when they reach InUse and disappear when detaching starts.
"""

from __future__ import annotations

import ipaddress
import json
from collections import deque

from .base import CloudBase, MetaState
from .records import IN_USE

_ROOT = ("hostname", "instance/", "instance-id", "mac", "network/", "private-ipv4",
         "region-id", "vpc-cidr-block", "vpc-id", "vswitch-cidr-block", "vswitch-id", "zone-id")
_MAC_DIR = ("gateway", "netmask", "network-interface-id", "primary-ip-address", "private-ipv4s",
            "vpc-cidr-block", "vpc-id", "vswitch-cidr-block", "vswitch-id")
_PREFIX = "latest/meta-data/"


def _listing(entries: tuple[str, ...] | list[str]) -> str:
    return "\n".join(entries)


class MetadataOps(CloudBase):
    def _meta_state(self, instance_id: str) -> MetaState:
        inst = self._instances.get(instance_id)
        if inst is None:
            return ()
        rows = []
        for eni_id in inst.eni_ids:
            eni = self._enis[eni_id]
            if eni.status != IN_USE:
                continue
            vsw = self._vswitches[eni.vswitch_id]
            rows.append((eni.device_index, (eni.mac, eni.eni_id, eni.vswitch_id,
                                            str(vsw.pool.network), vsw.pool.gateway, eni.vpc_id,
                                            tuple(eni.ips))))
        return tuple(row for _, row in sorted(rows))

    def _meta_changed(self, instance_id: str, at: float | None = None) -> None:
        if self.metadata_lag <= 0 or not instance_id:
            return
        now = self._clock()
        history = self._meta.setdefault(instance_id, deque())
        when = now if at is None else at
        if history and when < history[-1][0]:
            when = history[-1][0]
        history.append((when, self._meta_state(instance_id)))
        horizon = now - self.metadata_lag
        while len(history) >= 2 and history[1][0] <= horizon:
            history.popleft()

    def _visible_state(self, instance_id: str) -> MetaState:
        if self.metadata_lag <= 0:
            return self._meta_state(instance_id)
        history = self._meta.get(instance_id)
        if not history:
            return self._meta_state(instance_id)
        horizon = self._clock() - self.metadata_lag
        state = history[0][1]
        for when, snap in history:
            if when > horizon:
                break
            state = snap
        return state

    def metadata_get(self, instance_id: str, path: str) -> str | None:
        """What ``GET http://100.100.100.200/latest/meta-data/<path>`` answers, or None (404)."""
        with self._lock:
            self._settle()
            inst = self._instances.get(instance_id)
            if inst is None:
                return None
            clean = path.lstrip("/")
            if clean.startswith(_PREFIX) or clean + "/" == _PREFIX:
                clean = clean[len(_PREFIX):]
            parts = [p for p in clean.split("/") if p]
            primary = self._enis[inst.primary_eni_id]
            vsw = self._vswitches[inst.vswitch_id]
            vpc = self._vpcs[inst.vpc_id]
            simple = {
                "hostname": inst.name, "instance-id": inst.instance_id, "mac": primary.mac,
                "private-ipv4": primary.primary_ip, "region-id": inst.region_id,
                "vpc-cidr-block": str(vpc.cidr), "vpc-id": inst.vpc_id,
                "vswitch-cidr-block": str(vsw.pool.network), "vswitch-id": inst.vswitch_id,
                "zone-id": inst.zone_id, "instance/instance-type": inst.itype.instance_type_id,
                "instance": _listing(("instance-type",)), "network": _listing(("interfaces/",)),
                "network/interfaces": _listing(("macs/",)),
            }
            if not parts:
                return _listing(_ROOT)
            key = "/".join(parts)
            if key in simple:
                return simple[key]
            if parts[:3] != ["network", "interfaces", "macs"]:
                return None
            return self._mac_entry(self._visible_state(instance_id), parts[3:], str(vpc.cidr))

    @staticmethod
    def _mac_entry(state: MetaState, rest: list[str], vpc_cidr: str) -> str | None:
        if not rest:
            return _listing([f"{row[0]}/" for row in state])
        row = next((r for r in state if r[0] == rest[0].lower()), None)
        if row is None or len(rest) > 2:
            return None
        if len(rest) == 1:
            return _listing(_MAC_DIR)
        _mac, eni_id, vswitch_id, cidr, gateway, vpc_id, ips = row
        netmask = str(ipaddress.IPv4Network(cidr).netmask)
        values = {
            "gateway": gateway, "netmask": netmask, "network-interface-id": eni_id,
            "primary-ip-address": ips[0], "private-ipv4s": json.dumps(list(ips),
                                                                       separators=(",", ":")),
            "vpc-cidr-block": vpc_cidr, "vpc-id": vpc_id, "vswitch-cidr-block": cidr,
            "vswitch-id": vswitch_id,
        }
        return values.get(rest[1])
