"""Per-pod bandwidth with a tc token bucket filter, upstream's parameters.

Units: the rate is given in bits/s (the ``kubernetes.io/*-bandwidth`` annotations and
``runtimeConfig.bandwidth`` are bits/s); the kernel's TBF counts bytes. ``burst`` is one
millisecond of traffic at the rate, in bytes, but at least ``mtu + 1500`` bytes;
``limit`` (queue size, bytes) holds 25 ms of traffic plus the burst.
"""

from __future__ import annotations

import errno
import math
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

LATENCY_MS = 25
ROOT_HANDLE = 0x10000  # 1:
TC_H_ROOT = 0xFFFFFFFF


def tbf_burst(rate_bps: int, mtu: int) -> int:
    """Bucket size in bytes: max(rate_bytes_per_s / 1000, mtu + 1500)."""
    return max(math.ceil(rate_bps / 8 / 1000), mtu + 1500)


def tbf_limit(rate_bps: int, mtu: int) -> int:
    """Queue size in bytes: 25 ms at the rate plus the burst."""
    return math.ceil(rate_bps / 8 * LATENCY_MS / 1000) + tbf_burst(rate_bps, mtu)


def set_rate(ipr: IPRoute, ifindex: int, rate_bps: int, mtu: int) -> None:
    """Shape what ``ifindex`` transmits to ``rate_bps`` (0: remove any shaping)."""
    if rate_bps <= 0:
        clear(ipr, ifindex)
        return
    ipr.tc(
        "replace",
        "tbf",
        ifindex,
        ROOT_HANDLE,
        rate=f"{rate_bps}bit",
        burst=tbf_burst(rate_bps, mtu),
        latency=f"{LATENCY_MS}ms",
    )


def clear(ipr: IPRoute, ifindex: int) -> None:
    """Remove the root TBF if there is one (deleting a missing root qdisc is EINVAL)."""
    if not current_rate(ipr, ifindex):
        return
    try:
        ipr.tc("del", index=ifindex, handle=ROOT_HANDLE, parent=TC_H_ROOT)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            raise


def current_rate(ipr: IPRoute, ifindex: int) -> int:
    """The root TBF's rate in bits/s, 0 when there is none."""
    for msg in ipr.get_qdiscs(index=ifindex):
        if msg.get_attr("TCA_KIND") != "tbf" or msg["parent"] != TC_H_ROOT:
            continue
        opts: Any = msg.get_attr("TCA_OPTIONS")
        parms = opts.get_attr("TCA_TBF_PARMS") if opts else None
        if parms:
            return int(parms["rate"]) * 8
    return 0
