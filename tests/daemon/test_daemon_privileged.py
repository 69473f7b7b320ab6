"""The daemon with the real datapath: an allocated pod can ping its vSwitch gateway.

The node is tests/datapath/topology.py's emulated node (netns for node, vSwitch, pods). The
daemon's ENIs come from the emulator's model; when the driver waits for an attached ENI's link,
the test "hot-plugs" a veth with that ENI's MAC into the node netns, as the fabric would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import World, run, running_daemon
from tests.datapath.topology import GATEWAY, Node, new_tag, ping, sh

pytestmark = pytest.mark.privileged


def test_alloc_wires_a_pod_that_reaches_the_gateway(tmp_path: Path) -> None:
    from terway.daemon.dataplane import RealDatapath

    world = World.build(cidrs=("10.9.0.0/24",), vpc_cidr="10.9.0.0/16",
                        node_cidr="10.9.200.0/24")
    node = Node(new_tag())
    node.build()
    plugged: dict[str, str] = {}

    def hotplug(mac: str) -> bool:
        if mac not in plugged:
            plugged[mac] = f"eth{len(plugged) + 2}"
            node.plug(plugged[mac], mac)
        return True

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, datapath=RealDatapath(node.node),
                                  link_check=hotplug) as d:
            netns = node.pod_ns("p1")
            req = rpc.AllocIPRequest("web-0", "default", "cid-web-0", netns, "eth0")
            info = await asyncio.to_thread(d.client().alloc_ip, req)
            assert info.gateway == GATEWAY and info.host_ifname.startswith("cali")
            node.route_pod(info.pod_ip, info.eni_mac)
            assert ping(netns.rsplit("/", 1)[1], GATEWAY)
            assert f"from {info.pod_ip} lookup" in sh("ip", "-n", node.node, "rule")

            await asyncio.to_thread(d.client().release_ip, rpc.ReleaseIPRequest(
                "web-0", "default", "cid-web-0", "eth0", netns))
            await d.daemon.service.drain()  # the unwiring follows the answer
            assert info.pod_ip not in sh("ip", "-n", node.node, "rule")

    try:
        run(scenario())
    finally:
        node.destroy()
