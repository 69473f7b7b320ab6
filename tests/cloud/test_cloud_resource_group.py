"""eni_conf ``resource_group_id`` reaches every CreateNetworkInterface (issue 10): the pool's
commands, through the official SDK, into the emulator, and back from DescribeNetworkInterfaces."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.sdk import SdkCloud, SdkConfig
from terway.config import ConfigError, parse_eni_conf
from terway.ipam import IpamCore, IpamSettings, NodeIdentity, run_sync
from terway.limits import compute_capacity
from tests.cloud.emuworld import ZONE, FakeTime, World, build_world, emulator_credentials

pytest.importorskip("emulator.actions", reason="emulator model not installed")

ENDPOINT = "http://ecs-emulated.example"
GROUP = "rg-acfm2example7q"


@pytest.fixture
def world() -> Iterator[World]:
    from emulator import mock_aliyun

    w = build_world()
    with mock_aliyun(w.emulator, endpoint="ecs-emulated.example"):
        yield w


def sdk(ft: FakeTime) -> SdkCloud:
    return SdkCloud(SdkConfig(region_id="cn-hangzhou", endpoint=ENDPOINT), emulator_credentials(),
                    sleep=ft.sleep, clock=ft.now, rng=ft.rng)


def test_the_pool_creates_its_enis_in_the_configured_group(world: World) -> None:
    """eni_conf → IpamSettings → CreateEni → SdkCloud → the emulator stores and returns it."""
    conf = parse_eni_conf({"vswitches": {ZONE: [world.vswitch_id]},
                           "security_group": world.sg_id, "min_pool_size": 12,
                           "max_pool_size": 20, "resource_group_id": GROUP})
    assert conf.warnings == () and conf.resource_group_id == GROUP
    limits = sdk(FakeTime()).describe_instance_type("ecs.g6.xlarge")
    settings = IpamSettings.from_config(conf, compute_capacity(limits, conf),
                                        NodeIdentity(world.instance_id, ZONE))
    core = IpamCore(settings, id_prefix="n1", rng=random.Random(1))
    cloud = sdk(FakeTime())
    run_sync(core, cloud, 0.0)
    run_sync(core, cloud, 10.0)
    enis = cloud.describe_network_interfaces(instance_id=world.instance_id)
    secondary = [e for e in enis if e.eni_type == "Secondary"]
    assert len(secondary) == 2, enis            # 12 addresses need two ENIs of 10
    assert {e.resource_group_id for e in secondary} == {GROUP}
    assert next(e for e in enis if e.eni_type == "Primary").resource_group_id == ""
    model = world.emulator.cloud
    assert {model.get_network_interface(e.eni_id).resource_group_id for e in secondary} == {GROUP}
    # DescribeNetworkInterfaces filters by it, as the real API does
    from emulator.actions import dispatch

    for group, want in ((GROUP, {e.eni_id for e in secondary}), ("rg-other", set())):
        body = dispatch(model, "ecs", "DescribeNetworkInterfaces",
                        {"RegionId": "cn-hangzhou", "ResourceGroupId": group})
        found = body["NetworkInterfaceSets"]["NetworkInterfaceSet"]
        assert {e["NetworkInterfaceId"] for e in found} == want
        assert {e["ResourceGroupId"] for e in found} <= {group}


def test_without_it_the_request_carries_none(world: World) -> None:
    cloud = sdk(FakeTime())
    eni = cloud.create_network_interface(vswitch_id=world.vswitch_id,
                                         security_group_ids=[world.sg_id], secondary_ip_count=0,
                                         tags={}, client_token="t-default")
    assert eni.resource_group_id == ""
    assert world.emulator.cloud.get_network_interface(eni.eni_id).resource_group_id == ""


def test_a_group_that_cannot_exist_is_refused_and_changes_nothing(world: World) -> None:
    model = world.emulator.cloud
    before = model.get_vswitch(world.vswitch_id).available_ip_count
    enis_before = len(model.describe_network_interfaces())
    with pytest.raises(CloudError) as info:
        sdk(FakeTime()).create_network_interface(
            vswitch_id=world.vswitch_id, security_group_ids=[world.sg_id], secondary_ip_count=2,
            tags={}, client_token="t-bad", resource_group_id="default group")
    err = info.value
    assert (err.code, err.http_status) == ("InvalidResourceGroup.NotFound", 404)
    assert err.message == "The ResourceGroup provided does not exist in our records."
    assert err.error_class is ErrorClass.NOT_FOUND and not err.retryable
    assert model.get_vswitch(world.vswitch_id).available_ip_count == before
    assert len(model.describe_network_interfaces()) == enis_before


def test_the_same_token_with_another_group_is_a_mismatch(world: World) -> None:
    cloud = sdk(FakeTime())
    kw = {"vswitch_id": world.vswitch_id, "security_group_ids": [world.sg_id],
          "secondary_ip_count": 0, "tags": {}, "client_token": "t-same"}
    first = cloud.create_network_interface(**kw, resource_group_id=GROUP)  # type: ignore[arg-type]
    again = cloud.create_network_interface(**kw, resource_group_id=GROUP)  # type: ignore[arg-type]
    assert again.eni_id == first.eni_id
    with pytest.raises(CloudError) as info:
        cloud.create_network_interface(**kw, resource_group_id="rg-other")  # type: ignore[arg-type]
    assert info.value.code == "IdempotentParameterMismatch"


@pytest.mark.parametrize("value", ["default", "rg-", "rg-a b", "RG-abc", 7])
def test_the_config_refuses_what_cannot_be_a_group_id(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_eni_conf({"resource_group_id": value})
    (problem,) = info.value.problems
    assert problem.startswith("eni_conf.resource_group_id: must be ")
