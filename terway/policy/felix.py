"""How ``calico-felix`` is run on a Terway node: its environment, one place.

Felix is configured by ``FELIX_*`` variables (its config file and the datastore's
FelixConfiguration may add to them). The values below are the policy-only profile upstream
Terway runs Felix in (no IP pools, no BGP, no BPF), plus two of ours:

- ``ROUTESYNCDISABLED``: routes to pods are the datapath's (``podIP dev caliX`` and the policy
  rules, terway/datapath/veth.py); Felix would otherwise also own every route of a ``cali*``
  link and delete the route of a pod it has not heard of yet.
- health and metrics on the node's loopback only (the kubelet probes 127.0.0.1 there).
- ``DebugSkipCTLBCleanup``: Felix is built without cgo, so without libbpf (as upstream's
  image builds it); at start its iptables mode would still try to remove a BPF connect-time
  load balancer through libbpf and panic. A Terway node never ran Calico's eBPF dataplane.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

FELIX_BINARY = "calico-felix"
HEALTH_PORT = 9099      # Calico's own default: dashboards and probes expect it
METRICS_PORT = 9091     # Felix's Prometheus default


@dataclass(frozen=True)
class FelixSettings:
    node_name: str
    health_port: int = HEALTH_PORT
    metrics_port: int = METRICS_PORT
    log_level: str = "info"


def felix_env(settings: FelixSettings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment Felix is started with: ``base`` (the container's own, so the
    in-cluster API address and the service-account token path pass through) plus the profile."""
    env = dict(os.environ if base is None else base)
    env.update({
        "FELIX_DATASTORETYPE": "kubernetes",
        "FELIX_FELIXHOSTNAME": settings.node_name,
        "FELIX_INTERFACEPREFIX": "cali",
        "FELIX_IPTABLESBACKEND": "NFT",
        "FELIX_IPV6SUPPORT": "false",
        "FELIX_DEFAULTENDPOINTTOHOSTACTION": "ACCEPT",
        "FELIX_ROUTESYNCDISABLED": "true",
        "FELIX_BPFENABLED": "false",
        "FELIX_XDPENABLED": "false",
        "FELIX_DebugSkipCTLBCleanup": "true",
        "FELIX_USAGEREPORTINGENABLED": "false",
        "FELIX_HEALTHENABLED": "true",
        "FELIX_HEALTHHOST": "127.0.0.1",
        "FELIX_HEALTHPORT": str(settings.health_port),
        "FELIX_PROMETHEUSMETRICSENABLED": "true",
        "FELIX_PROMETHEUSMETRICSHOST": "127.0.0.1",
        "FELIX_PROMETHEUSMETRICSPORT": str(settings.metrics_port),
        "FELIX_LOGSEVERITYSCREEN": settings.log_level,
        "FELIX_LOGSEVERITYSYS": "none",
        "FELIX_LOGFILEPATH": "none",
    })
    return env
