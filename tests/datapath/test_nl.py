"""terway.datapath.nl (raw rtnetlink) and the ENI cache: what the veth hot path relies on."""

from __future__ import annotations

import errno

import pytest

from terway.datapath import VETH, PodNetwork, PodSpec, eni_table, nl, setup_pod, teardown_pod
from terway.datapath.eni import eni_cache
from tests.datapath.topology import ENI_MAC, GATEWAY, Node, sh

pytestmark = pytest.mark.privileged


def test_attributes_are_padded_and_parsed_back() -> None:
    data = nl.nla_str(3, "eth0") + nl.nla_u32(4, 1500) + nl.nla(1, b"\x02\x00\x00")
    assert len(data) % 4 == 0
    attrs = nl.parse_attrs(data)
    assert attrs[3] == b"eth0\0" and attrs[4] == (1500).to_bytes(4, "little")
    assert attrs[1] == b"\x02\x00\x00"


def test_rules_round_trip_and_errors_carry_errno(node: Node) -> None:
    with nl.host_socket(node.node) as sock:
        sock.rule(True, 2048, "10.9.0.77", "src", 1234)
        mine = [r for r in sock.rules() if r.src == "10.9.0.77"]
        assert [(r.priority, r.table, r.dst) for r in mine] == [(2048, 1234, "")]
        with pytest.raises(nl.NetlinkError) as err:
            sock.rule(True, 2048, "10.9.0.77", "src", 1234)
        assert err.value.errno == errno.EEXIST
        sock.rule(False, 2048, "10.9.0.77", "src", 1234)
        sock.rule(False, 2048, "10.9.0.77", "src", 1234)  # absent: fine
    assert "10.9.0.77" not in sh("ip", "-n", node.node, "rule")


def test_link_lookup_by_name_and_index(node: Node) -> None:
    with nl.host_socket(node.node) as sock:
        eth1 = sock.link(name="eth1")
        assert eth1 is not None and eth1.mac == ENI_MAC and eth1.kind == "veth"
        again = sock.link(index=eth1.index)
        assert again is not None and again.name == "eth1"
        assert sock.link(name="nope0") is None
        assert sock.del_link(name="nope0") is False


def test_eni_cache_follows_a_replugged_eni(node: Node) -> None:
    """Detach + re-attach gives the ENI a new ifindex: the cached entry must not be trusted."""
    pod = PodSpec("default", "a", node.pod_ns("p1"))
    net = PodNetwork("10.9.0.11", GATEWAY, ENI_MAC)
    first = setup_pod(VETH, pod, net, node.node)
    teardown_pod(VETH, pod, net, node.node)
    sh("ip", "-n", node.node, "link", "del", "eth1")
    node.plug("eth1", ENI_MAC)
    second = setup_pod(VETH, pod, net, node.node)
    assert second.eni_ifindex != first.eni_ifindex
    assert f"lookup {eni_table(second.eni_ifindex)}" in sh("ip", "-n", node.node, "rule")
    teardown_pod(VETH, pod, net, node.node)


def test_node_netns_recreated_under_the_same_name_gets_fresh_sockets() -> None:
    pod_net = PodNetwork("10.9.0.11", GATEWAY, ENI_MAC)
    for round_ in range(2):
        n = Node(f"nl{round_}").build() if round_ == 0 else Node("nl0").build()
        try:
            pod = PodSpec("default", "a", n.pod_ns("p1"))
            links = setup_pod(VETH, pod, pod_net, n.node)
            assert links.host_ifname in sh("ip", "-n", n.node, "-br", "link")
        finally:
            n.destroy()
    eni_cache.forget()
