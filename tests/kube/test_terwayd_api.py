"""terwayd's Kubernetes side against the real API server: pod events, the node annotation, the
per-node ``terway-config`` ConfigMap, pod annotations (bandwidth, IP reservation), StatefulSet
stickiness from owner references, and GC confirmed through the API."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from emulator.cluster import Cluster
from tests.kube.conftest import wait_for
from tests.kube.workloads import (
    apply,
    delete,
    deployment,
    events,
    exec_in,
    pod_ip,
    pods,
    running,
    terway_pods,
)

CAPACITY = 30    # ecs.g6.2xlarge: (4 ENIs - 1) x 10 addresses, as terwayd reports it


def pod_pid(pod_name: str) -> int:
    """A process of the pod's container, found by the hostname kubelet gave it."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/root/etc/hostname").read_text().strip() == pod_name:
                return int(entry)
        except OSError:
            continue
    raise AssertionError(f"no process of pod {pod_name}")


def tc_in(netns_of_pid: int) -> str:
    return subprocess.run(["nsenter", f"--net=/proc/{netns_of_pid}/ns/net", "tc", "qdisc",
                           "show"], capture_output=True, text=True, check=True).stdout


def test_alloc_succeed_event_on_the_pod(cluster: Cluster) -> None:
    apply(cluster, deployment("evt", 1))
    try:
        (p,) = running(cluster, "app=evt", 1)
        name = p["metadata"]["name"]
        evs = wait_for("an AllocIPSucceed event", lambda: [
            e for e in events(cluster, "default", name) if e["reason"] == "AllocIPSucceed"], 30)
        assert evs[0]["type"] == "Normal"
        assert evs[0]["source"]["component"] == "terway-daemon"
        assert pod_ip(p) in evs[0]["message"], evs[0]["message"]
        assert "AllocIPSucceed" in cluster.kubectl("describe", "pod", name).stdout
    finally:
        delete(cluster, "deployment", "evt")


def test_node_annotation_max_available_ip(cluster: Cluster) -> None:
    def values() -> list[str] | None:
        nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        got = [n["metadata"].get("annotations", {}).get("k8s.aliyun.com/max-available-ip")
               for n in nodes]
        return got if all(got) else None
    assert wait_for("max-available-ip on both nodes", values, 60) == [str(CAPACITY)] * 2


def test_bandwidth_annotations_shape_the_pods_traffic(cluster: Cluster) -> None:
    apply(cluster, deployment("bw-k8s", 1, annotations={
        "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "20M"}))
    # upstream's own annotation is bytes/s in 1024-based units: 125K = 128000 B/s = 1024 kbit/s
    apply(cluster, deployment("bw-aliyun", 1, annotations={
        "k8s.aliyun.com/ingress-bandwidth": "125K", "k8s.aliyun.com/egress-bandwidth": "250K"}))
    try:
        for app, ingress, egress in (("bw-k8s", "10Mbit", "20Mbit"),
                                     ("bw-aliyun", "1024Kbit", "2048Kbit")):
            (p,) = running(cluster, f"app={app}", 1)
            pod_tc = tc_in(pod_pid(p["metadata"]["name"]))
            node = cluster.node(p["spec"]["nodeName"])
            assert node.holder is not None
            node_tc = tc_in(node.holder.pid)
            assert f"rate {egress}" in pod_tc, pod_tc           # egress: on the pod's eth0
            assert f"rate {ingress}" in node_tc, node_tc        # ingress: on the host veth
    finally:
        delete(cluster, "deployment", "bw-k8s", "bw-aliyun")


STATEFULSET = json.dumps({
    "apiVersion": "apps/v1", "kind": "StatefulSet",
    "metadata": {"name": "sticky", "namespace": "default"},
    "spec": {"serviceName": "sticky", "replicas": 1,
             "selector": {"matchLabels": {"app": "sticky"}},
             "template": {"metadata": {"labels": {"app": "sticky"}},
                          "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                              "name": "main", "image": "localhost/terway-testbed/busybox:1",
                              "imagePullPolicy": "Never",
                              "command": ["sh", "-c", "sleep 100000"]}]}}}})


