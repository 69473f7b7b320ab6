"""World files report every problem at once, unknown keys with a "did you mean"."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from emulator.world import WorldError, validate_world

GOOD: dict[str, Any] = {
    "seed": 1,
    "vpcs": [{"name": "v", "cidr": "10.0.0.0/16",
              "vswitches": [{"name": "a", "zone": "cn-hangzhou-h", "cidr": "10.0.0.0/24"}],
              "security_groups": [{"name": "sg"}]}],
    "instances": [{"name": "n", "type": "ecs.g6.large", "vswitch": "a"}],
}


def test_three_independent_mistakes_are_three_problems() -> None:
    spec = copy.deepcopy(GOOD)
    spec["region"] = "cn-hangzou"
    spec["vpcs"][0]["vswitches"][0]["cidr"] = "10.9.0.0/24"
    spec["instances"][0]["count"] = 0
    with pytest.raises(WorldError) as info:
        validate_world(spec)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "region", "vpcs[0].vswitches[0].cidr", "instances[0].count"]
    assert "did you mean 'cn-hangzhou'?" in info.value.problems[0]
    assert info.value.path == "region"


def test_an_unknown_key_gets_a_suggestion() -> None:
    spec = copy.deepcopy(GOOD)
    spec["instances"][0]["securty_groups"] = ["sg"]
    with pytest.raises(WorldError) as info:
        validate_world(spec)
    assert info.value.problems == (
        "instances[0].securty_groups: unknown field (did you mean 'security_groups'?) "
        "(allowed: count, name, security_groups, type, vswitch)",)


def test_every_bad_fault_rule_is_named() -> None:
    spec = copy.deepcopy(GOOD)
    spec["faults"] = [{"kind": "latency", "distribution": "constant", "value": -1},
                      {"kind": "throttle", "rate": 1},
                      {"kind": "error", "code": "X", "count": 1, "probabilty": 0.5}]
    with pytest.raises(WorldError) as info:
        validate_world(spec)
    assert [p.split(":")[0] for p in info.value.problems] == ["faults[0].value",
                                                              "faults[2].probabilty"]
