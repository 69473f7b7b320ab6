"""The cluster itself and the plugin's pods on it: every node an emulated ECS instance, the
DaemonSet deployed with ``kubectl apply -k``, pods with VPC addresses from their node's ENIs, and
real traffic between pods on two nodes (no tunnel) and to their node."""

from __future__ import annotations

import json
import time

import pytest

from emulator.cluster import Cluster
from tests.kube.conftest import wait_for
from tests.kube.workloads import (
    apply,
    delete,
    deployment,
    exec_in,
    in_cidr,
    pod_ip,
    pod_state,
    running,
    terway_pods,
)


def test_nodes_are_emulated_instances(cluster: Cluster) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    by_ip = {i.primary_ip: i for i in cluster.node_instances()}
    assert len(nodes) == 2 == len(by_ip)
    for n in nodes:
        ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
        inst = by_ip[ip]                      # node IP = the instance's primary private IP
        assert n["spec"]["providerID"] == f"{cluster.cloud.region_id}.{inst.instance_id}"
        assert n["metadata"]["labels"]["topology.kubernetes.io/zone"] == inst.zone_id
        assert n["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")
        assert n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_daemonset_runs_the_image_on_every_node(cluster: Cluster) -> None:
    ds = json.loads(cluster.kubectl("-n", "kube-system", "get", "ds", "terway-eniip",
                                    "-o", "json").stdout)
    assert ds["status"]["numberReady"] == 2
    images = {c["image"] for c in ds["spec"]["template"]["spec"]["containers"]}
    assert cluster.artifacts is not None
    assert images == {cluster.artifacts.ref("terway")}
    assert set(terway_pods(cluster)) == {n.spec.name for n in cluster.members}


def test_pods_get_vpc_addresses_from_their_nodes_enis(cluster: Cluster) -> None:
    apply(cluster, deployment("addr", 4, spread=True))
    try:
        ps = running(cluster, "app=addr", 4)
        assert len({pod_ip(p) for p in ps}) == 4
        nodes = {n.spec.name: n.spec.instance_id for n in cluster.members}
        assert {p["spec"]["nodeName"] for p in ps} == set(nodes)
        for p in ps:
            ip = pod_ip(p)
            assert in_cidr(ip, cluster.world.pod_cidr), ip
            inst = cluster.cloud.get_instance(nodes[p["spec"]["nodeName"]])
            enis = cluster.cloud.describe_network_interfaces(instance_id=inst.instance_id)
            owners = [e.eni_id for e in enis if ip in e.private_ips]
            # one of the node's secondary ENIs holds it (as upstream, an ENI's own primary
            # address serves a pod too: (ENIs - 1) x addresses per ENI)
            assert len(owners) == 1 and owners[0] != inst.primary_eni_id, (ip, owners)
    finally:
        delete(cluster, "deployment", "addr")


@pytest.fixture
def web(cluster: Cluster) -> object:
    apply(cluster, deployment("web", 2, spread=True))
    try:
        yield running(cluster, "app=web", 2)
    finally:
        delete(cluster, "deployment", "web")


def test_pods_on_two_nodes_talk_by_vpc_address(cluster: Cluster, web: list[dict]) -> None:
    a, b = web
    assert a["spec"]["nodeName"] != b["spec"]["nodeName"]
    for src, dst in ((a, b), (b, a)):
        # HTTP by hand with nc (busybox-static's wget crashes in static glibc's NSS).
        out = exec_in(cluster, src, "sh", "-c", "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' "
                      f"| nc -w 5 {pod_ip(dst)} 8080")
        assert out.startswith("HTTP/1.") and " 200 " in out.splitlines()[0], out
        assert out.rstrip().endswith(dst["metadata"]["name"])   # the other pod's /etc/hostname
    # No tunnel: the router of the emulated VPC forwards the pod address to its node's ENI.
    owner = cluster.node(b["spec"]["nodeName"]).spec.instance_id
    assert cluster.fabric.owner_of(pod_ip(b)) == owner


def test_pods_reach_their_node(cluster: Cluster, web: list[dict]) -> None:
    for p in web:
        node_ip = p["status"]["hostIP"]
        out = exec_in(cluster, p, "ping", "-c", "1", "-W", "3", node_ip, check=False)
        assert "1 packets received" in out, out + pod_state(cluster, p)


def test_gc_resync_leaves_running_pods_interfaces_alone(cluster: Cluster,
                                                        web: list[dict]) -> None:
    """terwayd re-runs every pod's datapath set-up each GC period (10 s in the test bed, as
    deploy/testbed says): the pod's eth0 must be the same interface afterwards. Recreating it
    cut pods off for a moment every period ('Network is unreachable')."""
    def eth0(p: dict) -> str:
        return exec_in(cluster, p, "cat", "/sys/class/net/eth0/ifindex").strip()

    before = [eth0(p) for p in web]
    time.sleep(15)   # more than one GC period; no speed is asserted
    assert [eth0(p) for p in web] == before


def test_cluster_api_reachable_from_pods_for_terwayd(cluster: Cluster) -> None:
    """terwayd's in-cluster client works: its node annotation is there (written via the API)."""
    def annotated() -> bool:
        nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        return all("k8s.aliyun.com/max-available-ip" in n["metadata"].get("annotations", {})
                   for n in nodes)
    wait_for("max-available-ip annotation on every node", annotated, 60)
