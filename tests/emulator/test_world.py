"""World files: example worlds build; bad ones are refused with a path and build nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from emulator.model import Cloud
from emulator.world import WorldError, build_world, load_world

WORLDS = Path(__file__).resolve().parents[2] / "worlds"

BASE: dict[str, Any] = {
    "seed": 3,
    "region": "cn-hangzhou",
    "vpcs": [{"name": "v", "cidr": "10.0.0.0/16",
              "vswitches": [{"name": "a", "zone": "cn-hangzhou-h", "cidr": "10.0.0.0/28"},
                            {"name": "b", "zone": "cn-hangzhou-i", "cidr": "10.0.1.0/24"}],
              "security_groups": [{"name": "sg"}]}],
    "instances": [{"name": "n", "type": "ecs.g6.large", "vswitch": "a", "count": 2}],
    "faults": [{"kind": "throttle", "action": "*", "rate": 5, "burst": 5}],
}


def test_small_world_matches_its_description() -> None:
    world = load_world(WORLDS / "small.yaml")
    [vsw] = world.cloud.describe_vswitches()
    assert (vsw.cidr_block, vsw.zone_id, vsw.available_ip_count) == (
        "192.168.0.0/28", "cn-hangzhou-h", 11)
    [node] = world.cloud.describe_instances()
    assert node.instance_type == "ecs.g6.2xlarge"
    assert world.cloud.describe_vpcs()[0].cidr_block == "192.168.0.0/16"


def test_demo_world_builds_with_faults() -> None:
    world = load_world(WORLDS / "demo.yaml")
    assert len(world.cloud.describe_instances()) == 6
    assert len(world.faults.rules()) == 4
    assert world.cloud.attach_delay == (0.5, 2.0)


def test_same_world_same_ids() -> None:
    a, b = build_world(BASE), build_world(BASE)
    assert a.instances == b.instances and a.vswitches == b.vswitches
    assert a.cloud.snapshot() == b.cloud.snapshot()


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    node: Any = spec
    keys = path.replace("]", "").replace("[", ".").split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return spec


@pytest.mark.parametrize(("path", "value", "message"), [
    ("vpcs[0].vswitches[1].cidr", "10.0.0.0/33", "vpcs[0].vswitches[1].cidr: 10.0.0.0/33 is not "
     "a CIDR"),
    ("vpcs[0].vswitches[1].cidr", "10.0.0.0/30", "vpcs[0].vswitches[1].cidr: 10.0.0.0/30: prefix"),
    ("vpcs[0].vswitches[1].cidr", "10.9.0.0/24", "vpcs[0].vswitches[1].cidr: 10.9.0.0/24 is not "
     "inside"),
    ("vpcs[0].vswitches[1].cidr", "10.0.0.0/24", "vpcs[0].vswitches[1].cidr: 10.0.0.0/24 "
     "overlaps"),
    ("vpcs[0].vswitches[1].zone", "cn-beijing-g", "vpcs[0].vswitches[1].zone:"),
    ("vpcs[0].vswitches[1].name", "a", "vpcs[0].vswitches[1].name: duplicate"),
    ("vpcs[0].cidr", KeyError, "vpcs[0].cidr: required"),
    ("vpcs[0].colour", "red", "vpcs[0].colour: unknown field"),
    ("region", "mars-1", "region: unknown region"),
    ("seed", "x", "seed: must be an integer"),
    ("instances[0].type", "ecs.g6.huge", "instances[0].type: unknown instance type"),
    ("instances[0].vswitch", "zz", "instances[0].vswitch: no vSwitch named"),
    ("instances[0].count", 0, "instances[0].count: must be an integer 1-100"),
    ("instances[0].count", 13, "instances[0].count: vSwitch 'a' has only 12"),
    ("instances[0].security_groups", ["nope"], "instances[0].security_groups[0]: no security"),
    ("faults[0].rate", -1, "faults[0].rate: must be > 0"),
    ("faults[0].kind", "boom", "faults[0].kind:"),
])
def test_invalid_worlds_name_the_path_and_build_nothing(path: str, value: Any,
                                                        message: str) -> None:
    cloud = Cloud(seed=9)
    vpc = cloud.create_vpc("172.16.0.0/12").vpc_id
    before = cloud.snapshot()
    with pytest.raises(WorldError) as info:
        build_world(_with(path, value), cloud=cloud)
    assert str(info.value).startswith(message), str(info.value)
    assert cloud.snapshot() == before
    assert cloud.describe_vpcs()[0].vpc_id == vpc


def test_unreadable_file_is_a_world_error(tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("vpcs: [unclosed")
    with pytest.raises(WorldError, match="cannot read world file"):
        load_world(bad)
