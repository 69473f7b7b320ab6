"""veth policy routing on an emulated node (real netns, real packets)."""

from __future__ import annotations

import json

import pytest

from terway.datapath import (
    VETH,
    PodNetwork,
    PodSpec,
    check_pod,
    eni_table,
    host_veth_name,
    setup_pod,
    teardown_pod,
)
from tests.datapath.topology import ENI_MAC, GATEWAY, NODE_IP, Node, ping, sh

pytestmark = pytest.mark.privileged


def net(ip: str, **kw: int) -> PodNetwork:
    return PodNetwork(pod_ip=ip, gateway=GATEWAY, eni_mac=ENI_MAC, prefix_len=24, **kw)


def eni_index(node: Node) -> int:
    links = json.loads(sh("ip", "-j", "-n", node.node, "link", "show", "eth1"))
    return int(links[0]["ifindex"])


def test_setup_wires_routes_rules_table_neighbour(node: Node) -> None:
    pod = PodSpec("default", "web-0", node.pod_ns("p1"))
    links = setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    host_if = host_veth_name("default", "web-0")
    table = eni_table(eni_index(node))
    assert links.host_ifname == host_if and links.table == table
    rules = sh("ip", "-n", node.node, "rule")
    assert "512:\tfrom all to 10.9.0.11 lookup main" in rules
    assert f"2048:\tfrom 10.9.0.11 lookup {table}" in rules
    assert f"10.9.0.11 dev {host_if} proto static scope link" in sh(
        "ip", "-n", node.node, "route"
    )
    assert "default via 10.9.0.253 dev eth1 proto static onlink" in sh(
        "ip", "-n", node.node, "route", "show", "table", str(table)
    )
    pod_ns = pod.netns.rsplit("/", 1)[1]
    assert "inet 10.9.0.11/32" in sh("ip", "-n", pod_ns, "addr", "show", "eth0")
    assert "default via 169.254.1.1 dev eth0 proto static onlink" in sh(
        "ip", "-n", pod_ns, "route"
    )
    neigh = sh("ip", "-n", pod_ns, "neigh", "show", "169.254.1.1")
    assert f"lladdr {links.host_mac} PERMANENT" in neigh
    assert links.pod_mac in sh("ip", "-n", pod_ns, "link", "show", "eth0")
    assert check_pod(VETH, pod, net("10.9.0.11"), node.node) == []


def test_packets_flow_to_gateway_node_and_other_pod(node: Node) -> None:
    p1 = PodSpec("default", "a", node.pod_ns("p1"))
    p2 = PodSpec("default", "b", node.pod_ns("p2"))
    setup_pod(VETH, p1, net("10.9.0.11"), node.node)
    setup_pod(VETH, p2, net("10.9.0.12"), node.node)
    node.route_pod("10.9.0.11")
    ns1 = p1.netns.rsplit("/", 1)[1]
    assert ping(ns1, GATEWAY), "pod → vSwitch gateway through the ENI"
    assert ping(ns1, NODE_IP), "pod → node"
    assert ping(ns1, "10.9.0.12"), "pod → pod on the same node"
    assert ping(node.node, "10.9.0.12"), "node → pod"


def test_strict_rp_filter_on_all_is_lifted(node: Node) -> None:
    """The kernel uses max(all, link): an ENI with rp_filter 0 on a node whose distribution
    sets all=1 still filters. Issue 10: set on the ENI and the veth only."""
    for scope in ("all", "default"):
        sh("ip", "netns", "exec", node.node, "sysctl", "-qw", f"net.ipv4.conf.{scope}.rp_filter=1")
    p1 = PodSpec("default", "a", node.pod_ns("p1"))
    setup_pod(VETH, p1, net("10.9.0.11"), node.node)
    for scope in ("all", "default"):
        value = sh("ip", "netns", "exec", node.node, "sysctl", "-n",
                   f"net.ipv4.conf.{scope}.rp_filter")
        assert value.strip() == "0", scope
    node.route_pod("10.9.0.11")
    assert ping(p1.netns.rsplit("/", 1)[1], GATEWAY)


def eni_as_set_up(node: Node) -> None:
    """The ENI's own state, which the first pod's setup leaves for good (as upstream's): up,
    the node IP/32 on it (tests/datapath/test_eni_setup.py)."""
    sh("ip", "-n", node.node, "link", "set", "eth1", "up")
    sh("ip", "-n", node.node, "addr", "add", f"{NODE_IP}/32", "dev", "eth1")


def test_teardown_leaves_nothing_and_is_idempotent(node: Node) -> None:
    eni_as_set_up(node)
    before = node.snapshot()
    pods = [PodSpec("default", f"p{i}", node.pod_ns(f"p{i}")) for i in (1, 2)]
    for i, pod in enumerate(pods):
        setup_pod(VETH, pod, net(f"10.9.0.{11 + i}", ingress_bps=10_000_000), node.node)
    teardown_pod(VETH, pods[0], net("10.9.0.11"), node.node)
    table = str(eni_table(eni_index(node)))
    assert "default via" in sh("ip", "-n", node.node, "route", "show", "table", table), (
        "table still used by the second pod"
    )
    teardown_pod(VETH, pods[1], net("10.9.0.12"), node.node)
    teardown_pod(VETH, pods[1], net("10.9.0.12"), node.node)  # repeated DEL
    assert node.snapshot() == before
    for pod in pods:
        assert "eth0" not in sh("ip", "-n", pod.netns.rsplit("/", 1)[1], "link")


