"""IPVLAN datapath traffic between pods, the node and the vSwitch (runs inside the qemu guest).

These need the ipvlan kernel module. On a host without it they skip, and the host-side
``test_vm.py`` boots a guest that has it and runs them there (TERWAY_IN_VM=1: no skipping).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator

import pytest
from datapath.topology import ENI_MAC, GATEWAY, NODE_IP, Node, new_tag, ping, sh

from terway.datapath import IPVLAN, PodNetwork, PodSpec, check_pod, setup_pod, teardown_pod
from terway.datapath.naming import ipvlan_host_name

IN_VM = os.environ.get("TERWAY_IN_VM") == "1"


@functools.cache
def ipvlan_supported() -> bool:
    """Can this kernel make an ipvlan link? The master must be an Ethernet device (not lo)."""
    tag = f"twvp{os.getpid() % 100000}"
    run = functools.partial(subprocess.run, capture_output=True, check=False)
    if run(["ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b"]).returncode:
        return False
    try:
        probe = ["ip", "link", "add", f"{tag}i", "link", f"{tag}a", "type", "ipvlan", "mode", "l2"]
        return run(probe).returncode == 0
    finally:
        run(["ip", "link", "del", f"{tag}a"])


pytestmark = pytest.mark.privileged


@pytest.fixture
def node() -> Iterator[Node]:
    """An emulated node; skips on kernels without ipvlan, except in the guest where it fails."""
    if not ipvlan_supported():
        if IN_VM:
            pytest.fail("TERWAY_IN_VM=1 but the guest kernel cannot create ipvlan links")
        pytest.skip("ipvlan missing from this kernel: runs in the qemu guest (tests/vm/test_vm.py)")
    n = Node(f"v{new_tag()}")
    try:
        n.build()
        yield n
    finally:
        n.destroy()


def pod(node: Node, name: str) -> tuple[PodSpec, str]:
    spec = PodSpec("default", name, node.pod_ns(name))
    return spec, spec.netns.rsplit("/", 1)[1]


def net(ip: str, egress_bps: int = 0) -> PodNetwork:
    return PodNetwork(ip, GATEWAY, ENI_MAC, prefix_len=24, egress_bps=egress_bps)


def eni_index(node: Node) -> int:
    """The ENI's ifindex in the node netns (the host slave is named after it)."""
    return int(sh("ip", "-n", node.node, "-o", "link", "show", "eth1").split(":", 1)[0])


def test_two_pods_on_one_eni_reach_each_other_and_the_gateway(node: Node) -> None:
    (a, ans), (b, bns) = pod(node, "a"), pod(node, "b")
    setup_pod(IPVLAN, a, net("10.9.0.41"), node.node)
    setup_pod(IPVLAN, b, net("10.9.0.42"), node.node)
    assert ping(ans, "10.9.0.42")
    assert ping(bns, "10.9.0.41")
    assert ping(ans, GATEWAY)
    assert ping(bns, GATEWAY)
    link = sh("ip", "-d", "-n", ans, "link", "show", "eth0")
    assert "ipvlan" in link and "mode l2" in link


def test_node_reaches_pod_through_its_host_slave(node: Node) -> None:
    p, ns = pod(node, "h")
    setup_pod(IPVLAN, p, net("10.9.0.43"), node.node)
    slave = ipvlan_host_name(eni_index(node))
    route = sh("ip", "-n", node.node, "route", "show", "10.9.0.43/32")
    assert f"dev {slave}" in route and "scope link" in route
    assert "UP" in sh("ip", "-n", node.node, "-br", "link", "show", slave)
    assert ping(node.node, "10.9.0.43")
    assert ping(ns, NODE_IP)


def test_host_slave_lives_until_the_last_pod_goes(node: Node) -> None:
    (a, _), (b, bns) = pod(node, "a"), pod(node, "b")
    na, nb = net("10.9.0.44"), net("10.9.0.45")
    setup_pod(IPVLAN, a, na, node.node)
    setup_pod(IPVLAN, b, nb, node.node)
    slave = ipvlan_host_name(eni_index(node))
    teardown_pod(IPVLAN, a, na, node.node)
    assert slave in sh("ip", "-n", node.node, "-br", "link")
    assert "10.9.0.44" not in sh("ip", "-n", node.node, "route")
    assert ping(bns, GATEWAY)
    teardown_pod(IPVLAN, b, nb, node.node)
    assert slave not in sh("ip", "-n", node.node, "-br", "link")


def test_egress_rate_is_a_tbf_on_pod_eth0(node: Node) -> None:
    p, ns = pod(node, "bw")
    setup_pod(IPVLAN, p, net("10.9.0.46", egress_bps=20_000_000), node.node)
    qdisc = sh("tc", "-n", ns, "qdisc", "show", "dev", "eth0")
    assert "tbf" in qdisc and "20Mbit" in qdisc


def test_check_reports_a_missing_slave(node: Node) -> None:
    p, ns = pod(node, "c")
    n = net("10.9.0.47")
    setup_pod(IPVLAN, p, n, node.node)
    assert check_pod(IPVLAN, p, n, node.node) == []
    sh("ip", "-n", ns, "link", "del", "eth0")
    assert check_pod(IPVLAN, p, n, node.node) != []
    setup_pod(IPVLAN, p, n, node.node)  # a retry repairs it
    assert check_pod(IPVLAN, p, n, node.node) == []
    assert ping(ns, GATEWAY)
