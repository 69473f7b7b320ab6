"""A Kubernetes node on an emulated ECS instance: its own containerd and kubelet (upstream
programs) inside the instance's network namespace and a mount namespace of the node's own.

The mount namespace is what makes two nodes on one host two machines: each sees its own
``/run``, ``/var/lib/kubelet``, ``/var/lib/containerd``, ``/var/lib/cni``, ``/etc/cni/net.d``,
``/opt/cni/bin``, ``/var/log/pods`` … (bind-mounted from ``<workdir>/nodes/<instance>/fs``), so the
DaemonSet's hostPath volumes, the CNI socket and the plugin binary are per node, as on real ECS
instances. A small holder process keeps the namespaces; every component joins them with
``nsenter -t <holder>``. Propagation: the node's tree is a slave of the host's (nothing leaks
out) and shared below itself (``mountPropagation: HostToContainer`` works in pods). ``/sys`` is
remounted so it shows the node's network devices, with the cgroup hierarchies kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emulator.fabric.netns import entered

from .controlplane import API_PORT, in_netns
from .pki import Pki, kubeconfig
from .procs import ClusterError, Proc, kill_all, pids_in_mount_ns, spawn, tag_env, wait_until

PAUSE_IMAGE = "localhost/terway-testbed/pause:1"
PRIVATE_DIRS = ("run", "var/lib/kubelet", "var/lib/containerd", "var/lib/cni", "var/log/pods",
                "var/log/containers", "etc/cni/net.d", "opt/cni/bin", "etc/kubernetes")
CGROUP_BASE = "/sys/fs/cgroup"

_HOLDER = r"""
set -e
R="$1"; CG="$2"
mkdir -p "$R/cg"
mount --rbind /sys/fs/cgroup "$R/cg"
mount -t sysfs sysfs /sys
mount --move "$R/cg" /sys/fs/cgroup
mount --make-rshared /
for d in {dirs}; do mkdir -p "$R/fs/$d" "/$d"; mount --bind "$R/fs/$d" "/$d"; done
for c in /sys/fs/cgroup/*/; do
  [ -d "$c$CG" ] || mkdir -p "$c$CG"
  if [ -f "${c}cpuset.cpus" ]; then
    cat "${c}cpuset.cpus" > "$c$CG/cpuset.cpus"; cat "${c}cpuset.mems" > "$c$CG/cpuset.mems"
  fi
done
touch "$R/holder.ready"
exec sleep infinity
""".replace("{dirs}", " ".join(PRIVATE_DIRS))

_CONTAINERD = """version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # This VM's processes lack CAP_SYS_RESOURCE: without it runc's oom_score_adj write fails.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
"""

_KUBELET = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false                 # this VM has cgroup v1
cgroupDriver: cgroupfs              # containerd 1.6 does not report it (no RuntimeConfig)
cgroupRoot: /{cgroup_root}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
tlsCertFile: {serving_cert}
tlsPrivateKeyFile: {serving_key}
clusterDomain: cluster.local
failSwapOn: false
readOnlyPort: 0
imageGCHighThresholdPercent: 100    # imported images must never be collected (no registry)
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: "1%", nodefs.available: "1%", imagefs.available: "1%"}}
serializeImagePulls: false
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s                  # ConfigMap volume updates (eni-config edits) land sooner
"""


@dataclass
class NodeSpec:
    name: str            # Kubernetes node name (ACK style: <region>.<primary ip>)
    instance_id: str     # = the fabric's netns name
    ip: str              # primary private IP = node IP
    region: str
    zone: str
    instance_type: str


class Node:
    """containerd + kubelet for one instance; ``start`` waits for each, ``stop`` leaves nothing."""

    def __init__(self, spec: NodeSpec, bin_dir: Path, workdir: Path, pki: Pki,
                 master_ip: str) -> None:
        self.spec, self.bin, self.pki, self.master_ip = spec, bin_dir, pki, master_ip
        self.workdir = workdir
        self.dir = workdir / "nodes" / spec.instance_id
        self.logs = workdir / "logs" / spec.name
        self.cgroup_root = cgroup_root_of(spec.instance_id)
        self.holder: Proc | None = None
        self.mount_ns = ""   # the holder's, read while it surely runs: stop() kills what is in
                             # it, and a pid read later may be another process's by then
        self.procs: list[Proc] = []

    # -- namespaces ------------------------------------------------------------------------------
    def enter(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this node (its network and mount namespaces)."""
        if self.holder is None:
            raise ClusterError(f"node {self.spec.name} is not up")
        return ["nsenter", "-t", str(self.holder.pid), "--mount", "--net", "--", *argv]

    def _start_holder(self, timeout: float) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "holder.ready").unlink(missing_ok=True)
        argv = in_netns(self.spec.instance_id, [
            "unshare", "--mount", "--propagation", "slave", "--",
            "sh", "-c", _HOLDER, "holder", str(self.dir), self.cgroup_root])
        self.holder = spawn("holder", argv, self.logs, tag_env(self.workdir))
        wait_until(self.holder, f"node {self.spec.name}: its mount namespace",
                   lambda: (self.dir / "holder.ready").exists(), timeout, interval=0.1)
        self.mount_ns = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")

    # -- components ------------------------------------------------------------------------------
    def start(self, images: list[Path], timeout: float = 120.0) -> None:
        self._start_holder(timeout)
        fs = self.dir / "fs"
        shutil.copy2("/usr/lib/cni/loopback", fs / "opt/cni/bin/loopback")  # CRI's lo setup
        self._containerd(timeout)
        for archive in images:
            self.import_image(archive)
        self._kubelet(timeout)

    def _containerd(self, timeout: float) -> None:
        conf = self.dir / "containerd.toml"
        conf.write_text(_CONTAINERD.format(pause=PAUSE_IMAGE))
        proc = spawn("containerd", self.enter(["containerd", "--config", str(conf)]), self.logs,
                     tag_env(self.workdir))
        self.procs.append(proc)
        sock = self.dir / "fs/run/containerd/containerd.sock"
        wait_until(proc, f"node {self.spec.name}: containerd", sock.exists, timeout, 0.2)

    def ctr(self, *args: str) -> list[str]:
        return self.enter(["ctr", "--address", "/run/containerd/containerd.sock",
                           "-n", "k8s.io", *args])

    def import_image(self, archive: Path) -> None:
        proc = subprocess.run(self.ctr("images", "import", str(archive)),
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"node {self.spec.name}: importing {archive} into containerd "
                               f"failed: {proc.stderr.strip()}")

    def _kubelet(self, timeout: float) -> None:
        s, pki = self.spec, self.pki
        client = pki.issue(f"kubelet-{s.name}", f"system:node:{s.name}", "system:nodes",
                           client=True)
        serving = pki.issue(f"kubelet-serving-{s.name}", s.name, server=True,
                            dns=(s.name,), ips=(s.ip,))
        kubeconfig(self.dir / "kubelet.kubeconfig", f"https://{self.master_ip}:{API_PORT}",
                   pki.ca.cert, client, f"system:node:{s.name}")
        (self.dir / "kubelet.yaml").write_text(_KUBELET.format(
            cgroup_root=self.cgroup_root, ca=pki.ca.cert, serving_cert=serving.cert,
            serving_key=serving.key))
        self.start_kubelet(timeout)

    def start_kubelet(self, timeout: float = 60.0) -> None:
        """(Re)start kubelet with the files ``_kubelet`` wrote; waits for its health."""
        s = self.spec
        labels = ",".join([f"topology.kubernetes.io/region={s.region}",
                           f"topology.kubernetes.io/zone={s.zone}",
                           f"node.kubernetes.io/instance-type={s.instance_type}"])
        proc = spawn("kubelet", self.enter([
            str(self.bin / "kubelet"), "--config", str(self.dir / "kubelet.yaml"),
            "--kubeconfig", str(self.dir / "kubelet.kubeconfig"),
            "--hostname-override", s.name, "--node-ip", s.ip,
            "--provider-id", f"{s.region}.{s.instance_id}", "--node-labels", labels]),
            self.logs, tag_env(self.workdir))
        self.procs.append(proc)
        wait_until(proc, f"node {s.name}: kubelet", self._kubelet_healthy, timeout)

    def stop_kubelet(self) -> None:
        """Stop kubelet only (containers keep running), as when a node's kubelet dies."""
        for proc in [p for p in self.procs if p.name == "kubelet"]:
            proc.stop()
            self.procs.remove(proc)

    def host_path(self, path: str) -> Path:
        """Where a path of this node (one of ``PRIVATE_DIRS``) is on the host."""
        if path.startswith("/var/run/"):
            path = path[len("/var"):]           # /var/run -> /run, as on Debian
        return self.dir / "fs" / path.lstrip("/")

    def _kubelet_healthy(self) -> bool:
        with entered(self.spec.instance_id):
            resp = urllib.request.urlopen("http://127.0.0.1:10248/healthz", timeout=3)
        with resp:
            return bool(resp.status == 200)

    # -- teardown --------------------------------------------------------------------------------
    def stop(self) -> None:
        """kubelet, then containerd, then every process left in the node (shims, containers),
        then the node's cgroups and files."""
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        kill_all(cgroup_pids(self.cgroup_root))
        if self.holder is not None:
            if self.mount_ns and self.mount_ns != os.readlink("/proc/self/ns/mnt"):
                kill_all([p for p in pids_in_mount_ns(self.mount_ns) if p != self.holder.pid])
            self.holder.stop(grace=2)
            self.holder = None
        remove_cgroups(self.cgroup_root)
        shutil.rmtree(self.dir, ignore_errors=True)


def cgroup_root_of(instance_id: str) -> str:
    """Named after the instance (unique across clusters, unlike node names)."""
    return f"terway-testbed-{instance_id}"


def _cgroup_dirs(root_name: str) -> list[Path]:
    """Every cgroup directory under a node's root in every hierarchy, deepest first."""
    found: list[Path] = []
    for hierarchy in Path(CGROUP_BASE).iterdir():
        root = hierarchy / root_name
        if root.is_dir():
            found += [Path(d) for d, _, _ in os.walk(root)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(root_name: str) -> list[int]:
    """Processes in a node's cgroups (pods' containers, which live in mount namespaces of
    their own)."""
    pids: set[int] = set()
    for d in _cgroup_dirs(root_name):
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
    return sorted(pids)


def remove_cgroups(root_name: str) -> None:
    """Kill what is left in a node's cgroups and remove them (a cgroup with a process, even a
    dying one, cannot be removed: retry for a few seconds)."""
    for _ in range(25):
        kill_all(cgroup_pids(root_name))
        for d in _cgroup_dirs(root_name):
            with contextlib.suppress(OSError):
                d.rmdir()
        if not _cgroup_dirs(root_name):
            return
        time.sleep(0.2)

