"""Per-pod bandwidth from annotations ``kubernetes.io/ingress-bandwidth`` / ``egress-bandwidth``
or upstream Terway's ``k8s.aliyun.com/ingress-bandwidth`` / ``egress-bandwidth`` (the latter wins
when a pod carries both).

Values are Kubernetes quantities in bits per second (``10M``, ``1Gi``, ``500k``). An annotation
wins over the CNI runtimeConfig value; a malformed one is ignored with a warning (a pod must not
fail to start because of a typo in a limit — upstream does the same).
"""

from __future__ import annotations

import re

from terway.daemon import logfmt
from terway.daemon.ports import PodMeta

INGRESS = "kubernetes.io/ingress-bandwidth"
EGRESS = "kubernetes.io/egress-bandwidth"
ALIYUN_INGRESS = "k8s.aliyun.com/ingress-bandwidth"
ALIYUN_EGRESS = "k8s.aliyun.com/egress-bandwidth"
_KEYS = ((INGRESS, ALIYUN_INGRESS), (EGRESS, ALIYUN_EGRESS))   # later wins
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)$")
log = logfmt.get("bandwidth")


def parse_quantity(text: str) -> int:
    """``"10M"`` → 10000000; ValueError naming the value otherwise."""
    m = _QUANTITY.match(text.strip())
    if not m:
        raise ValueError(f"not a bandwidth quantity: {text!r}")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])


def pod_bandwidth(meta: PodMeta | None, ingress_bps: int | None,
                  egress_bps: int | None) -> tuple[int, int]:
    """(ingress, egress) bits/s; 0 = unlimited."""
    out = [ingress_bps or 0, egress_bps or 0]
    annotations = meta.annotations if meta is not None else {}
    for i, keys in enumerate(_KEYS):
        for key in keys:
            if key not in annotations:
                continue
            try:
                out[i] = parse_quantity(annotations[key])
            except ValueError as exc:
                log.warning("ignoring bandwidth annotation", extra=logfmt.fields(
                    annotation=key, error=str(exc)))
    return out[0], out[1]
