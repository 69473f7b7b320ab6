"""The NetworkPolicy test bed: server pods in three namespaces on both nodes, clients anywhere
(the pods themselves, each node's host network, a VPC host that is no node), and a truth table
probed with real TCP and UDP exchanges.

Modelled on upstream Kubernetes' network-policy e2e tests (namespaces x, y, z; pods a, b, c;
ports 80 and 81 over TCP and UDP; every cell a real connection). The expected table of each case
is written by hand from the NetworkPolicy documentation (tests/kube/test_policy.py), never
computed from the policy: a second implementation of the semantics would share its mistakes.

Servers and clients are Python scripts run by the terway image's python3 (the busybox image has
no UDP server). A client run tests many targets at once, in parallel, each with a deadline.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from emulator.cluster import Cluster
from emulator.cluster.controlplane import in_netns
from tests.kube.conftest import wait_for
from tests.kube.workloads import apply, pods, terway_pods

NAMESPACES = ("x", "y", "z")
PORTS = ((80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp"))
# name → node index: both namespaces' pods on both nodes, so every rule is seen from the same
# node and from the other one.
SERVERS = {"x/a": 0, "x/b": 1, "x/c": 0, "y/a": 1, "y/b": 0, "z/a": 1}
VPC = "vpc"          # the master instance: in the VPC, no node of the cluster's pods

SERVER = r"""
import os, socket, threading
name = os.environ["NAME"].encode()
def tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port)); s.listen(128)
    while True:
        c, _ = s.accept()
        try: c.sendall(name)
        except OSError: pass
        finally: c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", port))
    while True:
        _, peer = s.recvfrom(64)
        s.sendto(name, peer)
for p in (80, 81):
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
    threading.Thread(target=udp, args=(p,), daemon=True).start()
threading.Event().wait()
"""

# argv[1]: JSON [[ip, port, proto], ...]; prints JSON [reply or null, ...]
CLIENT = r"""
import json, socket, sys, threading
targets = json.loads(sys.argv[1]); out = [None] * len(targets)
def probe(i, ip, port, proto):
    try:
        if proto == "tcp":
            with socket.create_connection((ip, port), timeout=1.5) as s:
                out[i] = s.recv(64).decode() or None
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                for _ in range(3):
                    s.sendto(b"?", (ip, port))
                    try:
                        out[i] = s.recv(64).decode(); break
                    except socket.timeout: pass
    except OSError: pass
