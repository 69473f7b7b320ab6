"""What a NetworkPolicy asks that this node's Felix will not enforce (pure: unit-tested).

Felix implements all of ``networking.k8s.io/v1``, but it runs IPv4-only here
(``FELIX_IPV6SUPPORT=false``, terway/policy/felix.py: the VPC data path is IPv4): an IPv6
``ipBlock`` in a rule is dropped from that rule by Felix and neither widens nor narrows the IPv4
traffic the rest of the policy describes. Saying so, on the policy, is kinder than silence.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def problems(spec: dict[str, Any]) -> list[str]:
    """One line per construct of the policy ``spec`` (camelCase, as the API serves it) that is
    not enforced, naming where it is."""
    out: list[str] = []
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, peer in enumerate((rule or {}).get(peers_key) or []):
                block = (peer or {}).get("ipBlock") or {}
                where = f"{direction}[{i}].{peers_key}[{j}].ipBlock"
                out += [f"{where}: IPv6 {cidr} is not enforced (this cluster's policy is "
                        "IPv4-only); the rest of the policy is"
                        for cidr in _cidrs(block) if _is_v6(cidr)]
    return out


def _cidrs(block: dict[str, Any]) -> list[str]:
    return [c for c in [block.get("cidr"), *(block.get("except") or [])] if isinstance(c, str)]


def _is_v6(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).version == 6
    except ValueError:
        return False            # the API server validates CIDRs; not ours to judge
