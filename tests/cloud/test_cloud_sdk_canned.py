"""SdkCloud with canned bodies over ``responses``: wire parameters, paging, credentials."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from requests import PreparedRequest

from terway.cloud.credentials import Credential, Secret, StaticProvider
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.retry import NO_RETRY
from terway.cloud.sdk import SdkCloud, SdkConfig, split_endpoint

URL = re.compile(r"http://canned\.example/.*")


def eni_json(i: int) -> dict[str, Any]:
    return {"NetworkInterfaceId": f"eni-{i}", "MacAddress": f"00:16:3e:00:00:{i:02x}",
            "VSwitchId": "vsw-1", "ZoneId": "z", "Status": "InUse", "Type": "Secondary",
            "InstanceId": "i-1", "PrivateIpAddress": f"10.0.0.{i}",
            "PrivateIpSets": {"PrivateIpSet": [
                {"PrivateIpAddress": f"10.0.1.{i}", "Primary": False},
                {"PrivateIpAddress": f"10.0.0.{i}", "Primary": True}]},
            "Tags": {"Tag": [{"TagKey": "creator", "TagValue": "terway"}]},
            "SecurityGroupIds": {"SecurityGroupId": ["sg-1"]}}


class RequestLog:
    """The HTTP requests the canned endpoint saw: action, query and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []

    def record(self, req: PreparedRequest) -> tuple[str, dict[str, list[str]]]:
        query = parse_qs(urlsplit(req.url or "").query)
        action = str(req.headers.get("x-acs-action", ""))
        self.requests.append((action, query, dict(req.headers)))
        return action, query


