"""kind-based suite: the DaemonSet from deploy/kubernetes on a kind cluster (kind-config/).

Runs only where the ``kind`` binary (and a docker engine that can pull kindest/node and build
deploy/Dockerfile) exists; the development and CI machines here have neither kind nor a registry,
so every test skips with "kind not installed" (docs/e2e.md). What it checks is what a kind
cluster can show without an Alibaba cloud behind it: the image builds and loads, the DaemonSet
schedules one pod per node, the install-cni init container puts a *runnable* plugin and the
conflist on every node. Pod addresses on kind need the fabric to adopt the kind node containers
as emulated instances, which it cannot yet (docs/e2e.md, "gaps").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "terway-e2e"
KIND_CONFIG = ROOT / "kind-config" / "cluster.yaml"
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
IMAGE = "terway-py:latest"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.privileged,
    pytest.mark.skipif(shutil.which("kind") is None, reason="kind not installed"),
]


def sh(*cmd: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stderr}")
    return proc


def kubectl(*args: str, timeout: float = 300) -> str:
    return sh("kubectl", "--context", f"kind-{CLUSTER}", *args, timeout=timeout).stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[str]]:
    """A fresh kind cluster with the terway-py image loaded; deleted afterwards."""
    if shutil.which("docker") is None:
        pytest.skip("kind needs docker")
    sh("docker", "build", "-t", IMAGE, "-f", str(ROOT / "deploy" / "Dockerfile"), str(ROOT),
       timeout=1800)
    sh("kind", "delete", "cluster", "--name", CLUSTER, check=False)
    sh("kind", "create", "cluster", "--name", CLUSTER, "--config", str(KIND_CONFIG),
       "--wait", "0s", timeout=900)
    try:
        sh("kind", "load", "docker-image", IMAGE, "--name", CLUSTER)
        nodes = sh("kind", "get", "nodes", "--name", CLUSTER).stdout.split()
        yield nodes
    finally:
        sh("kind", "delete", "cluster", "--name", CLUSTER, check=False)


@pytest.fixture(scope="module")
def deployed(cluster: list[str]) -> list[str]:
    manifests = sh("kubectl", "kustomize", str(KUSTOMIZE_DIR)).stdout
    proc = subprocess.run(["kubectl", "--context", f"kind-{CLUSTER}", "apply", "-f", "-"],
                          input=manifests, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return cluster


def terway_pods() -> list[dict[str, Any]]:
    out = kubectl("-n", "kube-system", "get", "pods", "-l", "app=terway-eniip", "-o", "json")
    return list(json.loads(out)["items"])


def init_done(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("initContainerStatuses") or []
    return bool(statuses) and all(
        (s.get("state", {}).get("terminated") or {}).get("exitCode") == 0 for s in statuses)


def wait_installed(nodes: list[str], timeout: float = 300) -> list[dict[str, Any]]:
    """The terway pods once there is one per node with install-cni finished (or at timeout)."""
    deadline = time.monotonic() + timeout
    pods = terway_pods()
    while time.monotonic() < deadline:
        if len(pods) == len(nodes) and all(init_done(p) for p in pods):
            break
        time.sleep(5)
        pods = terway_pods()
    return pods


def test_daemonset_schedules_one_terway_pod_per_node(deployed: list[str]) -> None:
    pods = wait_installed(deployed)
    assert {p["spec"]["nodeName"] for p in pods} == set(deployed), json.dumps(pods)[:2000]
    assert all(init_done(p) for p in pods), "install-cni did not complete on every node"


def test_install_cni_leaves_a_runnable_plugin_and_conflist_on_every_node(
        deployed: list[str]) -> None:
    """The runtime on the node (not the terway container) executes /opt/cni/bin/terway."""
    assert all(init_done(p) for p in wait_installed(deployed)), "install-cni incomplete"
    for node in deployed:
        conf = json.loads(sh("docker", "exec", node, "cat",
                             "/etc/cni/net.d/10-terway.conflist").stdout)
        assert conf["plugins"][0]["type"] == "terway"
        proc = sh("docker", "exec", "-e", "CNI_COMMAND=VERSION", node, "/opt/cni/bin/terway",
                  check=False)
        assert proc.returncode == 0, f"{node}: plugin not runnable on the node: {proc.stderr}"
        assert "supportedVersions" in json.loads(proc.stdout)
