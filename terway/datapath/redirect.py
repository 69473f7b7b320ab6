"""IPVLAN host-stack redirect: Service and ``host_stack_cidrs`` traffic from pods enters the node.

An IPVLAN pod's packets leave through the ENI without crossing the node's IP stack, so
kube-proxy never sees a ClusterIP packet and node-local addresses (``host_stack_cidrs``) are
reached, if at all, through the VPC. Upstream's tc (non-eBPF) IPVLAN path fixes that on the ENI
itself, and so do we::

    tc qdisc add dev ethN clsact
    tc filter add dev ethN egress prio 40000 protocol ip \\
        u32 match ip dst $CIDR action mirred ingress redirect dev ipvl_X   # one per CIDR

A matching packet is taken off the ENI's transmit path and handed to the host slave ``ipvl_X``
as if it had been received there; the node's stack (kube-proxy's rules, a local address)
answers, and the reply goes back through ``podIP/32 dev ipvl_X``.

Filters at priority 40000 on the ENI's egress hook are ours: set-up keeps those that match
(GC re-runs it on live pods every period, so an unchanged filter must never be touched),
deletes the others (stale CIDRs, duplicates, a host slave that was re-created with a new
ifindex) and adds what is missing. Priority 40000 is what upstream's ``toU32Filter`` installs
(its stale check compares against 4000, so upstream never removes its own stale filters).
Upstream chains ``tunnel_key unset`` and ``skbedit ptype host`` before ``mirred``; a pod's
packet carries no tunnel metadata and is already ``PACKET_HOST`` (the pod's stack built it), so
``mirred`` alone does the same here, without needing act_tunnel_key/act_skbedit in the kernel
(pyroute2 has no tunnel_key action either). Upstream's filters therefore count as stale here
and are replaced by ours. IPv4 only, as upstream (an IPv6 service CIDR is not redirected).
The filters (and the clsact qdisc, when nothing else hangs on it) go with the host slave, when
the ENI's last IPVLAN pod is torn down; upstream leaves them behind.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from terway.datapath.types import DatapathError, PodNetwork

PRIORITY = 40000
ETH_P_IP = 0x0800
DST_OFFSET = 16  # the IPv4 header's destination address
TC_H_CLSACT = 0xFFFFFFF1
CLSACT_INGRESS = 0xFFFFFFF2
CLSACT_EGRESS = 0xFFFFFFF3
TC_ACT_STOLEN = 4
TCA_INGRESS_REDIR = 3  # mirred's eaction "ingress redirect"
_SEL_HEADER = struct.Struct("=BBBxHHhhI")  # struct tc_u32_sel, then nkeys x tc_u32_key
_KEY = struct.Struct(">II")  # mask, val (network order); then off, offmask (host order)
_KEY_OFF = struct.Struct("=ii")

Network = ipaddress.IPv4Network


@dataclass(frozen=True)
class Filter:
    """One u32 entry of the ENI's egress hook, as much of it as the redirect cares about."""

    handle: int
    priority: int
    protocol: int
    keys: tuple[tuple[int, int, int], ...]  # (value, mask, offset)
    actions: tuple[tuple[str, int, int, int], ...]  # (kind, mirred eaction, ifindex, verdict)

    def redirects(self, target: int) -> Network | None:
        """The destination CIDR when this is exactly our filter to ``target``, else None."""
        if self.priority != PRIORITY or self.protocol != ETH_P_IP or len(self.keys) != 1:
            return None
        value, mask, offset = self.keys[0]
        if offset != DST_OFFSET or value & ~mask & 0xFFFFFFFF:
            return None
        if self.actions != (("mirred", TCA_INGRESS_REDIR, target, TC_ACT_STOLEN),):
            return None
        try:
            return Network((value, str(ipaddress.IPv4Address(mask))))
        except ValueError:  # a mask that is not a prefix: not ours
            return None


def cidrs(net: PodNetwork) -> list[Network]:
    """What goes to the host stack: the IPv4 service CIDR, then each ``host_stack_cidrs`` entry
    (duplicates once). Checked before anything changes; a bad value names its field."""
    named = [("service_cidr", net.service_cidr)]
    named += [(f"host_stack_cidrs[{i}]", c) for i, c in enumerate(net.host_stack_cidrs)]
    out: list[Network] = []
    for field, value in named:
        if not value.strip():
            continue
        try:
            cidr = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise DatapathError(f"{field}: {value!r} is not a CIDR") from None
        if not isinstance(cidr, Network):
            if field == "service_cidr":
                continue  # upstream redirects the IPv4 service CIDR only
            raise DatapathError(f"{field}: {value!r} is not an IPv4 CIDR")
        if cidr not in out:
            out.append(cidr)
    return out


def ensure(ipr: IPRoute, eni: int, target: int, wanted: list[Network]) -> None:
    """clsact on ``eni`` and exactly one redirect to ``target`` per wanted CIDR at PRIORITY;
    matching filters are left alone, the rest of PRIORITY goes."""
    if wanted:
        ensure_clsact(ipr, eni)
    elif not has_clsact(ipr, eni):
        return
    kept: set[Network] = set()
    for flt in egress_filters(ipr, eni):
        if flt.priority != PRIORITY:
            continue
        cidr = flt.redirects(target)
        if cidr is not None and cidr in wanted and cidr not in kept:
            kept.add(cidr)
            continue
        _delete(ipr, eni, flt)
    for cidr in wanted:
        if cidr not in kept:
            _add(ipr, eni, target, cidr)


