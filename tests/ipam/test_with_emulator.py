"""The core against the emulator's model (emulator.inprocess.ModelCloud): the seed's IpNotEnough
story end to end — a small vSwitch runs dry, the log line appears, a vSwitch of the same zone is
added to the config, allocation resumes without a restart."""

from __future__ import annotations

import random
from typing import Any

from emulator.inprocess import ModelCloud
from emulator.world import build_world
from terway.config import parse_eni_conf
from terway.ipam import IpamCore, IpamSettings, LogLine, NodeIdentity, run_sync
from terway.limits import compute_capacity

ZONE = "cn-hangzhou-h"
SPEC: dict[str, Any] = {
    "seed": 7,
    "vpcs": [{"name": "v", "cidr": "10.0.0.0/16",
              "vswitches": [{"name": "node", "zone": ZONE, "cidr": "10.0.0.0/24"},
                            {"name": "pods", "zone": ZONE, "cidr": "10.0.1.0/28"}],
              "security_groups": [{"name": "sg"}]}],
    "instances": [{"name": "n", "type": "ecs.g6.2xlarge", "vswitch": "node"}],
}


def test_ip_not_enough_then_new_vswitch_resumes_allocation() -> None:
    world = build_world(SPEC)
    instance = world.instances["n"][0]
    pods_vsw = world.vswitches["pods"]
    cloud = ModelCloud(world.cloud, instance_id=instance)
    limits = cloud.describe_instance_type("ecs.g6.2xlarge")
    # g6.2xlarge: 3 secondary ENIs of 10 IPs; the dry vSwitch fills two, the third slot is
    # left for the new vSwitch (ENIs on the dry one are partly used and cannot be released)
    raw = {"vswitches": {ZONE: [pods_vsw]}, "security_group": world.security_groups["sg"]}
    conf = parse_eni_conf(raw)
    node = NodeIdentity(instance, ZONE)
    core = IpamCore(IpamSettings.from_config(conf, compute_capacity(limits, conf), node),
                    id_prefix="n-1", rng=random.Random(1))
    free = cloud.describe_vswitches([pods_vsw])[0].available_ip_count
    logs: list[str] = []
    t = 0.0
    for i in range(free + 3):
        t += 1.0
        core.request_ip(f"default/p{i}", t)
        run_sync(core, cloud, t + 0.3)
        logs += [n.msg for n in core.drain_notices() if isinstance(n, LogLine)]
    served = [i for i in range(free + 3) if core.allocation(f"default/p{i}") is not None]
    assert len(served) == free
    assert core.condition() is False
    assert any("Code: InvalidVSwitchId.IpNotEnough" in m and m.endswith(", retrying")
               for m in logs)
    # the remedy: a new vSwitch in the same zone, added to eni_conf, no restart
    vpc = world.vpcs["v"]
    new = world.cloud.create_vswitch(vpc, ZONE, "10.0.32.0/19", name="big").vswitch_id
    raw["vswitches"] = {ZONE: [pods_vsw, new]}
    conf = parse_eni_conf(raw)
    t += 1.0
    core.on_config_changed(IpamSettings.from_config(conf, compute_capacity(limits, conf), node), t)
    for dt in (0.0, 0.3, 1.0, 2.0):
        run_sync(core, cloud, t + dt)
    waiting = [f"default/p{i}" for i in range(free + 3) if i not in served]
    got = [core.allocation(k) for k in waiting]
    assert all(a is not None and a.vswitch_id == new for a in got)
    assert core.condition() is True
