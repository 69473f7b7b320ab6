"""Per-pod bandwidth, from the pod's annotations or the CNI runtimeConfig, as upstream reads them.

- ``kubernetes.io/ingress-bandwidth`` / ``egress-bandwidth``: Kubernetes quantities in **bits**
  per second (``10M``, ``1Gi``, ``500k``): the same values the runtime passes as the netconf's
  ``runtimeConfig.bandwidth``.
- upstream Terway's (deprecated) ``k8s.aliyun.com/ingress-bandwidth`` / ``egress-bandwidth``:
  **bytes** per second with 1024-based units, case-insensitive (``10M`` = ``10MB`` = ``10MiB`` =
  10 * 2^20 bytes/s = 83,886,080 bits/s); a number without a unit is refused, as upstream does.

Upstream lets the runtime's value win over its own annotation: the ``kubernetes.io`` ones win
here too. A malformed value is ignored (a pod must not fail to start because of a typo in a
limit) and reported: upstream's ``ParseFailed`` event on the pod.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from terway.daemon import logfmt
from terway.daemon.ports import PodMeta

INGRESS = "kubernetes.io/ingress-bandwidth"
EGRESS = "kubernetes.io/egress-bandwidth"
ALIYUN_INGRESS = "k8s.aliyun.com/ingress-bandwidth"
ALIYUN_EGRESS = "k8s.aliyun.com/egress-bandwidth"
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)$")
_BYTE_UNITS = {"B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
               "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40,
               "TIB": 2**40}
_BYTES = re.compile(r"^([0-9]*\.?[0-9]+)([A-Z]+)$")
log = logfmt.get("bandwidth")

OnBad = Callable[[str, str], None]  # (annotation, its value): a value that was ignored


def parse_quantity(text: str) -> int:
    """``"10M"`` → 10000000 (bits/s); ValueError naming the value otherwise."""
    m = _QUANTITY.match(text.strip())
    if not m:
        raise ValueError(f"not a bandwidth quantity: {text!r}")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])


def parse_aliyun(text: str) -> int:
    """Upstream's ``k8s.aliyun.com`` value → bits/s: ``"10M"`` is 10 MiB/s."""
    m = _BYTES.match(text.strip().upper())
    if not m or m.group(2) not in _BYTE_UNITS or float(m.group(1)) <= 0:
        raise ValueError(f"not a bandwidth in bytes/s like 10M or 512KB: {text!r}")
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2)]) * 8


# (annotation, parser), for ingress and for egress, in rising precedence (the last one wins)
_SOURCES = (((ALIYUN_INGRESS, parse_aliyun), (INGRESS, parse_quantity)),
            ((ALIYUN_EGRESS, parse_aliyun), (EGRESS, parse_quantity)))


def pod_bandwidth(meta: PodMeta | None, ingress_bps: int | None, egress_bps: int | None,
                  on_bad: OnBad | None = None) -> tuple[int, int]:
    """(ingress, egress) bits/s; 0 = unlimited. The runtime's values (``*_bps``) win."""
    out = [0, 0]
    annotations = meta.annotations if meta is not None else {}
    for i, sources in enumerate(_SOURCES):
        for key, parse in sources:
            if key not in annotations:
                continue
            try:
                out[i] = parse(annotations[key])
            except ValueError as exc:
                log.warning("ignoring bandwidth annotation", extra=logfmt.fields(
                    annotation=key, error=str(exc)))
                if on_bad is not None:
                    on_bad(key, annotations[key])
    return ingress_bps or out[0], egress_bps or out[1]
