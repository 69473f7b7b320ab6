"""Adapter from the daemon's ``Datapath`` port to terway/datapath (pyroute2).

Imported only when the real datapath is used, so a daemon run with ``--datapath none`` (the
emulator without network namespaces) never loads pyroute2.
"""

from __future__ import annotations

from terway import datapath as dp
from terway.daemon.ports import PodAttachment, SetupResult


class RealDatapath:
    """Wires pods with pyroute2; ``host_netns`` names the node's netns (None = our own)."""

    def __init__(self, host_netns: str | None = None) -> None:
        self.host_netns = host_netns

    def setup(self, attachment: PodAttachment) -> SetupResult:
        links = dp.setup_pod(attachment.mode, attachment.pod, attachment.net, self.host_netns)
        return SetupResult(pod_mac=links.pod_mac, host_ifname=links.host_ifname,
                           host_mac=links.host_mac, eni_ifindex=links.eni_ifindex)

    def teardown(self, attachment: PodAttachment) -> None:
        dp.teardown_pod(attachment.mode, attachment.pod, attachment.net, self.host_netns)

    def check(self, attachment: PodAttachment) -> list[str]:
        return dp.check_pod(attachment.mode, attachment.pod, attachment.net, self.host_netns)

    def wired_pods(self) -> dict[str, str]:
        return dp.wired_pods(self.host_netns)