def test_statefulset_pod_keeps_its_address(cluster: Cluster) -> None:
    """Recreated on the same node (a reserved address is the node's), sticky-0 gets it back."""
    doc = json.loads(STATEFULSET)
    doc["spec"]["template"]["spec"]["nodeName"] = cluster.members[0].spec.name
    apply(cluster, json.dumps(doc))
    try:
        (first,) = running(cluster, "app=sticky", 1)
        uid = first["metadata"]["uid"]
        cluster.kubectl("delete", "pod", "sticky-0", "--wait=true")
        again = wait_for("sticky-0 recreated and Running", lambda: [
            p for p in pods(cluster, "app=sticky") if p["metadata"]["uid"] != uid
            and p["status"].get("phase") == "Running" and p["status"].get("podIP")], 120)
        assert pod_ip(again[0]) == pod_ip(first)
    finally:
        delete(cluster, "statefulset", "sticky")


def test_ip_reservation_annotation_keeps_the_address(cluster: Cluster) -> None:
    """A bare pod annotated k8s.aliyun.com/pod-ip-reservation gets its address back when it is
    recreated under the same name."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "reserved", "namespace": "default", "labels": {"app": "reserved"},
                        "annotations": {"k8s.aliyun.com/pod-ip-reservation": "true"}},
           "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
               "name": "main", "image": "localhost/terway-testbed/busybox:1",
               "imagePullPolicy": "Never", "command": ["sh", "-c", "sleep 100000"]}]}}
    apply(cluster, json.dumps(pod))
    try:
        (first,) = running(cluster, "app=reserved", 1)
        pod["spec"]["nodeName"] = first["spec"]["nodeName"]          # type: ignore[index]
        cluster.kubectl("delete", "pod", "reserved", "--wait=true")
        apply(cluster, json.dumps(pod))
        (again,) = running(cluster, "app=reserved", 1)
        assert pod_ip(again) == pod_ip(first)
    finally:
        delete(cluster, "pod", "reserved")


def test_node_terway_config_label_merges_its_configmap(cluster: Cluster) -> None:
    """Label a node terway-config=<cm>: its eni_conf is merged over the base at terwayd start."""
    node = cluster.members[1].spec.name
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "terway-config-big-pool", "namespace": "kube-system"},
          "data": {"eni_conf": json.dumps({"max_pool_size": 9, "min_pool_size": 3})}}
    apply(cluster, json.dumps(cm))
    cluster.kubectl("label", "node", node, "terway-config=terway-config-big-pool", "--overwrite")
    try:
        _restart_terway(cluster, node)
        pod = {"metadata": {"name": terway_pods(cluster)[node], "namespace": "kube-system"}}
        shown = exec_in(cluster, pod, "terway-cli", "config")
        assert '"max_pool_size": 9' in shown and '"min_pool_size": 3' in shown, shown
        other = cluster.members[0].spec.name
        pod = {"metadata": {"name": terway_pods(cluster)[other], "namespace": "kube-system"}}
        assert '"max_pool_size": 9' not in exec_in(cluster, pod, "terway-cli", "config")
    finally:
        cluster.kubectl("label", "node", node, "terway-config-")
        cluster.kubectl("-n", "kube-system", "delete", "cm", "terway-config-big-pool")


def _ready(cluster: Cluster, node: str) -> bool:
    p = next(p for p in pods(cluster, "app=terway-eniip", "kube-system")
             if p["spec"]["nodeName"] == node and not p["metadata"].get("deletionTimestamp"))
    return all(s.get("ready") for s in p["status"].get("containerStatuses", [{}]))


def test_gc_frees_a_deleted_pods_address_after_asking_the_api(cluster: Cluster) -> None:
    """The pod is force-deleted while its node's kubelet is down (so no CNI DEL comes): terwayd's
    GC asks the API server, learns the pod is gone, and frees its address."""
    node = cluster.members[0]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "gc-victim", "namespace": "default", "labels": {"app": "gcv"}},
           "spec": {"nodeName": node.spec.name, "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "localhost/terway-testbed/busybox:1",
                                    "imagePullPolicy": "Never",
                                    "command": ["sh", "-c", "sleep 100000"]}]}}
    apply(cluster, json.dumps(pod))
    (p,) = running(cluster, "app=gcv", 1)
    ip = pod_ip(p)
    socket = node.host_path("/var/run/eni/eni.socket")

    def mapping() -> str:
        proc = subprocess.run(["terway-cli", "--socket", str(socket), "mapping"],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"terway-cli mapping: {proc.stderr.strip()}"
        return proc.stdout

    assert "gc-victim" in mapping()
    node.stop_kubelet()
    try:
        cluster.kubectl("delete", "pod", "gc-victim", "--force", "--grace-period=0")
        wait_for("terwayd's GC to free gc-victim's address",
                 lambda: "gc-victim" not in mapping(), 60)
        rows = [r for r in mapping().splitlines() if ip in r]
        assert not rows or rows[0].startswith("Idle"), rows
    finally:
        node.start_kubelet()


def test_pool_policy_adaptive_from_eni_conf_serves_pods_and_yields_idle(cluster: Cluster) -> None:
    """``pool_policy: adaptive`` (issue 14 item 1) set for one node through its terway-config
    ConfigMap: terwayd runs it, its pods get addresses, and on the test bed's small pod vSwitch
    (a /27, fewer free than ``pressure_free``) it keeps none warm beyond its share: once the
    pods are gone it gives their addresses back, where the default policy keeps up to
    ``max_pool_size`` idle."""
    node = cluster.members[1].spec.name
    conf = {"pool_policy": "adaptive", "min_pool_size": 0, "max_pool_size": 8,
            "pool_policy_params": {"release_interval_seconds": 5}}   # terway's keeps up to 8
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "terway-config-adaptive", "namespace": "kube-system"},
          "data": {"eni_conf": json.dumps(conf)}}
    apply(cluster, json.dumps(cm))
    cluster.kubectl("label", "node", node, "terway-config=terway-config-adaptive", "--overwrite")
    try:
        _restart_terway(cluster, node)
        terway = {"metadata": {"name": terway_pods(cluster)[node], "namespace": "kube-system"}}
        assert '"pool_policy": "adaptive"' in exec_in(cluster, terway, "terway-cli", "config")

        def pool() -> dict[str, int]:
            out = cluster.kubectl("-n", "kube-system", "exec", terway["metadata"]["name"], "--",
                                  "terway-cli", "-o", "json", "pool").stdout
            reply = json.loads(out)
            return {"used": int(reply["used"]), "idle": int(reply["idle"])}
        used_before = pool()["used"]
        apply(cluster, deployment("adaptive", 3, node=node))
        got = running(cluster, "app=adaptive", 3)
        assert len({pod_ip(p) for p in got}) == 3
        assert pool()["used"] == used_before + 3
        delete(cluster, "deployment", "adaptive")

        def idle() -> dict[str, int] | None:
            now = pool()                      # the pods' addresses freed, and given back
            gone = now["used"] <= used_before  # (at most the last address of a kept ENI)
            return now if gone and now["idle"] <= 1 else None

        wait_for("the adaptive pool to give idle addresses back", idle, 120)
    finally:
        delete(cluster, "deployment", "adaptive")
        cluster.kubectl("label", "node", node, "terway-config-")
        cluster.kubectl("-n", "kube-system", "delete", "cm", "terway-config-adaptive")
        _restart_terway(cluster, node)


def _restart_terway(cluster: Cluster, node: str) -> None:
    cluster.kubectl("-n", "kube-system", "delete", "pod", terway_pods(cluster)[node])
    cluster.wait(lambda: node in terway_pods(cluster) and _ready(cluster, node),
                 "terway pod back on the node", 120)
