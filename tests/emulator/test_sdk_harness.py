"""Support for test_sdk*.py (no tests here): drive the emulator with the UNMODIFIED SDK clients.

``front_end(kind)`` yields a ``Harness``: ``kind="http"`` serves a threaded HTTP server on a free
port, ``kind="mock"`` activates ``mock_aliyun`` (no socket). Every scenario in test_sdk*.py runs
on both, so the two front ends cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from emulator.server import Emulator
from emulator.wire.mock import mock_aliyun
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

REGION = "cn-hangzhou"
ZONE = "cn-hangzhou-h"
FRONT_ENDS = ("http", "mock")


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("v_switch", "vswitch")


@dataclass
class Harness:
    """The emulator facade plus SDK clients and a base URL for metadata/control requests."""

    kind: str
    emu: Emulator
    ecs_endpoint: str
    vpc_endpoint: str
    protocol: str
    base_url: str

    def config(self, endpoint: str, ak: str, secret: str) -> Config:
        return Config(endpoint=endpoint, protocol=self.protocol, region_id=REGION,
                      access_key_id=ak, access_key_secret=secret)

    def ecs_client(self, ak: str = DEFAULT_ACCESS_KEY_ID,
                   secret: str = DEFAULT_ACCESS_KEY_SECRET) -> EcsClient:
        return EcsClient(self.config(self.ecs_endpoint, ak, secret))

    def vpc_client(self, ak: str = DEFAULT_ACCESS_KEY_ID,
                   secret: str = DEFAULT_ACCESS_KEY_SECRET) -> VpcClient:
        return VpcClient(self.config(self.vpc_endpoint, ak, secret))

    def ecs(self, action: str, client: EcsClient | None = None, **params: Any) -> dict[str, Any]:
        """Call ``action`` through the ECS SDK client's own typed method and request model."""
        return call_action(client or self.ecs_client(), ecs_models, action, params)

    def vpc(self, action: str, client: VpcClient | None = None, **params: Any) -> dict[str, Any]:
        return call_action(client or self.vpc_client(), vpc_models, action, params)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base_url + path, timeout=10)

    def control(self, method: str, name: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.base_url}/_emulator/{name}", json=body,
                                timeout=10)


def call_action(client: Any, models: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """``client.<snake_action>(<Action>Request.from_map(params))`` → the response body map."""
    request = getattr(models, f"{action}Request")().from_map({"RegionId": REGION, **params})
    method = getattr(client, _snake(action))
    body: dict[str, Any] = method(request).body.to_map()
    return body


@contextmanager
def front_end(kind: str, emu: Emulator | None = None) -> Iterator[Harness]:
    emu = emu or Emulator.create(seed=7)
    if kind == "http":
        with emu.serve() as handle:
            yield Harness(kind, emu, handle.endpoint, handle.endpoint, "http", handle.url)
    else:
        with mock_aliyun(emu):
            yield Harness(kind, emu, "ecs.cn-hangzhou.aliyuncs.com",
                          "vpc.cn-hangzhou.aliyuncs.com", "https", "http://100.100.100.200")


@dataclass
class World:
    vpc_id: str
    vswitch_id: str
    sg_id: str
    instance_id: str


def build_world(h: Harness, cidr: str = "192.168.1.0/24", itype: str = "ecs.g6.large") -> World:
    """CreateVpc, CreateVSwitch, CreateSecurityGroup, RunInstances: as on the real cloud."""
    vpc_id = h.vpc("CreateVpc", CidrBlock="192.168.0.0/16", VpcName="test")["VpcId"]
    vsw_id = h.vpc("CreateVSwitch", VpcId=vpc_id, ZoneId=ZONE, CidrBlock=cidr)["VSwitchId"]
    sg_id = h.ecs("CreateSecurityGroup", VpcId=vpc_id)["SecurityGroupId"]
    run = h.ecs("RunInstances", InstanceType=itype, VSwitchId=vsw_id, SecurityGroupId=sg_id,
                ImageId="aliyun_3_x64", Amount=1)
    return World(vpc_id, vsw_id, sg_id, run["InstanceIdSets"]["InstanceIdSet"][0])
