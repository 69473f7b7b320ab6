"""Each Python SDK and signature style runs a whole ENI lifecycle against ``terway-emulator serve``.

Styles: the new SDK (alibabacloud-tea-openapi) in ACS3-HMAC-SHA256 (its default), ACS3-HMAC-SM3
and ``signature_algorithm='v2'`` (RPC, HMAC-SHA1); the old SDK (aliyun-python-sdk-core with
aliyun-python-sdk-ecs/-vpc, RPC) with its typed requests, some sent as GET and some with their
parameters in a form body. Each is also answered as the cloud answers a wrong secret and an
unknown AccessKey. The Go SDK upstream Terway uses is in test_go_client.py.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from aliyunsdkcore.acs_exception.exceptions import ServerException as OldServerException
from aliyunsdkcore.client import AcsClient

from emulator.model import CATALOG
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tests.emulator.serve_harness import INSTANCE_TYPE, PODS_CIDR, REGION, Served, served
from tests.emulator.test_sdk_harness import call_action

AK, SECRET = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
STYLES = ("acs3", "acs3-sm3", "v2", "old-sdk")
MISMATCH = "Specified signature is not matched with our calculation. server string to sign is:"
VERSIONS = {"ecs": "v20140526", "vpc": "v20160428"}


class Refused(Exception):
    """A refusal as any of the clients surfaced it: code, HTTP status and message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.code, self.status, self.message = code, status, message


class NewSdk:
    """The new SDK's typed clients; ``algorithm`` None is its default (ACS3-HMAC-SHA256)."""

    def __init__(self, endpoint: str, algorithm: str | None, ak: str, secret: str) -> None:
        cfg = Config(endpoint=endpoint, protocol="http", region_id=REGION, access_key_id=ak,
                     access_key_secret=secret, signature_algorithm=algorithm)
        self.clients = {"ecs": (EcsClient(cfg), ecs_models), "vpc": (VpcClient(cfg), vpc_models)}

    def call(self, product: str, action: str, **params: Any) -> dict[str, Any]:
        client, models = self.clients[product]
        try:
            return call_action(client, models, action, params)
        except (ClientException, ServerException) as err:
            raise Refused(err.code, err.status_code, err.data.get("Message", "")) from err


class OldSdk:
    """aliyun-python-sdk-core's AcsClient with the generated request classes, as users call them
    (setters; ``set_<Name>s`` for lists). ``MODES`` sends some as GET and some with their
    parameters moved to a form body, so both RPC transports are exercised."""

    MODES = {"DescribeNetworkInterfaces": "GET", "DescribeVSwitches": "GET",
             "AssignPrivateIpAddresses": "FORM", "CreateNetworkInterface": "FORM"}

    def __init__(self, endpoint: str, ak: str, secret: str) -> None:
        self.endpoint = endpoint
        self.client = AcsClient(ak, secret, REGION, auto_retry=False)

    def call(self, product: str, action: str, **params: Any) -> dict[str, Any]:
        module = importlib.import_module(
            f"aliyunsdk{product}.request.{VERSIONS[product]}.{action}Request")
        request = getattr(module, f"{action}Request")()
        for name, value in params.items():
            setter = f"set_{name}s" if isinstance(value, list) else f"set_{name}"
            getattr(request, setter)(value)
        mode = self.MODES.get(action, "POST")
        if mode == "GET":
            request.set_method("GET")
        elif mode == "FORM":  # the action's parameters in the body, the signing ones in the query
            for key, value in list(request.get_query_params().items()):
                request.add_body_params(key, value)
            request.set_query_params({})
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("http")
        try:
            body: dict[str, Any] = json.loads(self.client.do_action_with_exception(request))
        except OldServerException as err:
            raise Refused(err.get_error_code(), err.get_http_status(), err.get_error_msg()) from err
        return body


Client = NewSdk | OldSdk


def make_client(style: str, endpoint: str, ak: str = AK, secret: str = SECRET) -> Client:
    if style == "old-sdk":
        return OldSdk(endpoint, ak, secret)
    algorithm = {"acs3": None, "acs3-sm3": "ACS3-HMAC-SM3", "v2": "v2"}[style]
    return NewSdk(endpoint, algorithm, ak, secret)


@pytest.fixture(scope="module")
def srv() -> Iterator[Served]:
    with served() as handle:
        yield handle
    assert SECRET not in handle.logs


def enis(client: Client, eni_id: str) -> list[dict[str, Any]]:
    body = client.call("ecs", "DescribeNetworkInterfaces", NetworkInterfaceId=[eni_id])
    return list(body["NetworkInterfaceSets"]["NetworkInterfaceSet"])


def wait_status(client: Client, eni_id: str, status: str) -> dict[str, Any]:
    """Poll DescribeNetworkInterfaces as upstream's WaitForNetworkInterface does (bounded)."""
    for _ in range(100):
        [eni] = enis(client, eni_id)
        if eni["Status"] == status:
            return eni
        time.sleep(0.05)
    raise AssertionError(f"{eni_id} never reached {status}: {eni}")


