"""The node datapath: wire a pod's netns for one of upstream's three modes.

The daemon calls these (never the CNI plugin): ``setup_pod`` on AllocIP, ``teardown_pod`` on
ReleaseIP, ``check_pod`` on GetIPInfo. Every function takes ``host_netns``: the node's network
namespace by name or path, or None for the daemon's own, so several emulated nodes can share a
machine. All are blocking (netlink round trips, a few ms): call them from a worker thread
(``asyncio.to_thread``).

Importing the package loads only the mode registry (terway/datapath/modes.py); everything else
is loaded on first use (PEP 562). The CNI plugin reads the registry on every ADD without paying
for pyroute2 or dataclasses, and a daemon without a datapath (``--datapath none``) never loads
pyroute2.
"""

from __future__ import annotations

from terway.datapath.modes import EXCLUSIVE, IPVLAN, NAMES, VETH

MODES = NAMES

TYPE_CHECKING = False  # mypy treats this name as True; no ``typing`` import at run time
if TYPE_CHECKING:
    from terway.datapath.naming import eni_table, host_veth_name
    from terway.datapath.netns import NetnsGone
    from terway.datapath.tc import tbf_burst, tbf_limit
    from terway.datapath.types import DatapathError, PodLinks, PodNetwork, PodSpec
    from terway.datapath.wiring import check_pod, setup_pod, teardown_pod, wired_pods

_LAZY = {  # name → the module under terway.datapath that defines it
    "eni_table": "naming", "host_veth_name": "naming", "NetnsGone": "netns",
    "tbf_burst": "tc", "tbf_limit": "tc", "DatapathError": "types", "PodLinks": "types",
    "PodNetwork": "types", "PodSpec": "types", "check_pod": "wiring", "setup_pod": "wiring",
    "teardown_pod": "wiring", "wired_pods": "wiring",
}

__all__ = [
    "EXCLUSIVE",
    "IPVLAN",
    "MODES",
    "VETH",
    "DatapathError",
    "NetnsGone",
    "PodLinks",
    "PodNetwork",
    "PodSpec",
    "check_pod",
    "eni_table",
    "host_veth_name",
    "setup_pod",
    "tbf_burst",
    "tbf_limit",
    "teardown_pod",
    "wired_pods",
]


def __getattr__(name: str) -> object:
    """Load a public name's module on first use (submodules are imported as usual)."""
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'terway.datapath' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"terway.datapath.{module}"), name)
    globals()[name] = value
    return value
