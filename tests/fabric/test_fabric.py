"""The VPC fabric for real: namespaces, interfaces with ENI MACs, packets, metadata, teardown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.fabric import probe
from emulator.fabric.netns import ip, link_names, netns_exists, netns_list
from tests.fabric.conftest import World

pytestmark = pytest.mark.privileged


def _link(ns: str, name: str) -> dict[str, Any]:
    info: list[dict[str, Any]] = json.loads(ip("-j", "addr", "show", "dev", name, ns=ns))
    return info[0]


def _link_by_mac(ns: str, mac: str) -> dict[str, Any] | None:
    for link in json.loads(ip("-j", "addr", "show", ns=ns)):
        if link.get("address") == mac:
            return dict(link)
    return None


def _ipv4(link: dict[str, Any]) -> list[str]:
    return [a["local"] for a in link.get("addr_info", []) if a.get("family") == "inet"]


def test_each_instance_is_a_netns_with_eth0_carrying_its_primary_eni(world: World,
                                                                     fabric: Any) -> None:
    for inst in world.cloud.describe_instances():
        eni = world.cloud.get_network_interface(inst.primary_eni_id)
        assert netns_exists(inst.instance_id)
        eth0 = _link(inst.instance_id, "eth0")
        assert eth0["address"] == eni.mac
        assert "UP" in eth0["flags"]
        assert _ipv4(eth0) == [inst.primary_ip]
        routes = json.loads(ip("-j", "route", "show", "default", ns=inst.instance_id))
        assert routes[0]["gateway"] == world.gateway
    assert fabric.routers == [world.vpc_id]


def test_nodes_reach_their_gateway_and_each_other_but_not_unassigned_addresses(
        world: World, fabric: Any) -> None:
    a, b = world.cloud.describe_instances()
    assert probe.ping(a.instance_id, world.gateway)
    assert probe.ping(a.instance_id, b.primary_ip)
    assert probe.ping(b.instance_id, a.primary_ip)
    free = "10.77.1.9"   # in the vSwitch, owned by nobody
    assert not any(free in e.private_ips for e in world.cloud.describe_network_interfaces())
    assert not probe.ping(a.instance_id, free, count=1, timeout=0.5)


def test_attaching_an_eni_hotplugs_a_down_interface_with_its_mac_and_detach_removes_it(
        world: World, fabric: Any) -> None:
    node = world.nodes[0]
    eni = world.cloud.create_network_interface(world.vswitch_id, [world.sg_id])
    world.cloud.attach_network_interface(eni.eni_id, node)
    fabric.sync()
    link = _link_by_mac(node, eni.mac)
    assert link is not None, f"no interface with MAC {eni.mac} in {node}"
    assert link["ifname"] == "eth1"
    assert "UP" not in link["flags"]
    assert _ipv4(link) == []
    world.cloud.detach_network_interface(eni.eni_id, node)
    fabric.sync()
    assert _link_by_mac(node, eni.mac) is None
    assert link_names(node) == ["lo", "eth0"]


def test_router_forwards_each_assigned_ip_to_the_eni_that_owns_it(world: World,
                                                                  fabric: Any) -> None:
    a, b = world.nodes
    eni = world.cloud.create_network_interface(world.vswitch_id, [world.sg_id])
    world.cloud.attach_network_interface(eni.eni_id, a)
    world.cloud.assign_private_ips(eni.eni_id, 1)
    fabric.sync()
    secondary = world.cloud.get_network_interface(eni.eni_id).secondary_ips[0]
    ifname = fabric.node_links(a)[eni.eni_id]
    # stand in for a pod: the secondary IP answered by node A behind the ENI's interface
    ip("link", "set", ifname, "up", ns=a)
    ip("addr", "add", f"{secondary}/32", "dev", ifname, ns=a)
    ip("route", "add", world.gateway, "dev", ifname, "table", "100", ns=a)
    ip("route", "add", "default", "via", world.gateway, "dev", ifname, "onlink", "table", "100",
       ns=a)
    ip("rule", "add", "from", secondary, "lookup", "100", ns=a)
    assert probe.ping(b, secondary)
    assert fabric.owner_of(secondary) == a
    world.cloud.unassign_private_ips(eni.eni_id, [secondary])
    fabric.sync()
    assert not probe.ping(b, secondary, count=1, timeout=0.5)
    assert fabric.owner_of(secondary) is None


def test_metadata_inside_a_node_is_that_instances_own(world: World, fabric: Any) -> None:
    for node in world.nodes:
        code = ("import urllib.request as u;"
                "print(u.urlopen('http://100.100.100.200/latest/meta-data/instance-id',"
                "timeout=5).read().decode())")
        out = subprocess.run(["ip", "netns", "exec", node, sys.executable, "-c", code],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert out.strip() == node
    inst = world.cloud.get_instance(world.nodes[1])
    mac = world.cloud.get_network_interface(inst.primary_eni_id).mac
    status, body = probe.http_get(world.nodes[1], "http://100.100.100.200/latest/meta-data/mac")
    assert (status, body.strip()) == (200, mac)


def test_cloud_api_is_reachable_from_a_node(world: World, fabric: Any) -> None:
    status, body = probe.http_get(world.nodes[0], "http://100.100.100.100/")
    assert status >= 400   # an unsigned request: the emulator itself refuses it
    assert "RequestId" in json.loads(body)


def test_deleting_an_instance_removes_its_netns(world: World, fabric: Any) -> None:
    world.cloud.delete_instance(world.nodes[1])
    fabric.sync()
    assert not netns_exists(world.nodes[1])
    assert netns_exists(world.nodes[0])


def test_a_second_cloud_with_the_same_seed_does_not_take_the_first_ones_namespaces(
        world: World, fabric: Any, state_dir: Path) -> None:
    from emulator import fabric as fabric_mod
    from emulator.fabric.netns import FabricError
    from tests.fabric.conftest import build_world

    twin = build_world(world.cloud.seed)                 # the same ids, a different cloud
    assert twin.nodes == world.nodes
    with pytest.raises(FabricError, match="belongs to the running fabric of process"):
        fabric_mod.start(twin.cloud, 9)                  # never reaches the port
    dead = state_dir / "999999999-1.json"                # a crashed run that made them too
    dead.write_text(json.dumps({"pid": 999999999, "namespaces": [world.nodes[0]]}))
    assert fabric_mod.cli_down(state_dir) == 0
    assert not dead.exists()
    assert {*world.nodes, world.vpc_id} <= set(netns_list())
    assert fabric.vanished() == []
    assert probe.ping(world.nodes[0], world.cloud.get_instance(world.nodes[1]).primary_ip)


def test_a_namespace_deleted_behind_the_fabrics_back_is_reported(
        world: World, fabric: Any, caplog: pytest.LogCaptureFixture) -> None:
    from emulator.fabric.netns import netns_delete

    assert fabric.vanished() == []
    netns_delete(world.nodes[0])
    fabric.sync()
    assert fabric.vanished() == [world.nodes[0]]
    assert f"vanished (deleted by someone else): {world.nodes[0]}" in caplog.text


def test_teardown_leaves_no_namespace_no_link_and_no_record(world: World, served: Any,
                                                            state_dir: Path) -> None:
    from emulator import fabric as fabric_mod

    root_links = set(link_names_root())
    fab = fabric_mod.start(world.cloud, served.port)
    eni = world.cloud.create_network_interface(world.vswitch_id, [world.sg_id])
    world.cloud.attach_network_interface(eni.eni_id, world.nodes[0])
    fab.sync()
    made = {*world.nodes, world.vpc_id}
    assert made <= set(netns_list())
    assert list(state_dir.glob("*.json"))
    assert set(link_names_root()) == root_links   # nothing of ours in the root namespace
    fab.stop()
    fab.stop()   # idempotent
    assert not made & set(netns_list())
    assert not list(state_dir.glob("*.json"))
    assert set(link_names_root()) == root_links


def test_fabric_down_cleans_up_after_a_crashed_fabric(world: World, served: Any,
                                                      state_dir: Path) -> None:
    from emulator import fabric as fabric_mod

    fab = fabric_mod.start(world.cloud, served.port)
    made = {*world.nodes, world.vpc_id}
    fab._stop.set()          # simulate a crash: the worker is gone, nothing was torn down
    assert made <= set(netns_list())
    assert fabric_mod.cli_down(state_dir) == 0
    assert made <= set(netns_list()), "fabric down removed a live process's fabric"
    record = next(state_dir.glob("*.json"))
    record.write_text(record.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999'))
    assert fabric_mod.cli_down(state_dir) == 0   # its owner "died": now it goes
    assert not made & set(netns_list())
    assert fabric_mod.cli_down(state_dir) == 0   # idempotent
    fab.stop()


def link_names_root() -> list[str]:
    return link_names("")   # "" = the root namespace
