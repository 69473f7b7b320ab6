"""What the fabric reads from the model (no root needed): only running nodes and InUse ENIs."""

from __future__ import annotations

from emulator.fabric.desired import read
from emulator.model import Cloud, ManualClock
from tests.fabric.conftest import ZONE


def _world(clock: ManualClock) -> tuple[Cloud, str, str, str]:
    cloud = Cloud(seed=11, clock=clock, attach_delay=2.0, detach_delay=2.0)
    vpc = cloud.create_vpc("10.1.0.0/16")
    vsw = cloud.create_vswitch(vpc.vpc_id, ZONE, "10.1.0.0/24")
    sg = cloud.create_security_group(vpc.vpc_id)
    sg_id: str = sg.security_group_id
    (node,) = cloud.run_instances("ecs.g6.2xlarge", vsw.vswitch_id, [sg_id])
    return cloud, node, vsw.vswitch_id, sg_id


def test_a_running_instance_is_a_node_with_its_primary_eni_first() -> None:
    cloud, node, _, _ = _world(ManualClock())
    want = read(cloud).nodes[node]
    inst = cloud.get_instance(node)
    assert want.primary.eni_id == inst.primary_eni_id
    assert want.primary.ips == (inst.primary_ip,)
    assert want.primary.gateway == "10.1.0.253"
    assert want.primary.prefixlen == 24
    assert want.vpc_id == inst.vpc_id


def test_an_eni_is_plugged_only_while_in_use() -> None:
    clock = ManualClock()
    cloud, node, vsw_id, sg_id = _world(clock)
    eni = cloud.create_network_interface(vsw_id, [sg_id])
    cloud.attach_network_interface(eni.eni_id, node)
    assert [e.eni_id for e in read(cloud).nodes[node].enis] == [cloud.get_instance(node)
                                                                 .primary_eni_id]
    clock.advance(2.0)
    enis = read(cloud).nodes[node].enis
    assert [e.eni_id for e in enis][1:] == [eni.eni_id]
    assert enis[1].mac == eni.mac
    cloud.assign_private_ips(eni.eni_id, 2)
    assert len(read(cloud).nodes[node].enis[1].ips) == 3
    cloud.detach_network_interface(eni.eni_id, node)
    assert len(read(cloud).nodes[node].enis) == 1   # Detaching: the interface goes at once


def test_a_deleted_instance_is_no_node() -> None:
    cloud, node, _, _ = _world(ManualClock())
    cloud.delete_instance(node)
    assert read(cloud).nodes == {}
