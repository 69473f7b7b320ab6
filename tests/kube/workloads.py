"""Small helpers the kube tests share: apply manifests, read pods, exec, wait for phases.

Everything goes through kubectl (the upstream binary built with the cluster), as a person would.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from emulator.cluster import Cluster
from tests.kube.conftest import wait_for

BUSYBOX = "localhost/terway-testbed/busybox:1"


def apply(cluster: Cluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest)


def deployment(name: str, replicas: int, *, namespace: str = "default",
               annotations: dict[str, str] | None = None, spread: bool = False,
               node: str | None = None, command: str = "httpd -f -p 8080 -h /etc") -> str:
    """A busybox Deployment serving HTTP on 8080 (``/etc`` as document root)."""
    meta = {"labels": {"app": name}, "annotations": annotations or {}}
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", command]}]}
    if spread:
        spec["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": name}}}]
    if node:
        spec["nodeName"] = node
    doc = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": meta, "spec": spec}}}
    return json.dumps(doc)


def pods(cluster: Cluster, selector: str, namespace: str = "default") -> list[dict[str, Any]]:
    out = cluster.kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout
    return list(json.loads(out)["items"])


def running(cluster: Cluster, selector: str, count: int, namespace: str = "default",
            timeout: float = 180) -> list[dict[str, Any]]:
    """Wait until ``count`` pods matching ``selector`` are Running with an IP."""
    def probe() -> list[dict[str, Any]] | None:
        ps = [p for p in pods(cluster, selector, namespace)
              if p["status"].get("phase") == "Running" and p["status"].get("podIP")
              and not p["metadata"].get("deletionTimestamp")]
        return ps if len(ps) >= count else None
    return wait_for(f"{count} Running pods -l {selector}", probe, timeout)


def pod_ip(pod: dict[str, Any]) -> str:
    return str(pod["status"]["podIP"])


def in_cidr(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def exec_in(cluster: Cluster, pod: dict[str, Any], *cmd: str, check: bool = True,
            timeout: float = 60) -> str:
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    proc = cluster.kubectl("-n", ns, "exec", name, "--", *cmd, check=check, timeout=timeout)
    return proc.stdout + proc.stderr


def pod_state(cluster: Cluster, pod: dict[str, Any]) -> str:
    """For a failure message: the pod's addresses and routes from inside, and its object now."""
    inside = exec_in(cluster, pod, "sh", "-c", "ip addr; ip route; ip rule", check=False)
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    now = cluster.kubectl("-n", ns, "get", "pod", name, "-o", "json", check=False).stdout
    return f"\n--- inside {name}:\n{inside}\n--- {name} now:\n{now}"


def delete(cluster: Cluster, *what: str, namespace: str = "default") -> None:
    cluster.kubectl("-n", namespace, "delete", *what, "--ignore-not-found", "--wait=true",
                    timeout=180)


def terway_pods(cluster: Cluster) -> dict[str, str]:
    """node name → terway pod name."""
    items = pods(cluster, "app=terway-eniip", "kube-system")
    return {p["spec"]["nodeName"]: p["metadata"]["name"] for p in items
            if not p["metadata"].get("deletionTimestamp")}


def terway_logs(cluster: Cluster, node: str) -> str:
    pod = terway_pods(cluster)[node]
    return cluster.kubectl("-n", "kube-system", "logs", pod, "-c", "terway").stdout


def events(cluster: Cluster, namespace: str, pod: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("-n", namespace, "get", "events", "--field-selector",
                          f"involvedObject.name={pod}", "-o", "json").stdout
    return list(json.loads(out)["items"])
