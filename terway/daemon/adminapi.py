"""Answers to terway-cli (``Admin.*`` methods): read-only views of the store and the core.

``mapping`` cross-checks the two owners' views, as upstream's did: a pod record whose address the
pool does not hold for that pod, or a pool address owned by a key the store does not know, is an
``Error`` row (and ``terway-cli mapping`` exits 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from terway.daemon.node import LoadedConfig, NodeInfo, redacted_json
from terway.daemon.service import PodService
from terway.daemon.store import PodRecord, Store
from terway.ipam import IpamCore, MappingRow
from terway.limits import NodeCapacity
from terway.rpc import admin, messages

_ORDER = {"Normal": 0, "Idle": 1, "Error": 2}


@dataclass
class AdminView:
    """What the admin handlers read; ``config`` is a callable because it changes on reload."""

    core: IpamCore
    store: Store
    service: PodService
    node: NodeInfo
    capacity: NodeCapacity
    config: Callable[[], LoadedConfig]
    now: Callable[[], float] = time.monotonic     # the core's clock (blocked_until is on it)
    wall: Callable[[], float] = time.time

    async def handle(self, method: str, request: Any) -> Any:
        match method:
            case "Admin.Mapping":
                return admin.MappingReply(mapping_entries(self.core.mapping(), self.store.pods()))
            case "Admin.Pool":
                return self.pool()
            case "Admin.Config":
                conf = self.config()
                return admin.ConfigReply(conf.source, redacted_json(conf.eni_conf),
                                         list(conf.eni_conf.warnings))
            case "Admin.Metadata":
                n, c = self.node, self.capacity
                return admin.MetadataReply(
                    n.instance_id, n.instance_type, n.region_id, n.zone_id, n.primary_mac,
                    list(self.core_settings_vswitches()), c.max_enis, c.ips_per_eni,
                    c.capacity)
            case "Admin.Show":
                return self.show(request.pod)
        raise messages.RpcError(messages.ERR_UNKNOWN_METHOD, messages.CLASS_INVALID,
                                f"unknown {method!r}")

    def core_settings_vswitches(self) -> tuple[str, ...]:
        conf = self.config().eni_conf
        return conf.vswitches_for_zone(self.node.zone_id) or (self.node.primary_vswitch_id,)

    def pool(self) -> admin.PoolReply:
        s = self.core.stats()
        status = self.service.status()
        now, wall = self.now(), self.wall()
        enis = [admin.EniSummary(e.eni_id, e.mac, e.vswitch_id, e.state, len(e.ips), e.used,
                                 *_blocked(e.blocked_until, now, wall))
                for e in self.core.enis()]
        return admin.PoolReply(s.total, s.used, s.idle, s.reserved, s.disposed, s.in_flight,
                               s.pending, s.eni_count, self.capacity.capacity, status.ready,
                               status.message, enis)

    def show(self, pod: str) -> admin.ShowReply:
        recs = self.store.pods()
        match = [r for r in recs if r.key == pod] or [r for r in recs if r.name == pod]
        if not match:
            raise messages.RpcError(messages.ERR_UNKNOWN_CONTAINER, messages.CLASS_NOT_FOUND,
                               f"pod {pod!r}: no record on this node")
        if len(match) > 1:
            raise messages.invalid(f"pod {pod!r} is ambiguous: "
                              f"{', '.join(r.key for r in match)}; use namespace/name")
        r = match[0]
        return admin.ShowReply(
            r.namespace, r.name, r.container_id, r.netns, r.ifname, r.ip_type,
            [admin.ShowResource(x.type, x.id, x.eni_id, x.mac, x.ip) for x in r.resources],
            dict(r.extra))


def _blocked(until: float | None, now: float, wall: float
             ) -> tuple[float | None, str, float | None]:
    """A core-clock deadline → (itself, the same moment in UTC, seconds left): terway-cli prints
    a time people can read, not the daemon's monotonic seconds."""
    if until is None:
        return None, "", None
    left = until - now
    at = datetime.fromtimestamp(wall + left, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return until, at, left


def mapping_entries(rows: list[MappingRow], pods: list[PodRecord]) -> list[admin.MappingEntry]:
    """Join the pool's rows with the store's records; disagreements become Error rows."""
    by_ip = {row.ip: row for row in rows}
    records = {p.key: p for p in pods}
    out: list[admin.MappingEntry] = []
    for row in rows:
        ns, _, name = row.pod_key.partition("/")
        rec = records.get(row.pod_key) if row.pod_key else None
        if row.status == "Normal" and (rec is None or
                                       all(r.ip != row.ip for r in rec.resources)):
            out.append(admin.MappingEntry("Error", name, ns, "", row.res_id, row.eni_id,
                                          "pool says owned, no record in the store"))
        else:
            out.append(admin.MappingEntry(row.status, name, ns, row.res_id, row.res_id,
                                          row.eni_id, "pool error" if row.status == "Error"
                                          else ""))
    for rec in pods:
        for res in rec.resources:
            held = by_ip.get(res.ip)
            if held is None or held.pod_key != rec.key:
                out.append(admin.MappingEntry(
                    "Error", rec.name, rec.namespace, res.id, held.res_id if held else "",
                    res.eni_id, "record holds an address the pool does not give this pod"))
    return sorted(out, key=lambda e: _ORDER.get(e.status, 3))
