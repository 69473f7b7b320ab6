"""Upstream Terway's own cloud client library against ``terway-emulator serve``.

tests/go/aliyunclient is a Go program built from Go modules against the alibaba-cloud-sdk-go
version upstream pins (go.mod/go.sum); it makes every ECS/VPC call upstream's pkg/aliyun/client
makes, the way it makes them (RPC style, HMAC-SHA1), and prints what the SDK returned as JSON.
Built once into a cache outside the repository (tests/gobuild.py). Without Go the test skips,
except in CI (TERWAY_REQUIRE_PRIVILEGED=1), where it fails.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulator.model import CATALOG
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tests.emulator.serve_harness import INSTANCE_TYPE, PODS_CIDR, TINY_CIDR, served
from tests.gobuild import go_binary

MODULE = Path(__file__).resolve().parents[1] / "go" / "aliyunclient"
MISMATCH = "Specified signature is not matched with our calculation. server string to sign is:"
# the ECS/VPC calls upstream Terway makes through this SDK (pkg/aliyun/client)
UPSTREAM_CALLS = {
    "CreateNetworkInterface", "AttachNetworkInterface", "AssignPrivateIpAddresses",
    "UnassignPrivateIpAddresses", "DetachNetworkInterface", "DeleteNetworkInterface",
    "DescribeNetworkInterfaces", "DescribeInstanceTypes", "DescribeVSwitches",
}
EXTRA_ENIS, ENI_PAGE, TYPES_PAGE = 4, 2, 10
# AssignPrivateIpAddresses: one call per 2 s, the code upstream retries on
THROTTLE = {"kind": "throttle", "action": "AssignPrivateIpAddresses", "rate": 0.5, "burst": 1,
            "code": "Throttling"}


def pinned_sdk() -> str:
    match = re.search(r"github\.com/aliyun/alibaba-cloud-sdk-go (v\S+)",
                      (MODULE / "go.mod").read_text())
    assert match, "go.mod pins no alibaba-cloud-sdk-go"
    return f"github.com/aliyun/alibaba-cloud-sdk-go {match.group(1)}"


@pytest.fixture(scope="module")
def client() -> Path:
    return go_binary(MODULE)


@pytest.mark.slow
def test_upstream_go_sdk_runs_every_call_against_serve(client: Path) -> None:
    with served() as srv:
        srv.control("POST", "faults", THROTTLE)
        tiny = srv.vswitches[TINY_CIDR]
        run = subprocess.run(
            [str(client), "-endpoint", srv.endpoint, "-region", "cn-hangzhou",
             "-ak", DEFAULT_ACCESS_KEY_ID, "-secret", DEFAULT_ACCESS_KEY_SECRET,
             "-vswitch", srv.vswitches[PODS_CIDR], "-small-vswitch", tiny,
             "-security-group", srv.security_group, "-instance", srv.instance,
             "-instance-type", INSTANCE_TYPE, "-eni-page-size", str(ENI_PAGE),
             "-types-page-size", str(TYPES_PAGE), "-extra-enis", str(EXTRA_ENIS)],
            capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, run.stderr
        r: dict[str, Any] = json.loads(run.stdout)
        snap = srv.snapshot()
    assert DEFAULT_ACCESS_KEY_SECRET not in srv.logs

    assert r["sdk"] == pinned_sdk()
    assert set(r["calls"]) == UPSTREAM_CALLS

    vsws = {v["CidrBlock"]: v for v in r["vswitches"]}
    assert vsws[PODS_CIDR]["AvailableIpAddressCount"] == 252 - 1  # the instance's primary
    assert vsws[TINY_CIDR]["AvailableIpAddressCount"] == 4
    assert r["instance_type_count"] == len(CATALOG)
    assert r["instance_type_pages"] == math.ceil(len(CATALOG) / TYPES_PAGE)
    want = CATALOG[INSTANCE_TYPE]
    assert r["limits"] == {INSTANCE_TYPE: [want.eni_quantity, want.eni_private_ip_quantity]}

    assert r["create_status"] == "Available" and r["create_attempts"] == [{"ok": True}]
    assert (r["attached_status"], r["attached_to"]) == ("InUse", srv.instance)

    # the second assignment came within the bucket's 2 s: Throttling, retried until it passed
    first, second = r["assign_attempts"]
    assert first == [{"ok": True}]
    assert len(second) >= 2 and second[-1] == {"ok": True}
    for attempt in second[:-1]:
        err = attempt["error"]
        assert (err["code"], err["http_status"]) == ("Throttling", 400)
        assert err["message"] == "Request was denied due to request throttling."
    assert [len(ips) for ips in r["assigned"]] == [2, 1]
    assigned = [ip for ips in r["assigned"] for ip in ips]
    assert r["unassigned"] == assigned[:1]
    assert set(assigned[1:]) <= set(r["held_after_unassign"])
    assert assigned[0] not in r["held_after_unassign"]
    assert len(r["held_after_unassign"]) == 1 + 1 + 3 - 1  # primary, created with 1, +3, -1

    # DescribeNetworkInterfaces paged by NextToken/MaxResults, upstream's loop
    assert len(r["created"]) == 1 + EXTRA_ENIS
    assert sorted(r["paged_enis"]) == sorted(r["created"])
    assert r["pages"] == math.ceil(len(r["created"]) / ENI_PAGE)

    nope = r["ip_not_enough"]
    assert (nope["code"], nope["http_status"]) == ("InvalidVSwitchId.IpNotEnough", 403)
    assert nope["message"] == f'The specified VSwitch "{tiny}" has not enough IpAddress.'
    assert nope["request_id"] and nope["host_id"] == "ecs.aliyuncs.com"
    assert r["upstream_moves_to_next_vswitch"] is True  # upstream's ErrorCodeIs matches it

    assert r["detached_status"] == "Available"
    assert r["left_after_delete"] == []
    assert [e for e in snap["enis"] if e["eni_type"] != "Primary"] == []

    wrong = r["wrong_secret"]
    assert (wrong["code"], wrong["http_status"]) == ("SignatureDoesNotMatch", 400)
    assert wrong["message"].startswith(f"{MISMATCH}POST&%2F&AccessKeyId%3D")
    # the SDK compares the server's string to sign with its own: equal → only the secret differs
    assert wrong["recommend"] == "InvalidAccessKeySecret: Please check you AccessKeySecret"
    unknown = r["unknown_key"]
    assert (unknown["code"], unknown["http_status"], unknown["message"]) == (
        "InvalidAccessKeyId.NotFound", 404, "Specified access key is not found.")