ts = [threading.Thread(target=probe, args=(i, *t)) for i, t in enumerate(targets)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Cell:
    client: str        # "x/a", "host0", "host1" or "vpc"
    server: str        # "x/a" …
    port: int
    proto: str


Expect = Callable[[Cell], bool]


class Bed:
    """The pods of the table and the ways to probe from every client."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.nodes = sorted(n["metadata"]["name"] for n in
                            json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)
                            ["items"])
        self.ips: dict[str, str] = {}
        self.pod_names: dict[str, str] = {}

    # -- set-up ----------------------------------------------------------------------------------
    def create(self) -> None:
        image = self.cluster.artifacts.ref("terway")   # type: ignore[union-attr]
        for ns in NAMESPACES:
            apply(self.cluster, json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns, "labels": {"ns": ns}}}))
        for key, node in SERVERS.items():
            ns, pod = key.split("/")
            apply(self.cluster, json.dumps(server_pod(ns, pod, self.nodes[node], image)))
        for key in SERVERS:
            ns, pod = key.split("/")
            ready = wait_for(f"server {key} Running", lambda ns=ns, pod=pod: [
                p for p in pods(self.cluster, f"pod={pod}", ns)
                if p["status"].get("phase") == "Running" and p["status"].get("podIP")], 180)
            self.ips[key] = ready[0]["status"]["podIP"]
            self.pod_names[key] = ready[0]["metadata"]["name"]

    def delete(self) -> None:
        for ns in NAMESPACES:
            self.cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true",
                                 timeout=180, check=False)

    # -- clients ---------------------------------------------------------------------------------
    def clients(self) -> list[str]:
        return [*SERVERS, *(f"host{i}" for i in range(len(self.nodes))), VPC]

    def node_of(self, client: str) -> int | None:
        if client in SERVERS:
            return SERVERS[client]
        return int(client[4:]) if client.startswith("host") else None

    def _argv(self, client: str, targets: list[list[Any]]) -> list[str]:
        arg = json.dumps(targets)
        if client in SERVERS:
            ns = client.split("/")[0]
            return self.cluster.kubectl_argv("-n", ns, "exec", self.pod_names[client], "--",
                                             "python3", "-c", CLIENT, arg)
        if client == VPC:
            return in_netns(self.cluster.master_id, ["python3", "-c", CLIENT, arg])
        return self.cluster.node(int(client[4:])).enter(["python3", "-c", CLIENT, arg])

    def probe_client(self, client: str, cells: list[Cell]) -> dict[Cell, bool]:
        targets = [[self.ips[c.server], c.port, c.proto] for c in cells]
        proc = subprocess.run(self._argv(client, targets), capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"client {client} failed: {proc.stderr.strip()[-500:]}")
        replies = json.loads(proc.stdout.strip().splitlines()[-1])
        # A reply names its server: a cell only counts when the right pod answered.
        return {c: r == self.pod_names[c.server] for c, r in zip(cells, replies, strict=True)}

    def probe(self, cells: Iterable[Cell]) -> dict[Cell, bool]:
        by_client: dict[str, list[Cell]] = {}
        for c in cells:
            by_client.setdefault(c.client, []).append(c)
        result: dict[Cell, bool] = {}
        with ThreadPoolExecutor(max_workers=4) as pool:
            for part in pool.map(lambda kv: self.probe_client(*kv), by_client.items()):
                result.update(part)
        return result

    def cells(self, ports: Iterable[tuple[int, str]] = ((80, "tcp"),),
              servers: Iterable[str] = tuple(SERVERS)) -> list[Cell]:
        servers = list(servers)
        return [Cell(c, s, port, proto) for c in self.clients() for s in servers
                for port, proto in ports if c != s]

    def own_node(self, cell: Cell) -> bool:
        """The client is the host of the server's own node: always allowed (kubelet probes)."""
        return cell.client == f"host{SERVERS[cell.server]}"

    # -- the table -------------------------------------------------------------------------------
    def table_matches(self, cells: list[Cell], expect: Expect, timeout: float = 30.0
                      ) -> tuple[float, list[str]]:
        """Probe until every cell is as expected (policy takes effect within seconds); returns
        the seconds it took, and the cells still wrong at the deadline (empty: it matched)."""
        start = time.monotonic()
        wrong: list[str] = []
        while True:
            got = self.probe(cells)
            wrong = [f"{c.client} -> {c.server}:{c.port}/{c.proto}: expected "
                     f"{'allowed' if expect(c) else 'denied'}, was "
                     f"{'allowed' if got[c] else 'denied'}"
                     for c in cells if got[c] != expect(c)]
            elapsed = time.monotonic() - start
            if not wrong or elapsed > timeout:
                return elapsed, wrong
            time.sleep(0.5)


def server_pod(ns: str, pod: str, node: str, image: str) -> dict[str, Any]:
    ports = [{"name": f"serve-{port}-{proto}", "containerPort": port, "protocol": proto.upper()}
             for port, proto in PORTS]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": ns, "labels": {"pod": pod}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "server", "image": image,
                                     "imagePullPolicy": "Never", "ports": ports,
                                     "env": [{"name": "NAME", "value": pod}],
                                     "command": ["python3", "-c", SERVER],
                                     "resources": {"requests": {"cpu": "1m"}}}]}}


def set_policy_enabled(cluster: Cluster, enabled: bool) -> None:
    """Write disable_network_policy and restart the terway pods (the documented way: the policy
    container reads it at start), then wait until every new one is Ready."""
    value = "false" if enabled else "true"
    cluster.kubectl("-n", "kube-system", "patch", "configmap", "eni-config", "--type", "merge",
                    "-p", json.dumps({"data": {"disable_network_policy": value}}))
    old = set(terway_pods(cluster).values())
    cluster.kubectl("-n", "kube-system", "delete", "pod", "-l", "app=terway-eniip",
                    "--wait=true", timeout=180)

    def ready() -> bool:
        items = pods(cluster, "app=terway-eniip", "kube-system")
        fresh = [p for p in items if p["metadata"]["name"] not in old
                 and not p["metadata"].get("deletionTimestamp")]
        return len(fresh) == len(items) == cluster.nodes and all(
            all(s.get("ready") for s in p["status"].get("containerStatuses", []))
            and len(p["status"].get("containerStatuses", [])) == 2 for p in fresh)
    wait_for(f"terway pods Ready with disable_network_policy={value}", ready, 180)