@pytest.mark.parametrize("style", STYLES)
def test_eni_lifecycle_in_each_style(srv: Served, style: str) -> None:
    c = make_client(style, srv.endpoint)
    vsw = srv.vswitches[PODS_CIDR]
    [info] = c.call("vpc", "DescribeVSwitches", VSwitchId=vsw)["VSwitches"]["VSwitch"]
    assert (info["VSwitchId"], info["CidrBlock"]) == (vsw, PODS_CIDR)
    free_before = info["AvailableIpAddressCount"]
    types = c.call("ecs", "DescribeInstanceTypes", InstanceTypes=[INSTANCE_TYPE])
    [t] = types["InstanceTypes"]["InstanceType"]
    want = CATALOG[INSTANCE_TYPE]
    assert (t["EniQuantity"], t["EniPrivateIpAddressQuantity"]) == (
        want.eni_quantity, want.eni_private_ip_quantity)

    created = c.call("ecs", "CreateNetworkInterface", VSwitchId=vsw,
                     SecurityGroupIds=[srv.security_group], SecondaryPrivateIpAddressCount=1,
                     Tag=[{"Key": "style", "Value": style}],
                     Description=f"{style} eni: a b+c/é~*'!()&=")
    eni_id = created["NetworkInterfaceId"]
    assert created["Status"] == "Available"
    c.call("ecs", "AttachNetworkInterface", NetworkInterfaceId=eni_id, InstanceId=srv.instance)
    attached = wait_status(c, eni_id, "InUse")  # attach is asynchronous in serve
    assert attached["InstanceId"] == srv.instance
    assert attached["Description"] == f"{style} eni: a b+c/é~*'!()&="
    assert ("style", style) in [(tag["TagKey"], tag["TagValue"]) for tag in attached["Tags"]["Tag"]]

    assigned = c.call("ecs", "AssignPrivateIpAddresses", NetworkInterfaceId=eni_id,
                      SecondaryPrivateIpAddressCount=2)
    ips = assigned["AssignedPrivateIpAddressesSet"]["PrivateIpSet"]["PrivateIpAddress"]
    assert len(ips) == 2
    c.call("ecs", "UnassignPrivateIpAddresses", NetworkInterfaceId=eni_id,
           PrivateIpAddress=[ips[0]])
    [eni] = enis(c, eni_id)
    held = [s["PrivateIpAddress"] for s in eni["PrivateIpSets"]["PrivateIpSet"]]
    assert len(held) == 3 and ips[0] not in held and ips[1] in held  # primary, 1 + 2 - 1

    c.call("ecs", "DetachNetworkInterface", NetworkInterfaceId=eni_id, InstanceId=srv.instance)
    wait_status(c, eni_id, "Available")
    c.call("ecs", "DeleteNetworkInterface", NetworkInterfaceId=eni_id)
    assert enis(c, eni_id) == []
    [after] = c.call("vpc", "DescribeVSwitches", VSwitchId=vsw)["VSwitches"]["VSwitch"]
    assert after["AvailableIpAddressCount"] == free_before


# what each client reports for a wrong secret: the cloud's 400 SignatureDoesNotMatch with its
# string to sign; the old SDK compares that string with its own and, when they are equal (only
# the secret differs), reports InvalidAccessKeySecret itself.
WRONG_SECRET = {
    "acs3": ("SignatureDoesNotMatch", f"{MISMATCH}ACS3-HMAC-SHA256 "),
    "acs3-sm3": ("SignatureDoesNotMatch", f"{MISMATCH}ACS3-HMAC-SM3 "),
    "v2": ("SignatureDoesNotMatch", f"{MISMATCH}POST&%2F&AccessKeyId%3D{AK}%26Action%3DCreateVpc"),
    "old-sdk": ("InvalidAccessKeySecret", "The AccessKeySecret is incorrect."),
}


@pytest.mark.parametrize("style", STYLES)
def test_wrong_secret_and_unknown_key_in_each_style(srv: Served, style: str) -> None:
    before = srv.snapshot()
    with pytest.raises(Refused) as info:
        make_client(style, srv.endpoint, secret="not-the-secret").call(
            "vpc", "CreateVpc", CidrBlock="10.0.0.0/8")
    code, prefix = WRONG_SECRET[style]
    assert (info.value.code, info.value.status) == (code, 400)
    assert info.value.message.startswith(prefix), info.value.message
    assert "not-the-secret" not in info.value.message and SECRET not in info.value.message
    with pytest.raises(Refused) as info:
        make_client(style, srv.endpoint, ak="LTAInobody").call(
            "vpc", "CreateVpc", CidrBlock="10.0.0.0/8")
    assert (info.value.code, info.value.status, info.value.message) == (
        "InvalidAccessKeyId.NotFound", 404, "Specified access key is not found.")
    assert srv.snapshot() == before
