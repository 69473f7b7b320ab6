"""What NetworkPolicy costs on the Kubernetes test bed (Calico Felix in the `policy` container):

- policy created → enforced: the perf server is isolated by the policies; a policy letting in
  the other node's host is applied with kubectl until that host's probe is admitted, and
  deleted until it is refused again (p50/p99), with ``-n`` pods and ``-p`` policies in the
  cluster;
- pod-to-pod TCP throughput and request/response round trip across nodes with those policies
  (the server pod selected by them) against the same pods with none, before the policies are
  created and after they are deleted, in one run;
- Felix's CPU seconds and RSS per node.

    python -m bench.bench_policy [-n 100] [-p 50]

Throughput and round trip are Python socket loops in the terway image's python3 (no iperf3 in
the test bed's images): a ratio between two runs of the same loop, not a NIC figure. Needs root
and the built binaries and images (``nox -s kube`` builds them). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_kube import pct  # noqa: E402
from emulator.cluster import Cluster, World  # noqa: E402

BUSYBOX = "localhost/terway-testbed/busybox:1"
NAMESPACES = 10

SERVER = r"""
import socket, threading
def serve(c):
    with c:
        first = c.recv(1)
        if first == b"s":                       # stream: read until the client closes
            while c.recv(1 << 16): pass
            c.sendall(b"k")
        else:                                   # ping-pong of one byte
            c.sendall(first)
            while (b := c.recv(1)):
                c.sendall(b)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 80)); s.listen(64)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""

CLIENT = r"""
import json, socket, sys, time
ip, mib, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"x" * (1 << 16)
with socket.create_connection((ip, 80), timeout=10) as c:
    c.sendall(b"s"); t = time.perf_counter()
    for _ in range(mib * 16): c.sendall(buf)
    c.shutdown(socket.SHUT_WR); c.recv(1); stream = time.perf_counter() - t
with socket.create_connection((ip, 80), timeout=10) as c:
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    for _ in range(rounds):
        t = time.perf_counter(); c.sendall(b"p"); c.recv(1); rtts.append(time.perf_counter() - t)
print(json.dumps({"mib_s": mib / stream, "rtts": sorted(rtts)}))
"""

# Runs in a node's host netns: connects every 50 ms; prints the wall-clock time the outcome is
# first the expected one (argv[2] "1": admitted, "0": refused, seen as a connect timeout).
WATCHER = r"""
import socket, sys, time
ip, expect_ok = sys.argv[1], sys.argv[2] == "1"
deadline = time.time() + 60
while time.time() < deadline:
    try:
        socket.create_connection((ip, 80), timeout=0.2).close(); ok = True
    except OSError:
        ok = False
    if ok == expect_ok:
        print(time.time()); break
    time.sleep(0.05)
"""


def pod(name: str, ns: str, node: str, image: str, labels: dict[str, str],
        command: list[str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns, "labels": labels},
                       "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                                "containers": [{"name": "main", "image": image,
                                                "imagePullPolicy": "Never",
                                                "command": command}]}})


def policies(count: int) -> list[dict[str, Any]]:
    """``count`` policies like a cluster's: per-namespace allow-lists by label and port; a
    tenth select the perf server (ns perf, app=server) and allow its client, so its packets
    cross rules without being refused."""
    out = []
    for i in range(count):
        if i % 10 == 0:
            ns, sel = "perf", {"app": "server"}
            peer = {"podSelector": {"matchLabels": {"app": "client"}}}
        else:
            ns, sel = f"load{i % NAMESPACES}", {"tier": f"t{i % 5}"}
            peer = {"namespaceSelector": {"matchLabels": {"team": f"team{i % 3}"}}}
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": f"p{i}", "namespace": ns},
                    "spec": {"podSelector": {"matchLabels": sel}, "policyTypes": ["Ingress"],
                             "ingress": [{"from": [peer, {"ipBlock": {"cidr": "10.0.0.0/8"}}],
                                          "ports": [{"port": 80 + i % 3, "protocol": "TCP"}]}]}})
    return out


def apply(cluster: Cluster, doc: str | dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=doc if isinstance(doc, str) else json.dumps(doc))


def enable_policy(cluster: Cluster) -> None:
    cluster.kubectl("-n", "kube-system", "patch", "configmap", "eni-config", "--type", "merge",
                    "-p", '{"data": {"disable_network_policy": "false"}}')
    cluster.kubectl("-n", "kube-system", "delete", "pod", "-l", "app=terway-eniip",
                    "--wait=true", timeout=300)
    cluster.kubectl("-n", "kube-system", "rollout", "status", "daemonset/terway-eniip",
                    "--timeout=300s", timeout=320)


