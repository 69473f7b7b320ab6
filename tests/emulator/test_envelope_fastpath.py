"""``envelope.dumps`` (the C encoder called directly) equals ``json.dumps`` byte for byte.

The gateway encodes every response with it, so it is checked on the bodies random model states
produce (non-ASCII names and descriptions included) and on awkward hand-made values."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from emulator.server import Emulator
from emulator.wire.envelope import dumps

# ASCII, JSON escapes, controls, Latin-1, BMP (incl. U+2028), astral (no lone surrogates: text
# off the wire is decoded UTF-8, which cannot hold one)
ALPHABET = 'aZ09 -_"\\/\b\f\n\r\t\x00\x1f\x7fé€\u2028😀'


def _reference(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(12)))


def _world(seed: int) -> Emulator:
    rng = random.Random(seed)
    emu = Emulator.create(seed=seed)
    vpc = emu.dispatch("ecs", "CreateVpc", {"RegionId": "cn-hangzhou", "CidrBlock": "10.0.0.0/8",
                                            "VpcName": _text(rng), "Description": _text(rng)})
    for i in range(rng.randrange(1, 5)):
        vsw = emu.dispatch("ecs", "CreateVSwitch", {
            "RegionId": "cn-hangzhou", "VpcId": vpc["VpcId"], "ZoneId": "cn-hangzhou-h",
            "CidrBlock": f"10.{i}.0.0/24",
            "VSwitchName": _text(rng), "Description": _text(rng)})
        sg = emu.dispatch("ecs", "CreateSecurityGroup", {"RegionId": "cn-hangzhou",
                                                         "VpcId": vpc["VpcId"],
                                                         "SecurityGroupName": _text(rng)})
        emu.dispatch("ecs", "CreateNetworkInterface", {
            "RegionId": "cn-hangzhou", "VSwitchId": vsw["VSwitchId"],
            "SecurityGroupId": sg["SecurityGroupId"],
            "SecondaryPrivateIpAddressCount": str(rng.randrange(3)),
            "Tag.1.Key": _text(rng) or "k", "Tag.1.Value": _text(rng),
            "Description": _text(rng)})
    return emu


READS = ["DescribeVpcs", "DescribeVSwitches", "DescribeSecurityGroups",
         "DescribeNetworkInterfaces", "DescribeRegions", "DescribeZones", "DescribeInstanceTypes"]


@pytest.mark.parametrize("seed", range(8))
def test_dumps_matches_json_dumps_on_random_model_states(seed: int) -> None:
    emu = _world(seed)
    for action in READS:
        body = emu.dispatch("ecs", action, {"RegionId": "cn-hangzhou"})
        assert dumps(body) == _reference(body), action
    snapshot = emu.snapshot()
    assert dumps(snapshot) == _reference(snapshot)


@pytest.mark.parametrize("obj", [
    {}, [], "", "é", 0, -1, 2**70, 1.5, 1e300, float("inf"), float("nan"), -0.0, True, None,
    {"a": [1, {"b": None}], "": "", "é": "\u2028"}, {1: "int key", 2.5: "float key", None: 0},
    [[[[]]]], ("tuple", "as", "list"),
])
def test_dumps_matches_json_dumps_on_awkward_values(obj: Any) -> None:
    assert dumps(obj) == _reference(obj)


def test_dumps_refuses_what_json_dumps_refuses_with_its_message() -> None:
    with pytest.raises(TypeError) as ours:
        dumps({"a": {1, 2}})
    with pytest.raises(TypeError) as theirs:
        json.dumps({"a": {1, 2}})
    assert str(ours.value) == str(theirs.value)
