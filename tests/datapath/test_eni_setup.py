"""The secondary ENI's own set-up (issue 10), as upstream's veth policy-routing datapath does it
(plugin/datapath/policy_router_linux.go, GenerateENICfgForPolicy + nic.Setup): the CNI config's
MTU on the ENI, and the node IP/32 as its only global IPv4 address. IPVLAN: the MTU only (the
node IP goes on the ``ipvl_`` slave). Real namespaces and packets (datapath/topology.py)."""

from __future__ import annotations

import json

import pytest

from terway.datapath import IPVLAN, VETH, PodNetwork, PodSpec, setup_pod, teardown_pod
from terway.datapath.eni import eni_cache
from tests.datapath.test_ipvlan import ipvlan_supported
from tests.datapath.topology import ENI_MAC, GATEWAY, NODE_IP, Node, ping, sh

pytestmark = pytest.mark.privileged


def net(ip: str, mtu: int = 1500) -> PodNetwork:
    return PodNetwork(pod_ip=ip, gateway=GATEWAY, eni_mac=ENI_MAC, prefix_len=24, mtu=mtu)


def eth1(node: Node) -> dict:
    (link,) = json.loads(sh("ip", "-j", "-n", node.node, "addr", "show", "eth1"))
    return dict(link)


def ipv4(link: dict) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    eni_cache.forget()      # each test's node reuses the same netns names


def test_the_eni_gets_the_mtu_and_the_node_ip_as_its_only_address(node: Node) -> None:
    n = node.node
    sh("ip", "-n", n, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
    sh("ip", "-n", n, "addr", "add", "10.9.0.77/24", "dev", "eth1")     # a DHCP client's
    sh("ip", "-n", n, "addr", "add", "169.254.9.9/16", "dev", "eth1")   # link-local: kept
    sh("ip", "-n", n, "link", "set", "eth1", "mtu", "1400")
    pod = PodSpec("default", "a", node.pod_ns("p1"))
    setup_pod(VETH, pod, net("10.9.0.11", mtu=1450), n)
    link = eth1(node)
    assert link["mtu"] == 1450
    assert sorted(ipv4(link)) == sorted([f"{NODE_IP}/32", "169.254.9.9/16"])
    (mine,) = [a for a in link["addr_info"] if a.get("local") == NODE_IP]
    assert mine["scope"] == "global"
    node.route_pod("10.9.0.11")
    ns1 = pod.netns.rsplit("/", 1)[1]
    assert ping(ns1, GATEWAY), "pod → vSwitch gateway through the ENI"
    assert ping(ns1, NODE_IP), "pod → node"
    assert ping(n, "10.9.0.11"), "node → pod"
    # a second pod and a retry change nothing; the ENI state outlives the pods (upstream's too)
    setup_pod(VETH, PodSpec("default", "b", node.pod_ns("p2")), net("10.9.0.12", mtu=1450), n)
    setup_pod(VETH, pod, net("10.9.0.11", mtu=1450), n)
    teardown_pod(VETH, pod, net("10.9.0.11"), n)
    assert eth1(node)["mtu"] == 1450 and f"{NODE_IP}/32" in ipv4(eth1(node))


def test_the_node_ip_is_the_default_routes_address(node: Node) -> None:
    """Kubernetes' choice (upstream's GetHostIP): the default route's link, not the first
    global address of the namespace (here one on ``lo``, dumped before eth0's)."""
    n = node.node
    sh("ip", "-n", n, "addr", "add", "10.77.0.1/32", "dev", "lo")
    sh("ip", "-n", n, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
    setup_pod(VETH, PodSpec("default", "a", node.pod_ns("p1")), net("10.9.0.11"), n)
    assert ipv4(eth1(node)) == [f"{NODE_IP}/32"]


def test_a_new_mtu_reaches_an_eni_already_set_up(node: Node) -> None:
    n = node.node
    setup_pod(VETH, PodSpec("default", "a", node.pod_ns("p1")), net("10.9.0.11"), n)
    assert eth1(node)["mtu"] == 1500
    setup_pod(VETH, PodSpec("default", "b", node.pod_ns("p2")), net("10.9.0.12", mtu=1400), n)
    assert eth1(node)["mtu"] == 1400


@pytest.mark.skipif(not ipvlan_supported(), reason="ipvlan missing from this kernel")
def test_ipvlan_sets_the_enis_mtu_and_leaves_its_addresses(node: Node) -> None:
    n = node.node
    sh("ip", "-n", n, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
    pod = PodSpec("default", "ipv", node.pod_ns("p1"))
    setup_pod(IPVLAN, pod, net("10.9.0.41", mtu=1450), n)
    assert eth1(node)["mtu"] == 1450 and ipv4(eth1(node)) == []
