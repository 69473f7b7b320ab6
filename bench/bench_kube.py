"""Pods on the Kubernetes test bed: create → Running for N pods through the whole stack
(API server, scheduler, kubelet, containerd, the terway CNI and terwayd, the emulated cloud),
on a fresh node (pool at min_pool_size: ENIs are created and attached on demand) and on a warm
pool, against the same pods with ``hostNetwork: true`` (no CNI at all) measured in the same run.
Also: bring-up time per step, the node image's size, terwayd's RSS in the cluster.

    python -m bench.bench_kube [-n 30]

Times are client-observed (a watch on the API server, monotonic clock): ADDED → phase Running.
Prints figures and ratios; asserts nothing. Needs root and the built binaries and images
(``nox -s kube`` builds them; or TERWAY_KUBE_BIN / TERWAY_KUBE_IMAGES).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.cluster import Cluster, World  # noqa: E402

BUSYBOX = "localhost/terway-testbed/busybox:1"


def _deployment(name: str, n: int, node: str, host_network: bool) -> str:
    spec: dict[str, Any] = {"nodeName": node, "hostNetwork": host_network,
                            "terminationGracePeriodSeconds": 0,
                            "containers": [{"name": "main", "image": BUSYBOX,
                                            "imagePullPolicy": "Never",
                                            "command": ["sleep", "100000"]}]}
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": name, "namespace": "default"},
                       "spec": {"replicas": n, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}},
                                             "spec": spec}}})


def startup_times(cluster: Cluster, name: str, n: int, node: str,
                  host_network: bool = False, timeout: float = 300) -> list[float]:
    """Seconds from each pod's ADDED to its Running, seen by a watch."""
    from kubernetes import client, config, watch

    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    added: dict[str, float] = {}
    running: dict[str, float] = {}
    w = watch.Watch()
    ready = threading.Event()

    def follow() -> None:
        ready.set()
        for ev in w.stream(api.list_namespaced_pod, "default", label_selector=f"app={name}",
                           timeout_seconds=int(timeout)):
            pod, now = ev["object"], time.monotonic()
            added.setdefault(pod.metadata.name, now)
            if pod.status.phase == "Running":
                running.setdefault(pod.metadata.name, now)
            if len(running) >= n:
                w.stop()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    ready.wait()
    time.sleep(0.5)
    cluster.kubectl("apply", "-f", "-", input=_deployment(name, n, node, host_network))
    t.join(timeout)
    cluster.kubectl("delete", "deployment", name, "--wait=true", timeout=300)
    _wait_gone(cluster, name)
    return sorted(running[p] - added[p] for p in running)


def _wait_gone(cluster: Cluster, name: str) -> None:
    for _ in range(300):
        out = cluster.kubectl("get", "pods", "-l", f"app={name}", "-o", "name").stdout
        if not out.strip():
            return
        time.sleep(1)


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def terwayd_rss_mib() -> list[float]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if any(c.endswith(b"/terwayd") or c == b"terwayd" for c in cmd[:2]):
                status = Path(f"/proc/{entry}/status").read_text()
                kib = int(next(line.split()[1] for line in status.splitlines()
                               if line.startswith("VmRSS:")))
                out.append(kib / 1024)
        except (OSError, StopIteration):
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="pods per batch (one node holds 30)")
    args = ap.parse_args(argv)
    n = args.n
    # A /22 for pods: the test bed's default /27 is small on purpose (the seeds' story).
    cluster = Cluster(workdir=Path("/var/lib/terway-testbed/bench"), nodes=2,
                      world=World(pod_cidr="192.168.16.0/22"),
                      eni_conf={"min_pool_size": 2, "max_pool_size": n}).up()
    try:
        print("bring-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in cluster.timings.items()))
        assert cluster.artifacts is not None
        size = cluster.artifacts.images()["terway"]["size_bytes"]
        print(f"node image {cluster.artifacts.ref('terway')}: {int(str(size)) / 2**20:.0f} MiB")
        # Pairs run alike: a node's first batch against the other node's first batch, its
        # second against the other's second (a node's second batch also waits for the first's
        # teardown in containerd).
        node, other = cluster.members[0].spec.name, cluster.members[1].spec.name
        ref1 = startup_times(cluster, "hostnet1", n, other, host_network=True)
        fresh = startup_times(cluster, "fresh", n, node)
        warm = startup_times(cluster, "warm", n, node)       # the pool kept the addresses
        ref2 = startup_times(cluster, "hostnet2", n, other, host_network=True)
        print(f"{n} pods create -> Running on one node, client-observed:")
        for label, xs, ref in (("fresh node (pool at min 2)", fresh, ref1),
                               ("hostNetwork, 1st batch (reference)", ref1, ref1),
                               ("warm pool (2nd batch)", warm, ref2),
                               ("hostNetwork, 2nd batch (reference)", ref2, ref2)):
            p50, p99 = pct(xs, 0.5), pct(xs, 0.99)
            print(f"  {label:36s} p50 {p50:5.2f} s  p99 {p99:5.2f} s  "
                  f"(x{p50 / pct(ref, 0.5):.2f} / x{p99 / pct(ref, 0.99):.2f} of its reference)")
        rss = terwayd_rss_mib()
        print("terwayd RSS in the cluster: " + ", ".join(f"{r:.0f} MiB" for r in rss))
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
