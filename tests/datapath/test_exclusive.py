"""Exclusive ENI: the ENI (a veth stand-in here) moves into the pod and back."""

from __future__ import annotations

import json

import pytest

from terway.datapath import EXCLUSIVE, PodNetwork, PodSpec, check_pod, setup_pod, teardown_pod
from tests.datapath.topology import ENI2_MAC, GATEWAY, NODE_IP, Node, ping, sh

pytestmark = pytest.mark.privileged

SERVICE_CIDR = "172.21.0.0/20"


def net(disable_host_peer: bool = False) -> PodNetwork:
    return PodNetwork(
        "10.9.0.31",
        GATEWAY,
        ENI2_MAC,
        service_cidr=SERVICE_CIDR,
        host_stack_cidrs=("169.254.20.10/32",),   # upstream chart's example (node-local DNS)
        disable_host_peer=disable_host_peer,
    )


def test_eni_moves_into_pod_and_back(node: Node) -> None:
    node.plug("eth2", ENI2_MAC)
    pod = PodSpec("default", "db-0", node.pod_ns("p1"))
    ns = pod.netns.rsplit("/", 1)[1]
    links = setup_pod(EXCLUSIVE, pod, net(), node.node)
    assert links.pod_mac == ENI2_MAC
    assert "eth2" not in sh("ip", "-n", node.node, "-br", "link")
    pod_link = sh("ip", "-n", ns, "addr", "show", "eth0")
    assert ENI2_MAC in pod_link and "inet 10.9.0.31/32" in pod_link
    routes = sh("ip", "-n", ns, "route")
    assert "default via 10.9.0.253 dev eth0 proto static onlink" in routes
    assert f"{SERVICE_CIDR} via 169.254.1.1 dev veth1 proto static src 10.9.0.31 onlink" in routes
    assert links.host_ifname in sh("ip", "-n", node.node, "-br", "link")
    assert check_pod(EXCLUSIVE, pod, net(), node.node) == []
    node.route_pod("10.9.0.31", ENI2_MAC)
    assert ping(ns, GATEWAY)
    assert f"{NODE_IP} via 169.254.1.1 dev veth1" in routes   # found by the datapath itself
    assert "169.254.20.10 via 169.254.1.1 dev veth1" in routes
    assert ping(ns, NODE_IP)  # through the host peer veth
    assert ping(node.node, "10.9.0.31")
    setup_pod(EXCLUSIVE, pod, net(), node.node)  # retry: the ENI is already in the pod
    teardown_pod(EXCLUSIVE, pod, net(), node.node)
    teardown_pod(EXCLUSIVE, pod, net(), node.node)
    host_links = sh("ip", "-n", node.node, "-br", "link")
    assert "eni020000000102" in host_links and links.host_ifname not in host_links
    assert "eth0" not in sh("ip", "-n", ns, "-br", "link")
    assert "inet " not in sh("ip", "-n", node.node, "addr", "show", "eni020000000102")


def test_setup_again_keeps_the_live_pods_host_peer(node: Node) -> None:
    """GC's re-sync re-runs setup: the pod's veth1 and its host end stay (no gap for Service
    traffic), a deleted route comes back."""
    node.plug("eth2", ENI2_MAC)
    pod = PodSpec("default", "db-2", node.pod_ns("p1"))
    ns = pod.netns.rsplit("/", 1)[1]
    links = setup_pod(EXCLUSIVE, pod, net(), node.node)
    before = (index_of(node.node, links.host_ifname), index_of(ns, "veth1"))
    sh("ip", "-n", ns, "route", "del", SERVICE_CIDR)
    setup_pod(EXCLUSIVE, pod, net(), node.node)
    assert (index_of(node.node, links.host_ifname), index_of(ns, "veth1")) == before
    assert check_pod(EXCLUSIVE, pod, net(), node.node) == []
    assert f"{SERVICE_CIDR} via 169.254.1.1 dev veth1" in sh("ip", "-n", ns, "route")


def index_of(netns: str, name: str) -> int:
    return int(json.loads(sh("ip", "-j", "-n", netns, "link", "show", name))[0]["ifindex"])


def test_disable_host_peer(node: Node) -> None:
    node.plug("eth2", ENI2_MAC)
    pod = PodSpec("default", "db-1", node.pod_ns("p1"))
    links = setup_pod(EXCLUSIVE, pod, net(disable_host_peer=True), node.node)
    assert links.host_ifname == ""
    assert "veth1" not in sh("ip", "-n", pod.netns.rsplit("/", 1)[1], "-br", "link")


def test_teardown_after_pod_netns_is_gone(node: Node) -> None:
    node.plug("eth2", ENI2_MAC)
    pod = PodSpec("default", "db-2", node.pod_ns("p1"))
    links = setup_pod(EXCLUSIVE, pod, net(), node.node)
    sh("ip", "netns", "del", pod.netns.rsplit("/", 1)[1])
    # A real NIC returns to the root netns (teardown moves it back to the node); the veth
    # stand-in is destroyed with the netns. Either way teardown succeeds and cleans the host.
    teardown_pod(EXCLUSIVE, pod, net(), node.node)
    assert links.host_ifname not in sh("ip", "-n", node.node, "-br", "link")