def missing(ipr: IPRoute, eni: int, target: int, wanted: list[Network]) -> list[Network]:
    """The wanted CIDRs that no filter redirects to ``target``."""
    if not wanted or not has_clsact(ipr, eni):
        return list(wanted)
    present = {flt.redirects(target) for flt in egress_filters(ipr, eni)}
    return [c for c in wanted if c not in present]


def remove(ipr: IPRoute, eni: int) -> None:
    """Drop every filter at PRIORITY on the ENI's egress; the clsact qdisc too when nothing
    else is attached to it. Idempotent (the ENI may be gone)."""
    if not has_clsact(ipr, eni):
        return
    try:
        ipr.tc("del-filter", index=eni, handle=0, parent=CLSACT_EGRESS, info=_info())
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            raise
    if _dump(ipr, eni, CLSACT_EGRESS) or _dump(ipr, eni, CLSACT_INGRESS):
        return  # someone else's filters
    try:
        ipr.tc("del", "clsact", eni)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            raise


def has_clsact(ipr: IPRoute, eni: int) -> bool:
    try:
        qdiscs = ipr.get_qdiscs(index=eni)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return False
        raise
    return any(q.get_attr("TCA_KIND") == "clsact" for q in qdiscs)


def ensure_clsact(ipr: IPRoute, eni: int) -> None:
    if has_clsact(ipr, eni):
        return
    try:
        ipr.tc("add", "clsact", eni)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise DatapathError(f"cannot add a clsact qdisc to ENI ifindex {eni}: {exc}") from exc
        if not has_clsact(ipr, eni):  # an ingress qdisc holds ffff: already
            raise DatapathError(
                f"ENI ifindex {eni} has an ingress qdisc: the host-stack redirect needs clsact"
            ) from exc


def egress_filters(ipr: IPRoute, eni: int) -> list[Filter]:
    """The ENI's egress u32 entries that carry a selector (not u32's table headers)."""
    out = []
    for msg in _dump(ipr, eni, CLSACT_EGRESS):
        if msg.get_attr("TCA_KIND") != "u32":
            continue
        sel = msg.get_nested("TCA_OPTIONS", "TCA_U32_SEL")
        if sel is None:
            continue
        info = int(msg["info"])
        out.append(Filter(
            handle=int(msg["handle"]),
            priority=info >> 16,
            protocol=socket.ntohs(info & 0xFFFF),
            keys=_keys(sel),
            actions=_actions(msg.get_nested("TCA_OPTIONS", "TCA_U32_ACT")),
        ))
    return out


def _dump(ipr: IPRoute, eni: int, parent: int) -> list[Any]:
    try:
        return list(ipr.get_filters(index=eni, parent=parent))
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.EINVAL, errno.ENOENT):
            return []
        raise


def _keys(sel: Any) -> tuple[tuple[int, int, int], ...]:
    """The selector's keys from its raw bytes (pyroute2 0.9 decodes them 4 bytes off)."""
    raw = bytes(sel.data[sel.offset + 4: sel.offset + sel.length])
    nkeys = _SEL_HEADER.unpack_from(raw)[2]
    keys = []
    for i in range(nkeys):
        at = _SEL_HEADER.size + 16 * i
        if at + 16 > len(raw):
            break
        mask, value = _KEY.unpack_from(raw, at)
        offset = _KEY_OFF.unpack_from(raw, at + 8)[0]
        keys.append((value, mask, offset))
    return tuple(keys)


def _actions(acts: Any) -> tuple[tuple[str, int, int, int], ...]:
    out = []
    for _, act in acts["attrs"] if acts is not None else []:
        kind = str(act.get_attr("TCA_ACT_KIND"))
        parms = None
        if kind == "mirred":
            opts = act.get_attr("TCA_ACT_OPTIONS")
            parms = opts.get_attr("TCA_MIRRED_PARMS") if opts else None
        if parms:
            out.append((kind, int(parms["eaction"]), int(parms["ifindex"]), int(parms["action"])))
        else:
            out.append((kind, 0, 0, 0))
    return tuple(out)


def _info(priority: int = PRIORITY) -> int:
    return (priority << 16) | socket.htons(ETH_P_IP)


def _add(ipr: IPRoute, eni: int, target: int, cidr: Network) -> None:
    key = f"0x{int(cidr.network_address):08x}/0x{int(cidr.netmask):x}+{DST_OFFSET}"
    ipr.tc(
        "add-filter", "u32", eni,
        parent=CLSACT_EGRESS, prio=PRIORITY, protocol=ETH_P_IP, target=0, keys=[key],
        action={"kind": "mirred", "direction": "ingress", "action": "redirect", "ifindex": target},
    )


def _delete(ipr: IPRoute, eni: int, flt: Filter) -> None:
    info = (flt.priority << 16) | socket.htons(flt.protocol)
    try:
        ipr.tc("del-filter", index=eni, handle=flt.handle, parent=CLSACT_EGRESS, info=info)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL):
            raise
