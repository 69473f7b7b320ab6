"""Drivers for real runtimes whose containers live on an emulated node (see docs/e2e.md).

The node is a fabric netns (an emulated ECS instance) with ``terwayd`` inside it. Runtimes are
run with ``nsenter --net=/run/netns/<node>``: only the *network* namespace is the node's, the
mount namespace stays the host's, so the sandbox netns podman bind-mounts under /run/netns
propagates to terwayd (which runs under ``ip netns exec`` in a slave mount namespace). With
``ip netns exec <node> podman …`` the bind mount stays private to podman's own mount namespace
and the daemon's setns(2) on that path fails with EINVAL (tested: test_ip_netns_exec_route_…).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.fabric.testbed import CniOutcome, NodeBed
from tests.e2e import runtime_setup as rs

NETWORK = "terway-e2e"
LABEL = "terway-e2e"
CONFLIST = rs.CNI_CONF_DIR / f"{NETWORK}.conflist"


def write_conflist(bed: NodeBed, path: Path = CONFLIST) -> Path:
    """The network podman sees: one ``terway`` plugin pointed at this node's daemon socket."""
    conf = {"cniVersion": "1.0.0", "name": NETWORK,
            "plugins": [{"type": "terway", "daemon_socket": str(bed.socket),
                         "eniip_virtual_type": "Veth"}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conf, indent=2) + "\n")
    return path


@dataclass
class Podman:
    """``podman`` as seen from the node: its CNI plugin runs in the node's netns."""

    node: str
    containers_conf: Path | None = None   # None: the system's /etc/containers/containers.conf

    def cmd(self, *args: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.node}", "podman", *args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.containers_conf is not None:
            env["CONTAINERS_CONF"] = str(self.containers_conf)
        return env

    def run(self, *args: str, check: bool = True,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.cmd(*args), env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"`podman {' '.join(args)}` exited {proc.returncode}:\n"
                                 f"{proc.stderr}\n{proc.stdout}")
        return proc

    def start(self, name: str, *cmd: str) -> str:
        """A detached container on the terway network; returns its name."""
        self.run("run", "-d", "--name", name, "--label", f"{LABEL}=1", "--network", NETWORK,
                 "--cap-add", "NET_RAW", rs.IMAGE, *(cmd or ("sleep", "600")))
        return name

    def exec(self, name: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("exec", name, *cmd, check=check)

    def inspect(self, name: str) -> dict[str, Any]:
        out = self.run("inspect", "--type", "container", name).stdout
        return dict(json.loads(out)[0])

    def remove_all(self) -> None:
        """Remove every container this suite labelled (CNI DEL runs while the daemon lives)."""
        ids = self.run("ps", "-a", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
        if ids:
            self.run("rm", "-f", "-t", "0", *ids, check=False)


def eth0_ipv4(output: str) -> str | None:
    """The first IPv4 address in ``ip -4 -o addr show dev eth0`` output."""
    for line in output.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


def cni_exec(bed: NodeBed, command: str, container_id: str, netns: str, pod: str,
             namespace: str = "docker", prev_result: dict[str, Any] | None = None,
             timeout: float = 150) -> CniOutcome:
    """Execute the ``terway`` plugin in the node's netns as a runtime would (docker's way)."""
    env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
           "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": str(bed.plugin.parent),
           "CNI_ARGS": (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};"
                        f"K8S_POD_INFRA_CONTAINER_ID={container_id}")}
    netconf: dict[str, Any] = {"cniVersion": "1.0.0", "name": NETWORK, "type": "terway",
               "daemon_socket": str(bed.socket), "eniip_virtual_type": "Veth"}
    if prev_result is not None:
        netconf["prevResult"] = prev_result
    proc = subprocess.run(["nsenter", f"--net=/run/netns/{bed.node}", str(bed.plugin)],
                          input=json.dumps(netconf).encode(), env=env, capture_output=True,
                          timeout=timeout, check=False)
    text = proc.stdout.decode(errors="replace").strip()
    try:
        out = json.loads(text) if text else {}
    except ValueError:
        out = {"msg": f"unparsable plugin output: {text!r}"}
    return CniOutcome(proc.returncode, out, proc.stderr.decode(errors="replace"))
