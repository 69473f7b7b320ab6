"""A single-node test bed on the fabric: emulator + fabric + ``terwayd`` inside the node's netns,
and pods as fresh namespaces set up by executing the ``terway`` CNI plugin as a runtime would.

Used by tests/e2e_node and demo/node-demo.py. It drives the plugin only through its fixed surface
(docs/fabric.md, "The single-node test bed"): the ``terwayd``/``terway``/``terway-cli``
executables, ``eni_conf`` JSON, the CNI env + stdin, the daemon socket. It imports nothing from
``terway``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.model import Cloud
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

from . import Fabric, start
from .netns import netns_add, netns_delete
from .proxy import API_IP, METADATA_IP

ZONE = "cn-hangzhou-h"
BIN = Path(sys.executable).parent
CNI_VERSION = "1.0.0"


@dataclass
class CniOutcome:
    """One plugin run: exit code and the JSON it printed (result or error)."""

    rc: int
    out: dict[str, Any]
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def ip(self) -> str | None:
        ips = self.out.get("ips") or []
        return str(ips[0]["address"]).split("/")[0] if ips else None

    @property
    def msg(self) -> str:
        return f"{self.out.get('msg', '')} {self.out.get('details', '')}".strip()


@dataclass
class MappingRow:
    status: str
    pod: str
    res_id: str
    factory_res_id: str

    @property
    def ip(self) -> str:
        return self.res_id.split(".", 1)[1] if "." in self.res_id else ""


@dataclass
class NodeBed:
    """Everything for one node; ``up()`` then ``start_daemon()``; ``down()`` removes it all."""

    workdir: Path
    seed: int = 1
    vswitch_cidr: str = "10.88.1.0/28"
    vpc_cidr: str = "10.88.0.0/16"
    instance_type: str = "ecs.g6.2xlarge"
    conf: dict[str, Any] = field(default_factory=dict)   # eni_conf overrides
    alloc_timeout: float = 8.0     # terwayd --alloc-timeout (upstream's 120 s, compressed)
    config_poll: float = 0.5       # terwayd --config-poll: how soon an eni_conf edit is seen
    cloud: Cloud = field(init=False)
    emulator: Any = field(init=False, default=None)
    server: Any = field(init=False, default=None)
    fabric: Fabric | None = field(init=False, default=None)
    node: str = field(init=False, default="")
    vpc_id: str = field(init=False, default="")
    vswitch_id: str = field(init=False, default="")
    sg_id: str = field(init=False, default="")
    daemon: subprocess.Popen[bytes] | None = field(init=False, default=None)
    pods: dict[str, str] = field(init=False, default_factory=dict)   # pod name → netns name

    # -- paths -------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.workdir / "eni.json"

    @property
    def socket(self) -> Path:
        return self.workdir / "eni.sock"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def log_file(self) -> Path:
        return self.workdir / "terwayd.log"

    @property
    def plugin(self) -> Path:
        """The CNI plugin pods are set up with: the native front (``terway``) and its Python
        fallback, installed by ``up()`` with ``python -m terway.cni.launcher``."""
        return self.workdir / "cni-bin" / "terway"

    # -- world -------------------------------------------------------------------------------
    def up(self) -> NodeBed:
        """Cloud with one VPC, one vSwitch, one node; served on 127.0.0.1; fabric on."""
        from emulator.server import Emulator

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.plugin.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "terway.cni.launcher", str(self.plugin)],
                       check=True, capture_output=True)
        self.cloud = Cloud(seed=self.seed)
        self.emulator = Emulator(self.cloud, None, seed=self.seed)   # default credentials
        vpc = self.cloud.create_vpc(self.vpc_cidr)
        vsw = self.cloud.create_vswitch(vpc.vpc_id, ZONE, self.vswitch_cidr)
        sg = self.cloud.create_security_group(vpc.vpc_id)
        self.vpc_id, self.vswitch_id, self.sg_id = vpc.vpc_id, vsw.vswitch_id, sg.security_group_id
        (self.node,) = self.cloud.run_instances(self.instance_type, vsw.vswitch_id, [self.sg_id])
        self.server = self.emulator.serve(port=0)
        self.fabric = start(self.cloud, self.server.port)
        self.write_conf(vswitches=[self.vswitch_id])
        return self

    def eni_conf(self, vswitches: list[str]) -> dict[str, Any]:
        return {
            "version": "1",
            "access_key": DEFAULT_ACCESS_KEY_ID,
            "access_secret": DEFAULT_ACCESS_KEY_SECRET,
            "vswitches": {ZONE: vswitches},
            "security_group": self.sg_id,
            "service_cidr": "172.21.0.0/20",
            "min_pool_size": 2,
            "max_pool_size": 5,
            "ip_pool_sync_period": "1s",
            **self.conf,
        }

    def write_conf(self, vswitches: list[str]) -> None:
        """(Re)write eni_conf atomically, as a ConfigMap update lands."""
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.eni_conf(vswitches), indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(self.config_file)

    def create_vswitch_with_sdk(self, cidr: str, zone: str = ZONE) -> str:
        """CreateVSwitch through the official VPC SDK against the emulator (root namespace)."""
        from alibabacloud_tea_openapi.models import Config
        from alibabacloud_vpc20160428.client import Client
        from alibabacloud_vpc20160428.models import CreateVSwitchRequest

        client = Client(Config(access_key_id=DEFAULT_ACCESS_KEY_ID,
                               access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
                               endpoint=self.server.endpoint, protocol="http",
                               region_id=self.cloud.region_id))
        resp = client.create_vswitch(CreateVSwitchRequest(
            region_id=self.cloud.region_id, vpc_id=self.vpc_id, zone_id=zone, cidr_block=cidr,
            v_switch_name="remedy"))
        return str(resp.body.v_switch_id)

    # -- daemon ------------------------------------------------------------------------------
    def start_daemon(self, timeout: float = 30.0) -> None:
        """``ip netns exec <node> terwayd …`` with its log appended to ``terwayd.log``."""
        cmd = ["ip", "netns", "exec", self.node, str(BIN / "terwayd"),
               "--config", str(self.config_file),
               "--cloud-endpoint", f"http://{API_IP}",
               "--metadata-endpoint", f"http://{METADATA_IP}",
               "--state-dir", str(self.state_dir), "--socket", str(self.socket),
               # upstream's files next to ours, as on a real node (not the host's own)
               "--upstream-state-dir", str(self.state_dir),
               "--alloc-timeout", str(self.alloc_timeout), "--config-poll", str(self.config_poll),
               "--seed", str(self.seed)]
        log = self.log_file.open("ab")
        self.daemon = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"terwayd exited with {self.daemon.returncode}; log tail:\n"
                                   + self.log_tail())
            if self.socket.exists() and self._serving():
                return
            time.sleep(0.1)
        last = self.status()
        raise RuntimeError(f"terwayd not serving on {self.socket} after {timeout}s; last CNI "
                           f"STATUS: rc={last.rc} {last.out or last.stderr[-300:]!r}; log tail:\n"
                           + self.log_tail())

    def _serving(self) -> bool:
        """Past start-up: CNI STATUS is OK, or says only that no IPs can be had (exhausted).

        (A socket file alone proves nothing: a killed daemon leaves its socket behind.)
        """
        status = self.status()
        return status.ok or "no IPs can be had" in status.msg

    def kill_daemon(self, sig: int = signal.SIGKILL) -> None:
        if self.daemon is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.daemon.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.daemon.wait(timeout=15)
        if self.daemon.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait(timeout=5)
        self.daemon = None

    def daemon_alive(self) -> bool:
        return self.daemon is not None and self.daemon.poll() is None

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- plugin ------------------------------------------------------------------------------
    def netconf(self) -> dict[str, Any]:
        return {"cniVersion": CNI_VERSION, "name": "terway", "type": "terway",
                "daemon_socket": str(self.socket), "eniip_virtual_type": "Veth"}

    def cni(self, command: str, pod: str, timeout: float = 150.0) -> CniOutcome:
        """Execute ``terway`` inside the node netns with CNI env + stdin netconf."""
        netns = self.pods.get(pod) or self.pod_netns(pod)
        env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": _container_id(pod),
               "CNI_NETNS": f"/var/run/netns/{netns}", "CNI_IFNAME": "eth0",
               "CNI_PATH": str(self.plugin.parent),
               "CNI_ARGS": (f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};"
                            f"K8S_POD_INFRA_CONTAINER_ID={_container_id(pod)}")}
        proc = subprocess.run(["ip", "netns", "exec", self.node, str(self.plugin)],
                              input=json.dumps(self.netconf()).encode(), env=env,
                              capture_output=True, timeout=timeout, check=False)
        text = proc.stdout.decode(errors="replace").strip()
        try:
            out = json.loads(text) if text else {}
        except ValueError:
            out = {"msg": f"unparsable plugin output: {text!r}"}
        return CniOutcome(proc.returncode, out, proc.stderr.decode(errors="replace"))

    def pod_netns(self, pod: str) -> str:
        return f"pod-{self.seed}-{pod}"

    def add_pod(self, pod: str) -> CniOutcome:
        """A new sandbox netns + CNI ADD; on failure the runtime's DEL follows, netns removed."""
        netns = self.pod_netns(pod)
        netns_delete(netns)
        netns_add(netns)
        self.pods[pod] = netns
        outcome = self.cni("ADD", pod)
        if not outcome.ok:
            self.cni("DEL", pod)
            self._forget(pod)
        return outcome

    def del_pod(self, pod: str) -> CniOutcome:
        outcome = self.cni("DEL", pod)
        if outcome.ok:
            self._forget(pod)
        return outcome

    def _forget(self, pod: str) -> None:
        netns = self.pods.pop(pod, None)
        if netns:
            netns_delete(netns)

    def status(self) -> CniOutcome:
        return self.cni("STATUS", "status-probe")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "terway-cli"), "--socket", str(self.socket), *args],
                              capture_output=True, text=True, timeout=30, check=False)

    def mapping(self) -> list[MappingRow]:
        """``terway-cli mapping`` parsed: ``Status | Pod Name | Res ID | Factory Res ID``."""
        proc = self.cli("mapping")
        rows = []
        for line in proc.stdout.splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) == 4 and cells[0] and cells[0] != "Status":
                rows.append(MappingRow(*cells))
        return rows

    # -- cloud views -------------------------------------------------------------------------
    def node_enis(self) -> list[Any]:
        """Secondary ENIs attached to (or Attaching/Detaching on) the node."""
        primary = self.cloud.get_instance(self.node).primary_eni_id
        return [e for e in self.cloud.describe_network_interfaces(instance_id=self.node)
                if e.eni_id != primary]

    def loose_enis(self) -> list[Any]:
        """ENIs in the VPC attached to nothing (e.g. leaked between create and attach)."""
        return [e for e in self.cloud.describe_network_interfaces(vpc_id=self.vpc_id)
                if not e.instance_id]

    # -- teardown ----------------------------------------------------------------------------
    def down(self) -> None:
        """Kill terwayd, remove pod namespaces, stop fabric and server (idempotent)."""
        self.kill_daemon()
        for pod in list(self.pods):
            self._forget(pod)
        if self.fabric is not None:
            self.fabric.stop()
            self.fabric = None
        if self.server is not None:
            self.server.stop()
            self.server = None


def _container_id(pod: str) -> str:
    import hashlib

    return hashlib.sha256(pod.encode()).hexdigest()[:32]
