"""tc TBF really limits a pod's traffic (iperf3 between the pod and the vSwitch netns)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from terway.datapath import VETH, PodNetwork, PodSpec, setup_pod
from tests.datapath.topology import ENI_MAC, GATEWAY, Node

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 not installed"),
]

EGRESS = 20_000_000
INGRESS = 10_000_000


def iperf(node: Node, pod_ns: str, reverse: bool) -> float:
    """Received bits/s of a 3 s TCP run pod → gateway (or gateway → pod with ``reverse``)."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", node.vsw, "iperf3", "-s", "-1", "-B", GATEWAY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        cmd = ["ip", "netns", "exec", pod_ns, "iperf3", "-c", GATEWAY, "-t", "3", "-J"]
        out = subprocess.run(cmd + (["-R"] if reverse else []), capture_output=True, text=True)
        assert out.returncode == 0, out.stdout[-500:] + out.stderr
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])
    finally:
        server.kill()
        server.wait()


def test_egress_and_ingress_are_limited(node: Node) -> None:
    pod = PodSpec("default", "iperf", node.pod_ns("p1"))
    net = PodNetwork("10.9.0.11", GATEWAY, ENI_MAC, ingress_bps=INGRESS, egress_bps=EGRESS)
    setup_pod(VETH, pod, net, node.node)
    node.route_pod("10.9.0.11")
    ns = pod.netns.rsplit("/", 1)[1]
    egress = iperf(node, ns, reverse=False)
    ingress = iperf(node, ns, reverse=True)
    assert 0.5 * EGRESS < egress < 1.1 * EGRESS, f"egress {egress / 1e6:.1f} Mbit/s"
    assert 0.5 * INGRESS < ingress < 1.1 * INGRESS, f"ingress {ingress / 1e6:.1f} Mbit/s"
