"""Adapter from the daemon's ``Datapath`` port to terway/datapath (pyroute2).

Imported only when the real datapath is used, so a daemon run with ``--datapath none`` (the
emulator without network namespaces) never loads pyroute2.
"""

from __future__ import annotations

import ipaddress

from terway import datapath as dp
from terway.daemon.ports import PodNetwork, SetupResult


def _spec(net: PodNetwork) -> dp.PodSpec:
    ns, _, name = net.pod_key.partition("/")
    return dp.PodSpec(pod_namespace=ns, pod_name=name, netns=net.netns, ifname=net.ifname)


def _net(net: PodNetwork) -> dp.PodNetwork:
    prefix = ipaddress.ip_network(net.vswitch_cidr, strict=False).prefixlen \
        if net.vswitch_cidr else 32
    return dp.PodNetwork(
        pod_ip=net.ip, gateway=net.gateway, eni_mac=net.eni_mac, prefix_len=prefix,
        mtu=net.mtu, ingress_bps=net.ingress_bps, egress_bps=net.egress_bps,
        service_cidr=net.service_cidr, disable_host_peer=net.disable_host_peer,
        host_stack_cidrs=net.host_stack_cidrs)


class RealDatapath:
    """Wires pods with pyroute2; ``host_netns`` names the node's netns (None = our own)."""

    def __init__(self, host_netns: str | None = None) -> None:
        self.host_netns = host_netns

    def setup(self, net: PodNetwork) -> SetupResult:
        links = dp.setup_pod(net.datapath, _spec(net), _net(net), self.host_netns)
        return SetupResult(pod_mac=links.pod_mac, host_ifname=links.host_ifname,
                           host_mac=links.host_mac, eni_ifindex=links.eni_ifindex)

    def teardown(self, net: PodNetwork) -> None:
        dp.teardown_pod(net.datapath, _spec(net), _net(net), self.host_netns)

    def check(self, net: PodNetwork) -> list[str]:
        return dp.check_pod(net.datapath, _spec(net), _net(net), self.host_netns)

    def wired_pods(self) -> dict[str, str]:
        return dp.wired_pods(self.host_netns)
