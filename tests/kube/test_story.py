"""The seeds' IpNotEnough story, told through kubectl only, on clusters of its own.

A Deployment scales past a small vSwitch; pods stay ContainerCreating; ``kubectl describe pod``
shows ``error allocate ip``; ``kubectl logs … -c terway`` shows the seeds' exact warning; the
vSwitch has 0 available addresses (official VPC SDK). The remedy: a same-zone /19 vSwitch created
with the official VPC SDK, added with ``kubectl -n kube-system edit cm eni-config``; then the
pending pods run with addresses from the new vSwitch — once with the edit alone, once with
``kubectl -n kube-system delete pod -l app=terway-eniip`` as well, as the seeds do it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.cluster import Cluster
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tests.kube.conftest import bring_up, dump_on_failure, wait_for
from tests.kube.test_rbac import forbidden
from tests.kube.workloads import (
    apply,
    deployment,
    events,
    in_cidr,
    pod_ip,
    pods,
    running,
    terway_logs,
)

REPLICAS = 30                    # > the /27 pod vSwitch's addresses, < the nodes' capacity
REMEDY_CIDR = "192.168.32.0/19"  # 8192 addresses, as the seeds advise
SEEDS_LINE = (r'level=warning msg="Assign private ip address failed: Aliyun API Error: '
              r'RequestId: [0-9A-F-]+ Status Code: 403 Code: InvalidVSwitchId\.IpNotEnough '
              r'Message: The specified VSwitch \\"{vsw}\\" has not enough IpAddress\., retrying"')


def vpc_client(cluster: Cluster) -> object:
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_vpc20160428.client import Client

    return Client(Config(access_key_id=DEFAULT_ACCESS_KEY_ID,
                         access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
                         endpoint=cluster.server.endpoint, protocol="http",
                         region_id=cluster.cloud.region_id))


def available_ips(cluster: Cluster, vsw: str) -> int:
    from alibabacloud_vpc20160428.models import DescribeVSwitchesRequest

    resp = vpc_client(cluster).describe_vswitches(DescribeVSwitchesRequest(  # type: ignore[attr-defined]
        region_id=cluster.cloud.region_id, v_switch_id=vsw))
    return int(resp.body.v_switches.v_switch[0].available_ip_address_count)


def create_vswitch(cluster: Cluster, cidr: str, zone: str) -> str:
    from alibabacloud_vpc20160428.models import CreateVSwitchRequest

    resp = vpc_client(cluster).create_vswitch(CreateVSwitchRequest(  # type: ignore[attr-defined]
        region_id=cluster.cloud.region_id, vpc_id=cluster.world.vpc_id, zone_id=zone,
        cidr_block=cidr, v_switch_name="remedy"))
    return str(resp.body.v_switch_id)


def sufficient_ip(cluster: Cluster, node: str) -> dict | None:
    """The node's SufficientIP condition, as terwayd set it."""
    doc = json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)
    return next((c for c in doc["status"].get("conditions", [])
                 if c["type"] == "SufficientIP"), None)


def pending(cluster: Cluster) -> list[dict]:
    return [p for p in pods(cluster, "app=story") if not p["status"].get("podIP")]


@pytest.fixture(params=[False, True], ids=["edit-only", "edit-and-restart-terway"])
def story(request: pytest.FixtureRequest) -> Iterator[tuple[Cluster, bool]]:
    c = bring_up(f"story-{int(request.param)}")
    try:
        yield c, bool(request.param)
    finally:
        if getattr(request.node, "rep_call_failed", True):
            dump_on_failure(c)
        c.down()


def test_seeds_ip_not_enough_story(story: tuple[Cluster, bool]) -> None:
    cluster, restart = story
    small = cluster.world.pod_vswitch
    apply(cluster, deployment("story", REPLICAS, spread=True))

    # 1. The vSwitch runs dry; some pods stay ContainerCreating.
    wait_for("the pods' vSwitch at 0 available addresses",
             lambda: available_ips(cluster, small) == 0, 180)
    stuck = wait_for("pods stuck without an address", lambda: pending(cluster), 60)

    # 2. What `kubectl describe pod` and `kubectl logs -c terway` show, as in the seeds.
    def described() -> tuple[dict, str] | None:
        for p in pending(cluster):
            text = cluster.kubectl("describe", "pod", p["metadata"]["name"]).stdout
            if "error allocate ip" in text:
                return p, text
        return None
    victim, text = wait_for("`kubectl describe pod` showing error allocate ip", described, 120)
    pod, node = victim["metadata"]["name"], victim["spec"]["nodeName"]
    assert victim["status"]["phase"] == "Pending"
    assert "ContainerCreating" in text, text
    line = re.compile(SEEDS_LINE.format(vsw=re.escape(small)))
    wait_for("the seeds' warning in `kubectl logs -c terway`",
             lambda: line.search(terway_logs(cluster, node)), 90)
    failed = wait_for("an AllocIPFailed event on the stuck pod", lambda: [
        e for e in events(cluster, "default", pod) if e["reason"] == "AllocIPFailed"], 60)
    assert failed[0]["type"] == "Warning"
    assert "InvalidVSwitchId.IpNotEnough" in failed[0]["message"], failed[0]["message"]
    cond = wait_for("SufficientIP=False on the node", lambda: (
        c if (c := sufficient_ip(cluster, node)) and c["status"] == "False" else None), 60)
    assert cond["reason"] == "InsufficientIP", cond

    # 3. The remedy: a same-zone /19 through the official VPC SDK, added with kubectl edit.
    zone = cluster.cloud.describe_vswitches([small])[0].zone_id
    new = create_vswitch(cluster, REMEDY_CIDR, zone)
    editor = f"{sys.executable} {Path(__file__).with_name('edit_eni_config.py')}"
    proc = cluster.kubectl("-n", "kube-system", "edit", "cm", "eni-config", check=False,
                           env={"EDITOR": editor, "TERWAY_ADD_VSWITCH": new})
    assert proc.returncode == 0 and "edited" in proc.stdout, proc.stdout + proc.stderr
    conf = json.loads(json.loads(cluster.kubectl("-n", "kube-system", "get", "cm", "eni-config",
                                                 "-o", "json").stdout)["data"]["eni_conf"])
    assert new in conf["vswitches"][zone]
    if restart:
        cluster.kubectl("-n", "kube-system", "delete", "pod", "-l", "app=terway-eniip")

    # 4. Every pod runs; the ones that waited have addresses from the new vSwitch.
    ps = running(cluster, "app=story", REPLICAS, timeout=300)
    by_name = {p["metadata"]["name"]: p for p in ps}
    assert in_cidr(pod_ip(by_name[pod]), REMEDY_CIDR), pod_ip(by_name[pod])
    assert all(in_cidr(pod_ip(p), REMEDY_CIDR) or in_cidr(pod_ip(p), cluster.world.pod_cidr)
               for p in ps)
    assert len(stuck) >= 1
    assert len({pod_ip(p) for p in ps}) == REPLICAS
    wait_for("SufficientIP=True again", lambda: (
        c if (c := sufficient_ip(cluster, node)) and c["status"] == "True" else None), 90)
    assert forbidden(cluster) == []
