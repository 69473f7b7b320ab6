"""IPVLAN datapath: needs the ipvlan kernel module, which this CI kernel lacks (runs in a VM)."""

from __future__ import annotations

import subprocess

import pytest

from terway.datapath import IPVLAN, PodNetwork, PodSpec, check_pod, setup_pod, teardown_pod
from tests.datapath.topology import ENI_MAC, GATEWAY, Node, ping, sh


def ipvlan_supported() -> bool:
    """ipvlan needs an Ethernet master: ``link lo`` fails on every kernel ("Master is either
    lo or non-ether device"), so probe on a throwaway veth."""
    veth = ["ip", "link", "add", "twipvlprobe0", "type", "veth", "peer", "name", "twipvlprobe1"]
    if subprocess.run(veth, capture_output=True).returncode != 0:
        return False
    probe = ["ip", "link", "add", "twipvlprobe", "link", "twipvlprobe0", "type", "ipvlan",
             "mode", "l2"]
    ok = subprocess.run(probe, capture_output=True).returncode == 0
    subprocess.run(["ip", "link", "del", "twipvlprobe0"], capture_output=True)
    return ok


pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(not ipvlan_supported(), reason="ipvlan missing from this kernel"),
]


def test_ipvlan_slave_in_pod(node: Node) -> None:
    pod = PodSpec("default", "ipv", node.pod_ns("p1"))
    ns = pod.netns.rsplit("/", 1)[1]
    net = PodNetwork("10.9.0.41", GATEWAY, ENI_MAC, prefix_len=24)
    setup_pod(IPVLAN, pod, net, node.node)
    index = sh("ip", "-n", ns, "-o", "link", "show", "eth0").split(":")[0]
    setup_pod(IPVLAN, pod, net, node.node)  # retry, or GC's re-sync of a live pod:
    assert sh("ip", "-n", ns, "-o", "link", "show", "eth0").split(":")[0] == index  # kept
    assert "inet 10.9.0.41/24" in sh("ip", "-n", ns, "addr", "show", "eth0")
    assert "ipvlan" in sh("ip", "-d", "-n", ns, "link", "show", "eth0")
    assert "default via 10.9.0.253 dev eth0" in sh("ip", "-n", ns, "route")
    assert check_pod(IPVLAN, pod, net, node.node) == []
    assert ping(ns, GATEWAY)
    teardown_pod(IPVLAN, pod, net, node.node)
    teardown_pod(IPVLAN, pod, net, node.node)
    assert "eth0" not in sh("ip", "-n", ns, "-br", "link")
    assert "ipvl_" not in sh("ip", "-n", node.node, "-br", "link")