@pytest.fixture
def rec() -> Iterator[tuple[responses.RequestsMock, RequestLog]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rs:
        yield rs, RequestLog()


def cloud(**kw: Any) -> SdkCloud:
    return SdkCloud(SdkConfig(region_id="cn-hangzhou", endpoint="http://canned.example",
                              page_size=kw.pop("page_size", 100)),
                    kw.pop("credentials", StaticProvider("AKID", "SK")),
                    sleep=lambda s: None, **kw)


def test_split_endpoint() -> None:
    assert split_endpoint("http://127.0.0.1:18080") == ("127.0.0.1:18080", "http")
    assert split_endpoint("https://ecs.aliyuncs.com/") == ("ecs.aliyuncs.com", "https")
    assert split_endpoint("ecs.cn-hangzhou.aliyuncs.com") == ("ecs.cn-hangzhou.aliyuncs.com",
                                                              "https")
    with pytest.raises(ValueError, match="endpoint"):
        split_endpoint("ftp://x")
    with pytest.raises(ValueError, match="endpoint"):
        SdkConfig(region_id="r", endpoint="http://h/path")
    with pytest.raises(ValueError, match="region_id"):
        SdkConfig(region_id="")


def test_create_sends_client_token_tags_and_groups(rec: Any) -> None:
    rs, r = rec

    def answer(req: PreparedRequest) -> tuple[int, dict[str, str], str]:
        r.record(req)
        return 200, {}, json.dumps({"RequestId": "R", **eni_json(7), "Status": "Available"})

    rs.add_callback(responses.POST, URL, callback=answer)
    eni = cloud().create_network_interface(
        vswitch_id="vsw-1", security_group_ids=["sg-1", "sg-2"], secondary_ip_count=2,
        tags={"creator": "terway"}, client_token="tok-123", description="terway eni")
    (action, q, _), = r.requests
    assert action == "CreateNetworkInterface"
    assert q["ClientToken"] == ["tok-123"]
    assert q["SecondaryPrivateIpAddressCount"] == ["2"]
    assert q["SecurityGroupIds.1"] == ["sg-1"] and q["SecurityGroupIds.2"] == ["sg-2"]
    assert (q["Tag.1.Key"], q["Tag.1.Value"]) == (["creator"], ["terway"])
    assert eni.private_ips == ("10.0.0.7", "10.0.1.7")       # primary first
    assert eni.secondary_ips == ("10.0.1.7",)


@pytest.mark.parametrize(("kw", "field"), [
    ({"client_token": ""}, "client_token"), ({"vswitch_id": ""}, "vswitch_id"),
    ({"secondary_ip_count": -1}, "secondary_ip_count")])
def test_create_rejects_bad_input_without_calling(rec: Any, kw: dict[str, Any],
                                                  field: str) -> None:
    args: dict[str, Any] = {"vswitch_id": "vsw-1", "security_group_ids": [],
                            "secondary_ip_count": 0, "tags": {}, "client_token": "t", **kw}
    with pytest.raises(ValueError, match=field):
        cloud().create_network_interface(**args)
    assert not rec[0].calls


def test_next_token_paging(rec: Any) -> None:
    rs, r = rec
    pages = {None: (["1", "2"], "t2"), "t2": (["3", "4"], "t3"), "t3": (["5"], "")}

    def answer(req: PreparedRequest) -> tuple[int, dict[str, str], str]:
        _, q = r.record(req)
        ids, nxt = pages[q.get("NextToken", [None])[0]]
        return 200, {}, json.dumps({"RequestId": "R", "NextToken": nxt, "NetworkInterfaceSets": {
            "NetworkInterfaceSet": [eni_json(int(i)) for i in ids]}})

    rs.add_callback(responses.POST, URL, callback=answer)
    found = cloud(page_size=2).describe_network_interfaces(instance_id="i-1")
    assert [e.eni_id for e in found] == ["eni-1", "eni-2", "eni-3", "eni-4", "eni-5"]
    assert all(q["MaxResults"] == ["2"] and q["InstanceId"] == ["i-1"] for _, q, _ in r.requests)


def test_page_number_fallback_when_server_only_counts(rec: Any) -> None:
    rs, r = rec

    def answer(req: PreparedRequest) -> tuple[int, dict[str, str], str]:
        _, q = r.record(req)
        page = int(q.get("PageNumber", ["1"])[0])
        ids = {1: [1, 2], 2: [3, 4], 3: [5]}[page]
        return 200, {}, json.dumps({"RequestId": "R", "TotalCount": 5, "PageNumber": page,
                                    "NetworkInterfaceSets": {"NetworkInterfaceSet": [
                                        eni_json(i) for i in ids]}})

    rs.add_callback(responses.POST, URL, callback=answer)
    found = cloud(page_size=2).describe_network_interfaces()
    assert len(found) == 5
    assert [q.get("PageNumber") for _, q, _ in r.requests] == [None, ["2"], ["3"]]


def test_eni_ids_are_chunked_by_100(rec: Any) -> None:
    rs, r = rec

    def answer(req: PreparedRequest) -> tuple[int, dict[str, str], str]:
        r.record(req)
        return 200, {}, json.dumps({"RequestId": "R", "NextToken": ""})

    rs.add_callback(responses.POST, URL, callback=answer)
    assert cloud().describe_network_interfaces(eni_ids=[f"eni-{i}" for i in range(250)]) == []
    assert len(r.requests) == 3
    assert "NetworkInterfaceId.100" in r.requests[0][1]
    assert "NetworkInterfaceId.51" not in r.requests[2][1]
    assert cloud().describe_network_interfaces(eni_ids=[]) == []
    assert len(r.requests) == 3


def test_unknown_instance_type_is_not_found(rec: Any) -> None:
    rs, _ = rec
    rs.add(responses.POST, URL, json={"RequestId": "R", "InstanceTypes": {"InstanceType": []}})
    with pytest.raises(CloudError) as info:
        cloud().describe_instance_type("ecs.nope")
    assert info.value.error_class is ErrorClass.NOT_FOUND


def test_html_error_page_is_transient(rec: Any) -> None:
    rs, _ = rec
    rs.add(responses.POST, URL, body="<html>502 Bad Gateway</html>", status=502)
    with pytest.raises(CloudError) as info:
        cloud(policies={"": NO_RETRY}).describe_vswitches(["vsw-1"])
    assert info.value.error_class is ErrorClass.TRANSIENT


class Rotating:
    """A provider whose credential changes between calls (a refreshed STS token)."""

    def __init__(self) -> None:
        self.n = 0

    def get(self) -> Credential:
        self.n += 1
        return Credential(f"STS.key{self.n}", Secret(f"secret{self.n}"),
                          Secret(f"token{self.n}"))


def test_each_request_signs_with_the_current_credential(rec: Any) -> None:
    rs, r = rec

    def answer(req: PreparedRequest) -> tuple[int, dict[str, str], str]:
        r.record(req)
        return 200, {}, json.dumps({"RequestId": "R", "VSwitches": {"VSwitch": []}})

    rs.add_callback(responses.POST, URL, callback=answer)
    c = cloud(credentials=Rotating())
    c.describe_vswitches(["vsw-1"])
    c.describe_vswitches(["vsw-1"])
    auths = [h["Authorization"] for _, _, h in r.requests]
    assert "Credential=STS.key" in auths[0]
    assert auths[0].split(",")[0] != auths[1].split(",")[0]
    tokens = [h.get("x-acs-security-token") for _, _, h in r.requests]
    assert all(t and t.startswith("token") for t in tokens)


def test_metrics_hook_sees_every_attempt(rec: Any) -> None:
    rs, _ = rec
    rs.add(responses.POST, URL, status=503,
           json={"RequestId": "R1", "Code": "ServiceUnavailable", "Message": "busy"})
    rs.add(responses.POST, URL, json={"RequestId": "R2", "VSwitches": {"VSwitch": []}})
    seen: list[tuple[str, str]] = []
    cloud(on_call=lambda api, s, e: seen.append((api, e))).describe_vswitches(["vsw-1"])
    assert seen == [("DescribeVSwitches", "ServiceUnavailable"), ("DescribeVSwitches", "")]


def test_no_secret_in_repr_or_errors(rec: Any, caplog: pytest.LogCaptureFixture) -> None:
    rs, _ = rec
    rs.add(responses.POST, URL, status=403,
           json={"RequestId": "R", "Code": "Forbidden.RAM", "Message": "denied"})
    c = cloud(credentials=StaticProvider("AKID", "VerySecretSK"))
    with pytest.raises(CloudError) as info:
        c.describe_vswitches(["vsw-1"])
    assert info.value.error_class is ErrorClass.AUTH
    for text in (repr(c), str(info.value), repr(info.value), caplog.text):
        assert "VerySecretSK" not in text
