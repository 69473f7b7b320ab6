"""``envelope.dumps`` (the C encoder called directly) equals ``json.dumps`` byte for byte.

The gateway encodes every response with it, so it is checked on the bodies random model states
produce (non-ASCII names and descriptions included) and on awkward hand-made values."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from emulator.model import ApiError
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
            "VpcId": vpc["VpcId"], "ZoneId": "cn-hangzhou-h", "CidrBlock": f"10.{i}.0.0/24",
            "VSwitchName": _text(rng), "Description": _text(rng)})
        sg = emu.dispatch("ecs", "CreateSecurityGroup", {"VpcId": vpc["VpcId"],
                                                         "SecurityGroupName": _text(rng)})
        emu.dispatch("ecs", "CreateNetworkInterface", {
            "VSwitchId": vsw["VSwitchId"], "SecurityGroupId": sg["SecurityGroupId"],
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


def _describe_params(rng: random.Random, emu: Emulator) -> dict[str, str]:
    """Random DescribeVSwitches parameters: filters, both paging styles, bad values."""
    vsws = emu.cloud.describe_vswitches()
    pick = [v.vswitch_id for v in vsws if rng.random() < 0.5] + ["vsw-missing"] * rng.randrange(2)
    choices: dict[str, list[str]] = {
        "RegionId": ["cn-hangzhou", "", "nowhere"],
        "VSwitchId": [",".join(pick), " , ".join(pick), ""],
        "VpcId": [vsws[0].vpc_id, "vpc-other"], "ZoneId": ["cn-hangzhou-h", "cn-hangzhou-i"],
        "VSwitchName": [vsws[0].name, "nope"],
        "PageNumber": ["1", "2", "0", "x"], "PageSize": ["1", "2", "50", "51"],
        "NextToken": ["", "1", "3", "-1"], "MaxResults": ["1", "2", "0"],
    }
    return {k: rng.choice(v) for k, v in choices.items() if rng.random() < 0.4}


def _outcome(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ApiError as err:  # the refusal itself is compared
        return err.code, err.message, err.http_status, err.request_id


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("product", ["vpc", "ecs"])
def test_dispatch_encoded_equals_dumps_of_dispatch(seed: int, product: str) -> None:
    fast, slow = _world(seed), _world(seed)  # same seed, same calls: same ids and request ids
    rng = random.Random(seed)
    answered = 0
    for _ in range(40):
        params = _describe_params(rng, fast)
        action = rng.choice(["DescribeVSwitches"] * 4 + ["DescribeVpcs", "NoSuchAction"])
        ours = _outcome(fast.dispatch_encoded, product, action, params)
        theirs = _outcome(lambda *a: dumps(slow.dispatch(*a)), product, action, params)
        assert ours == theirs, (action, params)
        answered += isinstance(ours, bytes) and action == "DescribeVSwitches"
    assert answered >= 5
