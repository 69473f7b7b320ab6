"""The ``aliyun/eni`` extended resource through the real kubelet's device-plugin API.

A cluster of its own (it switches a node to exclusive ENIs): two nodes in shared mode, then one
labelled ``terway-config=<ConfigMap>`` whose ``eni_conf`` is ``daemon_mode: ENIOnly``, as an
operator would. Its terwayd, restarted, serves the device plugin in the kubelet's
``/var/lib/kubelet/device-plugins`` (the node's own: each emulated node has its mount namespace),
the kubelet publishes ``aliyun/eni`` = the node's ENI capacity in the Node's allocatable, and the
scheduler places a pod asking for one ENI there (it runs on an ENI of its own) and keeps a pod
asking for more than the node has Pending (``Insufficient aliyun/eni``). A kubelet restart
empties the directory: terwayd serves and registers again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.cluster import Cluster
from emulator.cluster.node import Node
from tests.kube.conftest import bring_up, wait_for
from tests.kube.workloads import (
    BUSYBOX,
    apply,
    delete,
    events,
    pod_ip,
    pods,
    running,
    terway_logs,
    terway_pods,
)

RESOURCE = "aliyun/eni"
CAPACITY = 3          # ecs.g6.2xlarge: 4 ENIs, the primary one not given to pods
CONFIGMAP = "terway-config-eni-only"
REGISTERED = "registered device plugin with the kubelet"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Named like conftest's shared cluster so failures save this one's diagnostics."""
    c = bring_up("deviceplugin", eni_conf={"min_pool_size": 0, "max_pool_size": 0})
    try:
        node = exclusive_node(c).spec.name
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": CONFIGMAP, "namespace": "kube-system"},
              "data": {"eni_conf": json.dumps({"daemon_mode": "ENIOnly"})}}
        apply(c, json.dumps(cm))
        c.kubectl("label", "node", node, f"terway-config={CONFIGMAP}", "--overwrite")
        c.kubectl("-n", "kube-system", "delete", "pod", terway_pods(c)[node])
        c.wait(lambda: terway_ready(c, node), "terway pod back on the ENIOnly node", 120)
        yield c
    finally:
        c.down()


def exclusive_node(cluster: Cluster) -> Node:
    return cluster.members[1]


def terway_ready(cluster: Cluster, node: str) -> bool:
    ps = [p for p in pods(cluster, "app=terway-eniip", "kube-system")
          if p["spec"]["nodeName"] == node and not p["metadata"].get("deletionTimestamp")]
    return len(ps) == 1 and all(s.get("ready") for s in ps[0]["status"].get(
        "containerStatuses", [{}]))


def node_status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", "node", name, "-o", "json").stdout)["status"])


def eni_pod(name: str, enis: int) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                                 "command": ["sh", "-c", "sleep 100000"],
                                 "resources": {"limits": {RESOURCE: str(enis)}}}]}})


def allocatable(cluster: Cluster, name: str) -> str | None:
    return node_status(cluster, name).get("allocatable", {}).get(RESOURCE)


def test_allocatable_counts_the_enis_and_the_scheduler_uses_it(cluster: Cluster) -> None:
    node = exclusive_node(cluster)
    shared = cluster.members[0].spec.name
    got = wait_for(f"{RESOURCE} in {node.spec.name}'s allocatable",
                   lambda: allocatable(cluster, node.spec.name), 90)
    assert got == str(CAPACITY)
    assert node_status(cluster, node.spec.name)["capacity"][RESOURCE] == str(CAPACITY)
    assert allocatable(cluster, shared) is None          # shared mode: no device plugin
    sockets = [p.name for p in node.host_path("/var/lib/kubelet/device-plugins").iterdir()
               if p.name.endswith("-eni.sock")]
    assert len(sockets) == 1, sockets                    # the restarted daemon's only

    apply(cluster, eni_pod("one-eni", 1))
    apply(cluster, eni_pod("too-many-enis", CAPACITY + 1))
    try:
        (p,) = running(cluster, "app=one-eni", 1)
        assert p["spec"]["nodeName"] == node.spec.name
        ip = pod_ip(p)
        (eni,) = [e for e in cluster.cloud.describe_network_interfaces(
            instance_id=node.spec.instance_id) if e.primary_ip == ip]
        assert eni.private_ips == (ip,), eni              # the pod owns the whole ENI
        assert eni.eni_type == "Secondary"

        def refused() -> list[dict[str, Any]]:
            return [e for e in events(cluster, "default", "too-many-enis")
                    if e["reason"] == "FailedScheduling"]
        (ev, *_) = wait_for("FailedScheduling of too-many-enis", refused, 60)
        assert f"Insufficient {RESOURCE}" in ev["message"], ev["message"]
        (pending,) = pods(cluster, "app=too-many-enis")
        assert pending["status"]["phase"] == "Pending"
        assert not pending["spec"].get("nodeName")
        allocated = [line for line in terway_logs(cluster, node.spec.name).splitlines()
                     if "msg=allocate " in line]
        assert len(allocated) == 1 and "containers=1" in allocated[0], allocated
    finally:
        delete(cluster, "pod", "one-eni", "too-many-enis")


def test_a_kubelet_restart_is_followed_by_a_new_registration(cluster: Cluster) -> None:
    """The kubelet empties its device-plugin directory when it starts; terwayd's watch (every
    30 s, as upstream) sees its socket gone, serves it again and registers again."""
    node = exclusive_node(cluster)
    name = node.spec.name
    assert terway_logs(cluster, name).count(REGISTERED) == 1
    node.stop_kubelet()
    node.start_kubelet()
    wait_for("terwayd to register again after the kubelet restart",
             lambda: terway_logs(cluster, name).count(REGISTERED) == 2, 90)
    assert "device plugin socket removed" in terway_logs(cluster, name)
    assert wait_for(f"{RESOURCE} back in the allocatable",
                    lambda: allocatable(cluster, name) == str(CAPACITY), 60)
    apply(cluster, eni_pod("after-restart", 1))
    try:
        (p,) = running(cluster, "app=after-restart", 1)
        assert p["spec"]["nodeName"] == name
    finally:
        delete(cluster, "pod", "after-restart")