def test_teardown_when_pod_netns_is_gone(node: Node) -> None:
    eni_as_set_up(node)
    before = node.snapshot()
    pod = PodSpec("default", "gone", node.pod_ns("gone"))
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    sh("ip", "netns", "del", pod.netns.rsplit("/", 1)[1])
    teardown_pod(VETH, pod, net("10.9.0.11"), node.node)
    teardown_pod(VETH, PodSpec("default", "gone", ""), net("10.9.0.11"), node.node)
    assert node.snapshot() == before


def test_setup_is_safe_to_retry(node: Node) -> None:
    pod = PodSpec("default", "retry", node.pod_ns("p1"))
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    rules = sh("ip", "-n", node.node, "rule")
    assert rules.count("10.9.0.11") == 2  # one 512, one 2048: no duplicates
    node.route_pod("10.9.0.11")
    assert ping(pod.netns.rsplit("/", 1)[1], GATEWAY)


def ifindex(netns: str, name: str) -> int:
    return int(json.loads(sh("ip", "-j", "-n", netns, "link", "show", name))[0]["ifindex"])


def test_setup_again_keeps_a_live_pods_veth_and_repairs_the_rest(node: Node) -> None:
    """GC re-runs setup on every live pod: it must not recreate the veth pair (the pod would
    lose its eth0 and its routes meanwhile: 'Network is unreachable' inside the pod)."""
    pod = PodSpec("default", "live", node.pod_ns("p1"))
    ns = pod.netns.rsplit("/", 1)[1]
    host_if = host_veth_name("default", "live")
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    before = (ifindex(node.node, host_if), ifindex(ns, "eth0"))
    sh("ip", "-n", ns, "route", "del", "default")
    sh("ip", "-n", node.node, "route", "del", "10.9.0.11/32")
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    assert (ifindex(node.node, host_if), ifindex(ns, "eth0")) == before
    assert check_pod(VETH, pod, net("10.9.0.11"), node.node) == []
    assert "default via 169.254.1.1 dev eth0" in sh("ip", "-n", ns, "route")
    node.route_pod("10.9.0.11")
    assert ping(ns, GATEWAY) and ping(node.node, "10.9.0.11")


def test_setup_replaces_a_broken_pair(node: Node) -> None:
    """A host veth left without its pod end (e.g. an interrupted ADD's) is not kept."""
    pod = PodSpec("default", "half", node.pod_ns("p1"))
    host_if = host_veth_name("default", "half")
    sh("ip", "-n", node.node, "link", "add", host_if, "type", "veth", "peer", "name", "stray")
    stale = ifindex(node.node, host_if)
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    assert ifindex(node.node, host_if) != stale
    assert check_pod(VETH, pod, net("10.9.0.11"), node.node) == []


def test_setup_refuses_foreign_interface_of_the_same_name(node: Node) -> None:
    pod = PodSpec("default", "clash", node.pod_ns("p1"))
    ns = pod.netns.rsplit("/", 1)[1]
    sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "other")
    with pytest.raises(Exception, match="already exists"):
        setup_pod(VETH, pod, net("10.9.0.11"), node.node)


def test_setup_brings_a_hotplugged_eni_up_and_fails_clearly_without_it(node: Node) -> None:
    assert "state DOWN" in sh("ip", "-n", node.node, "link", "show", "eth1")
    setup_pod(VETH, PodSpec("default", "x", node.pod_ns("p1")), net("10.9.0.11"), node.node)
    assert "DOWN" not in sh("ip", "-n", node.node, "-br", "link", "show", "eth1").split()[1]
    missing = PodNetwork("10.9.0.12", GATEWAY, "02:00:00:00:09:09")
    with pytest.raises(Exception, match="ENI with MAC 02:00:00:00:09:09 not found"):
        setup_pod(VETH, PodSpec("default", "y", node.pod_ns("p2")), missing, node.node)


def test_check_reports_a_missing_rule(node: Node) -> None:
    pod = PodSpec("default", "chk", node.pod_ns("p1"))
    setup_pod(VETH, pod, net("10.9.0.11"), node.node)
    sh("ip", "-n", node.node, "rule", "del", "prio", "2048")
    problems = check_pod(VETH, pod, net("10.9.0.11"), node.node)
    assert any("2048" in p for p in problems)


def test_tbf_on_both_sides(node: Node) -> None:
    pod = PodSpec("default", "bw", node.pod_ns("p1"))
    links = setup_pod(
        VETH, pod, net("10.9.0.11", ingress_bps=10_000_000, egress_bps=20_000_000), node.node
    )
    host_q = sh("tc", "-n", node.node, "qdisc", "show", "dev", links.host_ifname)
    pod_q = sh("tc", "-n", pod.netns.rsplit("/", 1)[1], "qdisc", "show", "dev", "eth0")
    assert "tbf 1: root" in host_q and "rate 10Mbit burst 3000b lat 25ms" in host_q
    assert "tbf 1: root" in pod_q and "rate 20Mbit burst 3000b lat 25ms" in pod_q
