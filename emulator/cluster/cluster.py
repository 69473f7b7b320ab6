"""The whole test-bed cluster: an emulated VPC (emulator + fabric), a master instance running the
control plane, N node instances running containerd + kubelet, and the plugin deployed as the
DaemonSet ``terway-eniip`` with ``kubectl apply -k``.

``Cluster.up()`` brings it up step by step, each step waited for, and raises ``ClusterError``
naming the component that did not come up; ``down()`` leaves no process, mount, netns or cgroup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.fabric.registry import alive, started
from emulator.model import Cloud
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

from .artifacts import Artifacts, build_artifacts
from .controlplane import API_PORT, SERVICE_CIDR, ControlPlane
from .node import Node, NodeSpec
from .pki import Pki, kubeconfig
from .procs import ClusterError
from .relay import Relay

ROOT = Path(__file__).resolve().parents[2]
ZONE = "cn-hangzhou-h"
NODE_TYPE = "ecs.g6.2xlarge"        # 4 ENIs x 10 IPs: 27 pods in shared mode
MASTER_TYPE = "ecs.g6.large"
STATE_FILE = "cluster.json"         # pids and names, for `down` after a crash


@dataclass
class World:
    """The emulated cloud the cluster runs on (ids filled by ``Cluster.up``)."""

    vpc_cidr: str = "192.168.0.0/16"
    node_cidr: str = "192.168.0.0/24"      # nodes' primary ENIs
    pod_cidr: str = "192.168.16.0/27"      # pods' vSwitch: small on purpose (the seeds' story)
    vpc_id: str = ""
    node_vswitch: str = ""
    pod_vswitch: str = ""
    security_group: str = ""


@dataclass
class Cluster:
    workdir: Path = Path("/var/lib/terway-testbed/cluster")
    nodes: int = 2
    seed: int | None = None     # None: from the workdir (two clusters at once must differ: the
                                # fabric names netns after instance ids, which the seed makes)
    eni_conf: dict[str, Any] = field(default_factory=dict)    # overrides of the test-bed eni_conf
    world: World = field(default_factory=World)
    artifacts: Artifacts | None = None
    cloud: Cloud = field(init=False)
    server: Any = field(init=False, default=None)
    fabric: Any = field(init=False, default=None)
    master_id: str = field(init=False, default="")
    master_ip: str = field(init=False, default="")
    control: ControlPlane | None = field(init=False, default=None)
    relay: Relay | None = field(init=False, default=None)
    members: list[Node] = field(init=False, default_factory=list)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    # -- bring-up --------------------------------------------------------------------------------
    def up(self) -> Cluster:
        if os.geteuid() != 0:
            raise ClusterError("the cluster test bed needs root (namespaces, mounts, cgroups)")
        start = time.monotonic()
        try:
            self._step("artifacts", self._artifacts)
            self._step("cloud", self._cloud)
            self._step("control plane", self._control_plane)
            self._step("nodes", self._nodes)
            self._step("deploy", self.deploy)
        except BaseException:
            self.down()
            raise
        self.timings["total"] = time.monotonic() - start
        return self

    def _step(self, name: str, fn: Any) -> None:
        t0 = time.monotonic()
        _progress(f"cluster: {name} ...")
        fn()
        self.timings[name] = time.monotonic() - t0
        _progress(f"cluster: {name} done in {self.timings[name]:.1f} s")

    def _artifacts(self) -> None:
        if self.artifacts is None:
            self.artifacts = build_artifacts()

    def _cloud(self) -> None:
        from emulator.fabric import start
        from emulator.server import Emulator

        refuse_if_running(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True, mode=0o700)
        if self.seed is None:
            self.seed = 1 + zlib.crc32(str(self.workdir.resolve()).encode()) % 100_000
        w = self.world
        self.cloud = Cloud(seed=self.seed)
        vpc = self.cloud.create_vpc(w.vpc_cidr, name="testbed")
        w.vpc_id = vpc.vpc_id
        w.node_vswitch = self.cloud.create_vswitch(vpc.vpc_id, ZONE, w.node_cidr,
                                                   name="nodes").vswitch_id
        w.pod_vswitch = self.cloud.create_vswitch(vpc.vpc_id, ZONE, w.pod_cidr,
                                                  name="pods").vswitch_id
        w.security_group = self.cloud.create_security_group(vpc.vpc_id).security_group_id
        (self.master_id,) = self.cloud.run_instances(MASTER_TYPE, w.node_vswitch,
                                                     [w.security_group], name="master")
        self.cloud.run_instances(NODE_TYPE, w.node_vswitch, [w.security_group],
                                 amount=self.nodes, name="node")
        self.master_ip = self.cloud.get_instance(self.master_id).primary_ip
        self.server = Emulator(self.cloud, None, seed=self.seed).serve(port=0)
        self.fabric = start(self.cloud, self.server.port)
        self._record()

    def _control_plane(self) -> None:
        assert self.artifacts is not None
        self.pki = Pki(self.workdir / "pki")
        self.control = ControlPlane(self.artifacts.bin_dir, self.workdir, self.master_id,
                                    self.master_ip, self.pki)
        self.control.start()
        self.relay = Relay(self.master_id, (self.master_ip, API_PORT))
        kubeconfig(self.kubeconfig, f"https://127.0.0.1:{self.relay.port}", self.pki.ca.cert,
                   self.control.files.admin, "testbed-admin")
        self._record()

    def _nodes(self) -> None:
        assert self.artifacts is not None
        for inst in self.node_instances():
            spec = NodeSpec(name=f"{self.cloud.region_id}.{inst.primary_ip}",
                            instance_id=inst.instance_id, ip=inst.primary_ip,
                            region=self.cloud.region_id, zone=inst.zone_id,
                            instance_type=inst.instance_type)
            node = Node(spec, self.artifacts.bin_dir, self.workdir, self.pki, self.master_ip)
            self.members.append(node)
            self._record()
            node.start(self.artifacts.archives())
        self.wait(lambda: len(self._json("get", "nodes")["items"]) == self.nodes,
                  "nodes registered with the API server", 60)

    def node_instances(self) -> list[Any]:
        return [i for i in self.cloud.describe_instances() if i.instance_id != self.master_id]

    # -- deployment ------------------------------------------------------------------------------
    def deploy(self) -> None:
        """``kubectl apply -k`` of the test-bed overlay; waits for the DaemonSet and Ready nodes."""
        overlay = self.write_overlay()
        self.kubectl("apply", "-k", str(overlay))
        self.wait(self._daemonset_ready, "DaemonSet kube-system/terway-eniip ready on every node",
                  180)
        self.wait(self._nodes_ready, "nodes Ready (CNI configured by terway)", 120)

    def eni_conf_doc(self, vswitches: list[str] | None = None) -> dict[str, Any]:
        w = self.world
        return {"version": "1", "max_pool_size": 5, "min_pool_size": 2,
                "credential_path": "/var/addon/token-config",
                "vswitches": {ZONE: vswitches or [w.pod_vswitch]},
                "eni_tags": {"terway": "eniip"}, "service_cidr": SERVICE_CIDR,
                "security_group": w.security_group, "vswitch_selection_policy": "ordered",
                "ip_pool_sync_period": "5s", **self.eni_conf}

    def write_overlay(self) -> Path:
        """The world-specific layer over ``deploy/testbed`` (which is over ``deploy/kubernetes``):
        this world's eni_conf, the emulator's credentials as the addon token Secret, and the API
        server's address (there is no kube-proxy, so the `kubernetes` ClusterIP is not routed)."""
        d = self.workdir / "overlay"
        d.mkdir(exist_ok=True, mode=0o700)
        token = {"AccessKeyId": DEFAULT_ACCESS_KEY_ID, "AccessKeySecret": DEFAULT_ACCESS_KEY_SECRET}
        fd = os.open(d / "token-config", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(token, f)
        (d / "eni_conf").write_text(json.dumps(self.eni_conf_doc(), indent=2))
        assert self.artifacts is not None
        name, _, tag = self.artifacts.ref("terway").rpartition(":")
        (d / "kustomization.yaml").write_text(f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: kube-system
images:        # the image built and imported into every node's containerd (no registry)
  - {{name: ghcr.io/terway-py/terway, newName: {name}, newTag: "{tag}"}}
resources:
  - {os.path.relpath(ROOT / "deploy" / "testbed", d)}
generatorOptions:
  disableNameSuffixHash: true
configMapGenerator:
  - name: eni-config
    behavior: merge
    files: [eni_conf]
secretGenerator:
  - name: addon.network.token
    files: [addon.token.config=token-config]
patches:
  - target: {{kind: DaemonSet, name: terway-eniip}}
    patch: |
{self._daemonset_patches()}""")
        return d

    def _daemonset_patches(self) -> str:
        """JSON-patch lines for terwayd (0) and policy (1): the API server's address, since
        there is no kube-proxy to route the `kubernetes` ClusterIP; and every container's image
        is the one imported into the nodes."""
        lines = ["      - {op: replace, path: /spec/template/spec/initContainers/0/"
                 "imagePullPolicy, value: Never}"]
        for i in (0, 1):
            lines += [
                "      - op: add",
                f"        path: /spec/template/spec/containers/{i}/env/-",
                f'        value: {{name: KUBERNETES_SERVICE_HOST, value: "{self.master_ip}"}}',
                "      - op: add",
                f"        path: /spec/template/spec/containers/{i}/env/-",
                f'        value: {{name: KUBERNETES_SERVICE_PORT, value: "{API_PORT}"}}',
                f"      - {{op: replace, path: /spec/template/spec/containers/{i}/"
                "imagePullPolicy, value: Never}"]
        return "\n".join(lines) + "\n"

    def _daemonset_ready(self) -> bool:
        ds = self._json("-n", "kube-system", "get", "daemonset", "terway-eniip")
        st = ds.get("status", {})
        return bool(st.get("numberReady", 0) == self.nodes == st.get("desiredNumberScheduled"))

    def _nodes_ready(self) -> bool:
        items = self._json("get", "nodes")["items"]
        ready = [n for n in items for c in n["status"].get("conditions", [])
                 if c["type"] == "Ready" and c["status"] == "True"]
        return len(ready) == self.nodes

    # -- access ----------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def kubectl_argv(self, *args: str) -> list[str]:
        assert self.artifacts is not None
        return [str(self.artifacts.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig),
                *args]

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120,
                input: str | None = None, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.kubectl_argv(*args), capture_output=True, text=True,
                              timeout=timeout, check=False, input=input,
                              env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()}")
        return proc

    def _json(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl(*args, "-o", "json").stdout))

    def wait(self, ready: Any, what: str, timeout: float) -> None:
        from .procs import wait_until

        wait_until(None, what, ready, timeout, interval=1.0)

    def node(self, name_or_index: str | int) -> Node:
        if isinstance(name_or_index, int):
            return self.members[name_or_index]
        return next(n for n in self.members if name_or_index in (n.spec.name,
                                                                   n.spec.instance_id))

    # -- teardown --------------------------------------------------------------------------------
    def down(self) -> None:
        """Stop everything this cluster started (idempotent)."""
        for node in reversed(self.members):
            node.stop()
        self.members.clear()
        for part, stop in (("relay", "close"), ("control", "stop"), ("fabric", "stop"),
                           ("server", "stop")):         # outermost first
            running = getattr(self, part)
            if running is not None:
                getattr(running, stop)()
                setattr(self, part, None)
        (self.workdir / STATE_FILE).unlink(missing_ok=True)

    def _record(self) -> None:
        """Marks the workdir as holding a cluster (``python -m emulator.cluster down`` finds its
        processes by their environment tag, not by this record)."""
        state = {"pid": os.getpid(), "started": started(os.getpid()), "master": self.master_id,
                 "nodes": [n.spec.name for n in self.members]}
        (self.workdir / STATE_FILE).write_text(json.dumps(state))

    def env_file(self) -> Path:
        """Shell variables for using the running cluster by hand (the demo sources it)."""
        path = self.workdir / "env"
        assert self.artifacts is not None
        path.write_text("".join(f"export {k}={v}\n" for k, v in {
            "KUBECONFIG": self.kubeconfig, "PATH": f"{self.artifacts.bin_dir}:$PATH",
            "TERWAY_EMULATOR_ENDPOINT": self.server.endpoint,
            "TERWAY_REGION": self.cloud.region_id, "TERWAY_VPC": self.world.vpc_id,
            "TERWAY_POD_VSWITCH": self.world.pod_vswitch, "TERWAY_ZONE": ZONE}.items()))
        return path


def refuse_if_running(workdir: Path) -> None:
    """A cluster whose owning process still runs is not ours to replace or clean up (that
    process, not another one that got its pid since: their start times differ)."""
    try:
        state = json.loads((workdir / STATE_FILE).read_text())
        pid = state.get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(pid, int) and alive(pid) and state.get("started") == started(pid):
        raise ClusterError(f"a cluster is running in {workdir} (process {pid}): stop it "
                           f"(Ctrl-C or SIGTERM) or use another --workdir")


def cleanup_crashed(workdir: Path) -> list[str]:
    """Kill and remove what a cluster whose process died left behind; returns what was done.

    Its components are found by the tag in their environment (``procs.tagged``), the pods'
    containers by their node's mount namespace and cgroups; then the fabric's namespaces.
    Refuses (``ClusterError``) while the process that owns the cluster runs."""
    from emulator.fabric import cli_down

    refuse_if_running(workdir)

    from .node import cgroup_root_of, remove_cgroups
    from .procs import kill_all, pids_in_mount_ns, tagged

    done: list[str] = []
    own_ns = os.readlink("/proc/self/ns/mnt")
    pids = set(tagged(workdir))
    for pid in list(pids):
        with contextlib.suppress(OSError):
            ns = os.readlink(f"/proc/{pid}/ns/mnt")
            if ns != own_ns:
                pids |= set(pids_in_mount_ns(ns))
    kill_all(sorted(pids))
    done.append(f"killed {len(pids)} processes of the cluster in {workdir}")
    nodes = workdir / "nodes"
    for node in sorted(nodes.iterdir()) if nodes.is_dir() else []:
        remove_cgroups(cgroup_root_of(node.name))
        shutil.rmtree(node, ignore_errors=True)
        done.append(f"node {node.name}: cgroups and files removed")
    time.sleep(0.5)          # let the killed emulator's process be reaped before fabric down
    cli_down()
    (workdir / STATE_FILE).unlink(missing_ok=True)
    (workdir / "ready").unlink(missing_ok=True)      # python -m emulator.cluster up's marker
    return done


def _progress(msg: str) -> None:
    if sys.stderr.isatty() or os.environ.get("TERWAY_CLUSTER_VERBOSE"):
        print(msg, file=sys.stderr, flush=True)
