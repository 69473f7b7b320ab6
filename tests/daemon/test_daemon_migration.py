"""Migration (issue 10): a daemon that finds pods it has no record of never hands their
addresses out again.

Replacing upstream Terway in place (or losing the state directory) leaves running pods wired on
ENIs tagged ``creator=terway`` while the store is empty. Seen before: ``freed=3`` at start, and the
next pods got the addresses of pods still running. Now the node's routes say which addresses are
in use (terway/daemon/adopt.py), first with a stand-in datapath, then with the real one in
network namespaces, where "upstream" wires its pod with the same datapath.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from terway.daemon.adopt import ADOPTED_NAMESPACE
from terway.datapath import VETH, PodNetwork, PodSpec, host_veth_name, setup_pod
from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import FakeDatapath, World, run, running_daemon, upstream_eni
from tests.datapath.topology import GATEWAY, Node, new_tag, ping


def test_pods_wired_before_our_records_keep_their_addresses(tmp_path: Path) -> None:
    world = World.build()
    _, _, ips = upstream_eni(world, 4)
    running = {ips[0]: ("default", "web-0"), ips[1]: ("default", "web-1")}
    dp = FakeDatapath()
    dp.foreign = {ip: host_veth_name(ns, name) for ip, (ns, name) in running.items()}
    conf = world.eni_conf(max_pool_size=0, min_pool_size=0)

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf, datapath=dp) as d:
            owners = {r.ip: r.pod_key for r in d.daemon.core.mapping() if r.status == "Normal"}
            assert {owners.get(ip, "").split("/")[0] for ip in running} == {ADOPTED_NAMESPACE}
            new = {(await d.alloc(f"new-{i}")).pod_ip for i in range(4)}
            assert new.isdisjoint(running), "a running pod's address was handed out again"

            assert (await d.release("web-0")).released          # its DEL, by name
            torn = [n for n in dp.teardowns if n.net.pod_ip == ips[0]]
            assert [n.pod_key for n in torn] == ["default/web-0"]  # its own veth and rules
            assert ips[0] not in {r.ip for r in d.daemon.core.mapping() if r.status == "Normal"}

            dp.foreign.pop(ips[1])                               # web-1's veth went away
            await d.daemon.gc()
            assert all(not r.pod_key.startswith(ADOPTED_NAMESPACE) for r in d.daemon.core.mapping())

    run(scenario())


@pytest.mark.privileged
def test_a_pod_wired_by_upstream_survives_our_start_with_an_empty_state_dir(
        tmp_path: Path) -> None:
    from terway.daemon.dataplane import RealDatapath

    world = World.build(cidrs=("10.9.0.0/24",), vpc_cidr="10.9.0.0/16",
                        node_cidr="10.9.200.0/24")
    _, mac, ips = upstream_eni(world, 2)
    node = Node(new_tag())
    node.build()
    node.plug("eth2", mac)
    plugged = {mac: "eth2"}

    def hotplug(eni_mac: str) -> bool:
        if eni_mac not in plugged:
            plugged[eni_mac] = f"eth{len(plugged) + 2}"
            node.plug(plugged[eni_mac], eni_mac)
        return True

    old = PodSpec("default", "old-0", node.pod_ns("old"))
    setup_pod(VETH, old, PodNetwork(pod_ip=ips[0], gateway=GATEWAY, eni_mac=mac,
                                    prefix_len=24), node.node)   # upstream's wiring
    node.route_pod(ips[0], mac)
    conf = world.eni_conf(max_pool_size=0, min_pool_size=0)

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf, datapath=RealDatapath(node.node),
                                  link_check=hotplug) as d:
            got = []
            for i in range(3):
                req = rpc.AllocIPRequest(f"new-{i}", "default", f"cid-{i}",
                                         node.pod_ns(f"n{i}"), "eth0")
                got.append((await asyncio.to_thread(d.client().alloc_ip, req)).pod_ip)
            assert ips[0] not in got, "the upstream pod's address went to a new pod"
            assert ping(old.netns.rsplit("/", 1)[1], GATEWAY), "the upstream pod lost its network"

    try:
        run(scenario())
    finally:
        node.destroy()
