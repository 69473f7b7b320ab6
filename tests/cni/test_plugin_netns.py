"""ADD/DEL through the real plugin, a daemon stand-in and the real datapath on an emulated node."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cni.fakedaemon import FakeDaemon
from tests.cni.plugin import cni_env, netconf, run
from tests.datapath.topology import GATEWAY, Node, new_tag, ping, sh

pytestmark = pytest.mark.privileged


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node(f"c{new_tag()}")
    try:
        yield n.build()
    finally:
        n.destroy()


def test_add_wires_pod_and_del_survives_a_vanished_netns(node: Node) -> None:
    netns = node.pod_ns("web")
    ns = os.path.basename(netns)
    with FakeDaemon(datapath_netns=node.node) as daemon:
        conf = netconf(daemon.socket)
        rc, out, err = run(cni_env("ADD", netns), conf)
        assert rc == 0, (out, err)
        pod_ip = out["ips"][0]["address"].split("/")[0]
        assert out["interfaces"][1]["mac"] in sh("ip", "-n", ns, "link", "show", "eth0")
        node.route_pod(pod_ip)
        assert ping(ns, GATEWAY)
        sh("ip", "netns", "del", ns)
        for _ in range(2):  # netns gone, then repeated
            rc, out, _ = run(cni_env("DEL", netns), conf)
            assert rc == 0, out
    assert pod_ip not in sh("ip", "-n", node.node, "rule")
    assert "cali" not in sh("ip", "-n", node.node, "-br", "link")
