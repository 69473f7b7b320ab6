"""eni_conf ``enable_patch_pod_ips`` (upstream's default, on): after each ADD terwayd patches the
pod's annotation ``k8s.aliyun.com/pod-ips`` with its address, through the real API server (and
the RBAC of deploy/kubernetes/rbac.yaml: ``patch`` on pods; test_rbac.py checks no 403)."""

from __future__ import annotations

from typing import Any

from emulator.cluster import Cluster
from tests.kube.conftest import wait_for
from tests.kube.workloads import apply, delete, deployment, pod_ip, pods, running

POD_IPS = "k8s.aliyun.com/pod-ips"


def test_each_pod_is_annotated_with_its_address(cluster: Cluster) -> None:
    apply(cluster, deployment("podips", 2, spread=True))
    try:
        want = {p["metadata"]["name"]: pod_ip(p) for p in running(cluster, "app=podips", 2)}

        def annotated() -> dict[str, Any] | None:
            seen = {p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(POD_IPS)
                    for p in pods(cluster, "app=podips") if p["metadata"]["name"] in want}
            return seen if seen == want else None

        wait_for(f"annotation {POD_IPS} = the pod's IP on {sorted(want)}", annotated, 60)
    finally:
        delete(cluster, "deployment", "podips")
