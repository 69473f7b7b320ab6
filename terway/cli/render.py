"""Plain-text rendering for terway-cli; pure functions so tests compare strings."""

from __future__ import annotations

from collections.abc import Sequence

from terway.rpc import admin

MAPPING_HEADER = ("Status", "Pod Name", "Res ID", "Factory Res ID")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns joined by `` | ``, each padded to its widest cell; the last column is not padded.

    This is the seed's ``terway-cli mapping`` layout (status, pod name and Res ID aligned).
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
        lines.append(" | ".join([*cells, row[-1]]))
    return "\n".join(lines) + "\n"


def mapping(entries: Sequence[admin.MappingEntry]) -> str:
    rows = [(e.status, e.pod_name, e.res_id, e.factory_res_id) for e in entries]
    return table(MAPPING_HEADER, rows)


def has_error(entries: Sequence[admin.MappingEntry]) -> bool:
    return any(e.status == "Error" for e in entries)


def pod_entries(entries: Sequence[admin.MappingEntry]) -> list[admin.MappingEntry]:
    return [e for e in entries if e.pod_name]


def pods(entries: Sequence[admin.MappingEntry]) -> str:
    """``terway-cli list``: one row per pod holding an address."""
    rows = [(f"{e.pod_namespace}/{e.pod_name}" if e.pod_namespace else e.pod_name,
             e.res_id.split(".", 1)[0], _ip_of(e.res_id), e.eni_id, e.status)
            for e in pod_entries(entries)]
    return table(("Pod", "MAC", "IP", "ENI", "Status"), rows)


def _ip_of(res_id: str) -> str:
    """``<mac>.<ip>`` → ip (the MAC has no dot; the address has three)."""
    return res_id.split(".", 1)[1] if "." in res_id else ""


def enis(summaries: Sequence[admin.EniSummary]) -> str:
    rows = [(e.eni_id, e.mac, e.vswitch_id, e.status, str(e.ips), str(e.used), blocked(e))
            for e in summaries]
    return table(("ENI", "MAC", "vSwitch", "Status", "IPs", "Used", "Blocked Until"), rows)


def blocked(e: admin.EniSummary) -> str:
    """``2024-05-01T12:00:42Z (in 42s)``; ``(expired)`` once passed; empty when not blocked.
    An older daemon sends only its monotonic seconds, which mean nothing here: ``yes``."""
    if e.blocked_until is None:
        return ""
    if e.blocked_for is None or not e.blocked_until_utc:
        return "yes"
    left = e.blocked_for
    return f"{e.blocked_until_utc} ({'in ' + duration(left) if left > 0 else 'expired'})"


def duration(seconds: float) -> str:
    """42s, 9m30s, 2h5m: as kubectl prints ages."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    return f"{s // 3600}h{s % 3600 // 60}m" if s % 3600 // 60 else f"{s // 3600}h"


def pool(reply: admin.PoolReply) -> str:
    state = "ready" if reply.ready else f"not ready: {reply.message}"
    head = (f"status: {state}\n"
            f"total: {reply.total}  used: {reply.used}  idle: {reply.idle}  "
            f"reserved: {reply.reserved}  in flight: {reply.in_flight}  "
            f"pending: {reply.pending}  disposed: {reply.disposed}  "
            f"enis: {reply.eni_count}  capacity: {reply.capacity}\n")
    return head + enis(reply.enis) if reply.enis else head


def metadata(reply: admin.MetadataReply) -> str:
    return "".join(f"{k}: {v}\n" for k, v in (
        ("instance-id", reply.instance_id), ("instance-type", reply.instance_type),
        ("region-id", reply.region_id), ("zone-id", reply.zone_id),
        ("primary-mac", reply.primary_mac), ("vswitches", ",".join(reply.vswitch_ids)),
        ("max-enis", reply.max_enis), ("ips-per-eni", reply.ips_per_eni),
        ("max-pods", reply.max_pods)))


def show(reply: admin.ShowReply) -> str:
    head = "".join(f"{k}: {v}\n" for k, v in (
        ("pod", f"{reply.namespace}/{reply.name}"), ("container-id", reply.container_id),
        ("netns", reply.netns), ("ifname", reply.ifname), ("ip-type", reply.ip_type),
        *sorted(reply.extra.items())))
    rows = [(r.type, r.id, r.eni_id, r.ip) for r in reply.resources]
    return head + table(("Type", "Res ID", "ENI", "IP"), rows)
