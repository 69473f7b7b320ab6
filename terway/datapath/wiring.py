"""Wire, unwire and check a pod in the mode the daemon names: the mode's module comes from the
registry (terway/datapath/modes.py), imported on first use."""

from __future__ import annotations

import importlib
from types import ModuleType

from terway.datapath import modes, veth
from terway.datapath.types import DatapathError, PodLinks, PodNetwork, PodSpec


def _impl(mode: str) -> tuple[modes.Mode, ModuleType]:
    try:
        rules = modes.get(mode)
    except modes.UnknownMode as exc:
        raise DatapathError(str(exc)) from None
    return rules, importlib.import_module(f"terway.datapath.{rules.module}")


def setup_pod(mode: str, pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> PodLinks:
    """Wire the pod. Safe to retry after a partial failure. Raises DatapathError, NetnsGone."""
    links: PodLinks = _impl(mode)[1].setup(pod, net, host_netns)
    return links


def teardown_pod(mode: str, pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> None:
    """Undo ``setup_pod``; idempotent, and works when ``pod.netns`` is gone or empty. A whole
    ENI is found by its MAC, a pod on a shared ENI by its address."""
    rules, impl = _impl(mode)
    impl.teardown(pod, net.eni_mac if rules.whole_eni else net.pod_ip, host_netns)


def check_pod(mode: str, pod: PodSpec, net: PodNetwork, host_netns: str | None = None) -> list[str]:
    """Findings for CNI CHECK (empty list: all in place)."""
    findings: list[str] = _impl(mode)[1].check(pod, net, host_netns)
    return findings


def wired_pods(host_netns: str | None = None) -> dict[str, str]:
    """{pod IP: host interface} of the pods the node's routes lead to (the host-veth modes)."""
    return veth.wired_pods(host_netns)