def wait_running(cluster: Cluster, ns: str, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(cluster.kubectl("-n", ns, "get", "pods", "-o", "json").stdout)["items"]
        if sum(1 for p in items if p["status"].get("phase") == "Running") >= count:
            return
        time.sleep(2)
    raise TimeoutError(f"{count} pods Running in {ns}")


def pod_ip(cluster: Cluster, ns: str, name: str) -> str:
    return str(cluster.kubectl("-n", ns, "get", "pod", name, "-o",
                               "jsonpath={.status.podIP}").stdout)


def perf(cluster: Cluster, server_ip: str) -> dict[str, Any]:
    out = cluster.kubectl("-n", "perf", "exec", "client", "--", "python3", "-c", CLIENT,
                          server_ip, "200", "2000", timeout=300).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def enforce_times(cluster: Cluster, server_ip: str, rounds: int
                  ) -> tuple[list[float], list[float]]:
    """Seconds from kubectl apply (delete) of a policy admitting the other node's host to the
    first admitted (refused) connection from there."""
    allow = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "allow-watcher", "namespace": "perf"},
             "spec": {"podSelector": {"matchLabels": {"app": "server"}},
                      "ingress": [{"from": [{"ipBlock": {"cidr": cluster.world.node_cidr}}]}]}}
    watcher_node = cluster.node(1)
    created: list[float] = []
    deleted: list[float] = []
    for _ in range(rounds):
        for doc, sink, expect_ok in ((allow, created, "1"), (None, deleted, "0")):
            w = subprocess.Popen(watcher_node.enter(["python3", "-c", WATCHER, server_ip,
                                                     expect_ok]),
                                 stdout=subprocess.PIPE, text=True)
            time.sleep(0.3)
            start = time.time()
            if doc is not None:
                apply(cluster, doc)
            else:
                cluster.kubectl("-n", "perf", "delete", "networkpolicy", "allow-watcher")
            out, _ = w.communicate(timeout=90)
            if out.strip():
                sink.append(float(out.strip()) - start)
    return sorted(created), sorted(deleted)


def felix_usage() -> list[tuple[float, float]]:
    """(CPU seconds, RSS MiB) of every calico-felix process on this machine."""
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
            if not cmd.endswith(b"calico-felix"):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{entry}/status").read_text()
            kib = int(next(line.split()[1] for line in status.splitlines()
                           if line.startswith("VmRSS:")))
            out.append(((int(stat[11]) + int(stat[12])) / tick, kib / 1024))
        except (OSError, StopIteration, IndexError):
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="pods in the cluster (besides the perf pair)")
    ap.add_argument("-p", type=int, default=50, help="NetworkPolicies")
    ap.add_argument("--rounds", type=int, default=20, help="enforcement samples")
    args = ap.parse_args(argv)
    nodes = max(2, -(-(args.n + 4) // 28))          # a test-bed node holds 30 pod addresses
    cluster = Cluster(workdir=Path("/var/lib/terway-testbed/bench-policy"), nodes=nodes,
                      world=World(pod_cidr="192.168.16.0/22"),
                      eni_conf={"min_pool_size": 2, "max_pool_size": 30}).up()
    try:
        enable_policy(cluster)
        assert cluster.artifacts is not None
        image = cluster.artifacts.ref("terway")
        names = [m.spec.name for m in cluster.members]
        for i, ns in enumerate(["perf", *(f"load{i}" for i in range(NAMESPACES))]):
            apply(cluster, {"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": ns, "labels": {"team": f"team{i % 3}"}}})
        apply(cluster, pod("server", "perf", names[0], image, {"app": "server"},
                           ["python3", "-c", SERVER]))
        apply(cluster, pod("client", "perf", names[1], image, {"app": "client"},
                           ["sleep", "100000"]))
        for i in range(args.n):
            apply(cluster, pod(f"p{i}", f"load{i % NAMESPACES}", names[i % nodes], BUSYBOX,
                               {"tier": f"t{i % 5}"}, ["sleep", "100000"]))
        wait_running(cluster, "perf", 2)
        for i in range(NAMESPACES):
            wait_running(cluster, f"load{i}", args.n // NAMESPACES)
        ip = pod_ip(cluster, "perf", "server")
        cpu0 = sum(c for c, _ in felix_usage())
        perf(cluster, ip)                                # warm-up: caches, ARP, conntrack
        none = perf(cluster, ip)
        for p in policies(args.p):
            apply(cluster, p)
        time.sleep(10)                                   # let every Felix apply them
        some = perf(cluster, ip)
        created, deleted = enforce_times(cluster, ip, args.rounds)
        usage = felix_usage()
        for p in policies(args.p):
            cluster.kubectl("-n", p["metadata"]["namespace"], "delete", "networkpolicy",
                            p["metadata"]["name"])
        time.sleep(10)
        none2 = perf(cluster, ip)                        # the reference again, afterwards
        print(f"{nodes} nodes, {args.n + 2} pods, {args.p} policies (Calico Felix)")
        print(f"policy created -> enforced: p50 {pct(created, 0.5):.2f} s  "
              f"p99 {pct(created, 0.99):.2f} s  ({len(created)} samples)")
        print(f"policy deleted -> traffic back: p50 {pct(deleted, 0.5):.2f} s  "
              f"p99 {pct(deleted, 0.99):.2f} s  ({len(deleted)} samples)")
        print(f"pod-to-pod TCP stream: {some['mib_s']:.0f} MiB/s with policies vs "
              f"{none['mib_s']:.0f} before / {none2['mib_s']:.0f} after without "
              f"(x{some['mib_s'] / none['mib_s']:.2f} / x{some['mib_s'] / none2['mib_s']:.2f})")
        for q in (0.5, 0.99):
            a, b, c = (pct(r["rtts"], q) for r in (some, none, none2))
            print(f"pod-to-pod round trip p{round(q * 100)}: {a * 1e6:.0f} us with policies vs "
                  f"{b * 1e6:.0f} before / {c * 1e6:.0f} after without "
                  f"(x{a / b:.2f} / x{a / c:.2f})")
        print("Felix per node: " + ", ".join(f"{rss:.0f} MiB RSS" for _, rss in usage)
              + f"; CPU over the measurements {sum(c for c, _ in usage) - cpu0:.1f} s in all")
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
