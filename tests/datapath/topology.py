"""An emulated node for datapath tests: netns for the node, the vSwitch and the pods.

    vswitch netns: bridge br0 = the vSwitch gateway (GATEWAY/24, GATEWAY_MAC)
       ├── veth ── node netns "eth0" (primary ENI, NODE_IP/24)
       └── veth ── node netns "eth1" (secondary ENI, ENI_MAC, no address)

The VPC routes a pod's IP to the ENI that owns it; here a permanent neighbour entry in the
vSwitch netns (pod IP → ENI MAC) plays that part.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

GATEWAY = "10.9.0.253"
GATEWAY_MAC = "02:00:00:00:0f:fd"
NODE_IP = "10.9.0.100"
ENI_MAC = "02:00:00:00:01:01"
ENI2_MAC = "02:00:00:00:01:02"
ICMP = str(Path(__file__).with_name("icmp.py"))


def sh(*args: str, check: bool = True) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def ns_sh(netns: str, *args: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", netns, *args, check=check)


def ping(netns: str, dst: str) -> bool:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, ICMP, dst, "2"], capture_output=True
    )
    return proc.returncode == 0


@dataclass
class Node:
    tag: str
    made: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"tw{self.tag}-node"

    @property
    def vsw(self) -> str:
        return f"tw{self.tag}-vsw"

    def add_ns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def pod_ns(self, name: str) -> str:
        return f"/var/run/netns/{self.add_ns(f'tw{self.tag}-{name}')}"

    def build(self) -> Node:
        self.add_ns(self.vsw)
        self.add_ns(self.node)
        v, n = self.vsw, self.node
        sh("ip", "-n", v, "link", "add", "br0", "address", GATEWAY_MAC, "type", "bridge")
        sh("ip", "-n", v, "addr", "add", f"{GATEWAY}/24", "dev", "br0")
        sh("ip", "-n", v, "link", "set", "br0", "up")
        self.plug("eth0", "02:00:00:00:01:00")
        self.plug("eth1", ENI_MAC)
        sh("ip", "-n", n, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sh("ip", "-n", n, "link", "set", "eth0", "up")
        return self

    def plug(self, ifname: str, mac: str) -> None:
        """Attach an ENI: a veth whose node end has the ENI's MAC (left down, like a hot-plug)."""
        port = f"p{ifname}"
        sh("ip", "-n", self.node, "link", "add", ifname, "address", mac, "type", "veth",
           "peer", "name", port, "netns", self.vsw)
        sh("ip", "-n", self.vsw, "link", "set", port, "master", "br0", "up")

    def route_pod(self, pod_ip: str, eni_mac: str = ENI_MAC) -> None:
        sh("ip", "-n", self.vsw, "neigh", "replace", pod_ip, "lladdr", eni_mac, "dev", "br0",
           "nud", "permanent")

    def snapshot(self) -> dict[str, str]:
        """What the node's datapath state looks like (for before/after comparisons)."""
        n = self.node
        return {
            "rules": sh("ip", "-n", n, "rule"),
            "routes": sh("ip", "-4", "-n", n, "route", "show", "table", "all"),
            "links": " ".join(sorted(ln.split()[0] for ln in sh("ip", "-n", n, "-br", "link")
                                     .splitlines())),
            "qdiscs": sh("tc", "-n", n, "qdisc"),
        }

    def destroy(self) -> None:
        for name in reversed(self.made):
            sh("ip", "netns", "del", name, check=False)
        self.made.clear()


def new_tag() -> str:
    return f"{os.getpid() % 100000}"
