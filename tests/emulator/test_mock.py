"""``mock_aliyun``: decorator and context manager semantics, interception scope, re-export."""

from __future__ import annotations

import pytest
import requests
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

import emulator
from emulator.server import Emulator
from emulator.wire.mock import MockAliyun, mock_aliyun
from tests.emulator.test_sdk_harness import REGION, call_action


def _vpc(endpoint: str = "vpc.aliyuncs.com", ak: str = "LTAIemulatorAccessKey",
         secret: str = "emulator-secret") -> VpcClient:
    return VpcClient(Config(endpoint=endpoint, region_id=REGION, access_key_id=ak,
                            access_key_secret=secret))


def _create_vpc(client: VpcClient) -> str:
    return str(call_action(client, vpc_models, "CreateVpc", {"CidrBlock": "10.0.0.0/8"})["VpcId"])


def test_context_manager_yields_the_facade_sharing_state() -> None:
    with mock_aliyun(seed=3) as emu:
        assert isinstance(emu, Emulator)
        vpc_id = _create_vpc(_vpc())
        assert [v.vpc_id for v in emu.cloud.describe_vpcs()] == [vpc_id]


def test_decorator_gives_each_call_a_fresh_cloud() -> None:
    mock = mock_aliyun(seed=3)
    seen: list[int] = []

    @mock
    def create_and_count() -> None:
        _create_vpc(_vpc())
        seen.append(len(mock.emulator.cloud.describe_vpcs()))

    create_and_count()
    create_and_count()
    assert seen == [1, 1]


def test_same_seed_same_ids() -> None:
    with mock_aliyun(seed=9):
        first = _create_vpc(_vpc())
    with mock_aliyun(seed=9):
        again = _create_vpc(_vpc())
    assert first == again


def test_given_emulator_keeps_state_across_activations() -> None:
    emu = Emulator.create(seed=1)
    with mock_aliyun(emu):
        _create_vpc(_vpc())
    with mock_aliyun(emu):
        _create_vpc(_vpc())
    assert len(emu.cloud.describe_vpcs()) == 2


def test_signature_is_checked_and_credentials_are_configurable() -> None:
    with mock_aliyun(credentials={"AKx": "sx"}):
        assert _create_vpc(_vpc(ak="AKx", secret="sx")).startswith("vpc-")
        with pytest.raises(ClientException) as info:
            _create_vpc(_vpc())
        assert info.value.code == "InvalidAccessKeyId.NotFound"


def test_endpoint_limits_interception_but_metadata_is_served() -> None:
    with mock_aliyun(endpoint="vpc.cn-hangzhou.aliyuncs.com") as emu:
        _create_vpc(_vpc("vpc.cn-hangzhou.aliyuncs.com"))
        with pytest.raises(requests.ConnectionError):
            requests.get("http://example.invalid/", timeout=1)
        assert requests.get("http://100.100.100.200/latest/", timeout=1).status_code == 200
        assert emu.cloud.describe_vpcs()


def test_stopped_mock_no_longer_intercepts() -> None:
    mock = MockAliyun()
    mock.start()
    with pytest.raises(RuntimeError, match="already active"):
        mock.start()
    assert requests.get("http://example.invalid/latest/", timeout=1).status_code == 200
    mock.stop()
    with pytest.raises(requests.ConnectionError):  # .invalid never resolves (RFC 2606)
        requests.get("http://example.invalid/latest/", timeout=1)


def test_reexported_from_the_package() -> None:
    assert emulator.mock_aliyun is mock_aliyun
    assert emulator.Emulator is Emulator
