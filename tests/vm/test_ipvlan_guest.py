"""IPVLAN datapath traffic between pods, the node and the vSwitch (runs inside the qemu guest).

These need the ipvlan kernel module. On a host without it they skip, and the host-side
``test_vm.py`` boots a guest that has it and runs them there (TERWAY_IN_VM=1: no skipping).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from terway.datapath import IPVLAN, PodNetwork, PodSpec, check_pod, setup_pod, teardown_pod
from terway.datapath.naming import ipvlan_host_name
from tests.datapath.topology import ENI_MAC, GATEWAY, NODE_IP, Node, new_tag, ping, sh

IN_VM = os.environ.get("TERWAY_IN_VM") == "1"
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.10"  # a ClusterIP the node answers for (kube-proxy IPVS: kube-ipvs0)
HOST_STACK_CIDR = "169.254.20.0/24"
HOST_STACK_IP = "169.254.20.10"  # a node-local address (NodeLocal DNSCache's)
ELSEWHERE_IP = "10.200.0.1"  # the node owns it too, but it is in no redirected CIDR


@functools.cache
def ipvlan_supported() -> bool:
    """Can this kernel make an ipvlan link? The master must be an Ethernet device (not lo)."""
    tag = f"twvp{os.getpid() % 100000}"
    run = functools.partial(subprocess.run, capture_output=True, check=False)
    if run(["ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b"]).returncode:
        return False
    try:
        probe = ["ip", "link", "add", f"{tag}i", "link", f"{tag}a", "type", "ipvlan", "mode", "l2"]
        return run(probe).returncode == 0
    finally:
        run(["ip", "link", "del", f"{tag}a"])


pytestmark = pytest.mark.privileged


@pytest.fixture
def node() -> Iterator[Node]:
    """An emulated node; skips on kernels without ipvlan, except in the guest where it fails."""
    if not ipvlan_supported():
        if IN_VM:
            pytest.fail("TERWAY_IN_VM=1 but the guest kernel cannot create ipvlan links")
        pytest.skip("ipvlan missing from this kernel: runs in the qemu guest (tests/vm/test_vm.py)")
    n = Node(f"v{new_tag()}")
    try:
        n.build()
        yield n
    finally:
        n.destroy()


def pod(node: Node, name: str) -> tuple[PodSpec, str]:
    spec = PodSpec("default", name, node.pod_ns(name))
    return spec, spec.netns.rsplit("/", 1)[1]


def net(ip: str, egress_bps: int = 0) -> PodNetwork:
    return PodNetwork(ip, GATEWAY, ENI_MAC, prefix_len=24, egress_bps=egress_bps)


def svc_net(ip: str) -> PodNetwork:
    return PodNetwork(ip, GATEWAY, ENI_MAC, prefix_len=24, service_cidr=SERVICE_CIDR,
                      host_stack_cidrs=(HOST_STACK_CIDR,))


def node_owns_service_addresses(node: Node) -> None:
    """The node answers for a ClusterIP and a node-local address on a dummy, as kube-proxy's
    IPVS mode does (kube-ipvs0): only the host stack can answer them, the vSwitch cannot."""
    sh("ip", "-n", node.node, "link", "add", "kube-ipvs0", "type", "dummy")
    for ip in (SERVICE_IP, HOST_STACK_IP, ELSEWHERE_IP):
        sh("ip", "-n", node.node, "addr", "add", f"{ip}/32", "dev", "kube-ipvs0")


def redirect_filters(node: Node) -> list[str]:
    """The ENI's egress tc filters that match something, each as one line with its counters."""
    out = sh("tc", "-s", "-n", node.node, "filter", "show", "dev", "eth1", "egress")
    blocks = re.split(r"\n(?=filter )", out)
    keep = ("filter", "match", "action", "Sent")
    return [" | ".join(ln.strip() for ln in b.splitlines() if ln.strip().startswith(keep))
            for b in blocks if "match" in b]


def tcp_hello(node: Node, pod_ns: str, ip: str, port: int = 8080) -> str:
    """A TCP server on the node at ``ip:port`` says hello to one client in ``pod_ns``."""
    serve = ("import socket,sys\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             f"s.bind(({ip!r}, {port})); s.listen(1); print('ready', flush=True)\n"
             "s.settimeout(30); c, _ = s.accept(); c.sendall(b'terway-hello'); c.close()\n")
    server = subprocess.Popen(["ip", "netns", "exec", node.node, sys.executable, "-c", serve],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = ("import socket\n"
                  f"c = socket.create_connection(({ip!r}, {port}), timeout=10)\n"
                  "print(c.recv(64).decode())\n")
        proc = subprocess.run(["ip", "netns", "exec", pod_ns, sys.executable, "-c", client],
                              capture_output=True, text=True, timeout=60)
        return proc.stdout.strip() or proc.stderr.strip()
    finally:
        server.kill()
        server.wait()


def eni_index(node: Node) -> int:
    """The ENI's ifindex in the node netns (the host slave is named after it)."""
    return int(sh("ip", "-n", node.node, "-o", "link", "show", "eth1").split(":", 1)[0])


def test_two_pods_on_one_eni_reach_each_other_and_the_gateway(node: Node) -> None:
    (a, ans), (b, bns) = pod(node, "a"), pod(node, "b")
    setup_pod(IPVLAN, a, net("10.9.0.41"), node.node)
    setup_pod(IPVLAN, b, net("10.9.0.42"), node.node)
    assert ping(ans, "10.9.0.42")
    assert ping(bns, "10.9.0.41")
    assert ping(ans, GATEWAY)
    assert ping(bns, GATEWAY)
    link = sh("ip", "-d", "-n", ans, "link", "show", "eth0")
    assert "ipvlan" in link and "mode l2" in link


def test_node_reaches_pod_through_its_host_slave(node: Node) -> None:
    p, ns = pod(node, "h")
    setup_pod(IPVLAN, p, net("10.9.0.43"), node.node)
    slave = ipvlan_host_name(eni_index(node))
    route = sh("ip", "-n", node.node, "route", "show", "10.9.0.43/32")
    assert f"dev {slave}" in route and "scope link" in route
    assert "UP" in sh("ip", "-n", node.node, "-br", "link", "show", slave)
    assert ping(node.node, "10.9.0.43")
    assert ping(ns, NODE_IP)
    # As upstream: the host slave has ARP off, and the pod reaches the node IP through its own
    # MAC (ipvlan delivers it by IP to ipvl_X), not by ARP.
    assert "NOARP" in sh("ip", "-n", node.node, "link", "show", slave)
    pod_mac = sh("ip", "-n", ns, "-br", "link", "show", "eth0").split()[2]
    assert f"{NODE_IP} lladdr {pod_mac} PERMANENT" in sh("ip", "-n", ns, "neigh", "show", "dev",
                                                         "eth0")
    routes = sh("ip", "-n", ns, "route", "show", "dev", "eth0").splitlines()
    assert any(r.startswith(f"{NODE_IP} ") and "scope link" in r for r in routes), routes
    sh("ip", "-n", node.node, "link", "set", slave, "arp", "on")
    assert check_pod(IPVLAN, p, net("10.9.0.43"), node.node) == [f"host slave {slave} has ARP on"]
    setup_pod(IPVLAN, p, net("10.9.0.43"), node.node)  # the re-sync turns it off again
    assert "NOARP" in sh("ip", "-n", node.node, "link", "show", slave)


def test_host_slave_lives_until_the_last_pod_goes(node: Node) -> None:
    (a, _), (b, bns) = pod(node, "a"), pod(node, "b")
    na, nb = net("10.9.0.44"), net("10.9.0.45")
    setup_pod(IPVLAN, a, na, node.node)
    setup_pod(IPVLAN, b, nb, node.node)
    slave = ipvlan_host_name(eni_index(node))
    teardown_pod(IPVLAN, a, na, node.node)
    assert slave in sh("ip", "-n", node.node, "-br", "link")
    assert "10.9.0.44" not in sh("ip", "-n", node.node, "route")
    assert ping(bns, GATEWAY)
    teardown_pod(IPVLAN, b, nb, node.node)
    assert slave not in sh("ip", "-n", node.node, "-br", "link")


def test_egress_rate_is_a_tbf_on_pod_eth0(node: Node) -> None:
    p, ns = pod(node, "bw")
    setup_pod(IPVLAN, p, net("10.9.0.46", egress_bps=20_000_000), node.node)
    qdisc = sh("tc", "-n", ns, "qdisc", "show", "dev", "eth0")
    assert "tbf" in qdisc and "20Mbit" in qdisc


def test_check_reports_a_missing_slave(node: Node) -> None:
    p, ns = pod(node, "c")
    n = net("10.9.0.47")
    setup_pod(IPVLAN, p, n, node.node)
    assert check_pod(IPVLAN, p, n, node.node) == []
    sh("ip", "-n", ns, "link", "del", "eth0")
    assert check_pod(IPVLAN, p, n, node.node) != []
    setup_pod(IPVLAN, p, n, node.node)  # a retry repairs it
    assert check_pod(IPVLAN, p, n, node.node) == []
    assert ping(ns, GATEWAY)


def test_service_and_host_stack_traffic_reaches_the_node_stack(node: Node) -> None:
    p, ns = pod(node, "svc")
    n = svc_net("10.9.0.48")
    node_owns_service_addresses(node)
    setup_pod(IPVLAN, p, n, node.node)
    assert ping(ns, SERVICE_IP)
    assert ping(ns, HOST_STACK_IP)
    assert tcp_hello(node, ns, SERVICE_IP) == "terway-hello"
    assert tcp_hello(node, ns, HOST_STACK_IP, 8081) == "terway-hello"
    # Only the listed CIDRs: the rest still goes to the vSwitch (which has no route for it).
    assert not ping(ns, ELSEWHERE_IP)
    assert check_pod(IPVLAN, p, n, node.node) == []
    # Without the redirect the pod's Service traffic goes to the vSwitch and is lost:
    sh("tc", "-n", node.node, "filter", "del", "dev", "eth1", "egress")
    assert not ping(ns, SERVICE_IP)
    assert not ping(ns, HOST_STACK_IP)
    findings = check_pod(IPVLAN, p, n, node.node)
    assert len(findings) == 2, findings
    assert SERVICE_CIDR in findings[0] and HOST_STACK_CIDR in findings[1]
    setup_pod(IPVLAN, p, n, node.node)  # GC's re-sync (or a retry) puts it back
    assert check_pod(IPVLAN, p, n, node.node) == []
    assert ping(ns, SERVICE_IP)


def test_redirect_filters_survive_a_rerun_and_go_with_the_last_pod(node: Node) -> None:
    (a, ans), (b, _) = pod(node, "a"), pod(node, "b")
    na, nb = svc_net("10.9.0.49"), svc_net("10.9.0.50")
    node_owns_service_addresses(node)
    setup_pod(IPVLAN, a, na, node.node)
    setup_pod(IPVLAN, b, nb, node.node)
    slave = ipvlan_host_name(eni_index(node))
    assert ping(ans, SERVICE_IP)  # counts one packet on the service filter
    filters = redirect_filters(node)
    assert len(filters) == 2, filters
    service, host_stack = filters
    assert "0a600000/fff00000 at 16" in service and "a9fe1400/ffffff00 at 16" in host_stack
    for f in filters:
        assert "protocol ip pref 40000 u32" in f
        assert f"mirred (Ingress Redirect to device {slave}) stolen" in f
    assert "Sent 0 bytes 0 pkt" not in service  # the ping went through it
    # GC re-runs set-up on live pods every period: same filters, counters intact, no duplicates.
    setup_pod(IPVLAN, a, na, node.node)
    setup_pod(IPVLAN, b, nb, node.node)
    assert redirect_filters(node) == filters
    teardown_pod(IPVLAN, a, na, node.node)
    assert redirect_filters(node) == filters  # b still uses the ENI
    teardown_pod(IPVLAN, b, nb, node.node)
    assert redirect_filters(node) == []
    assert "clsact" not in sh("tc", "-n", node.node, "qdisc", "show", "dev", "eth1")
    assert slave not in sh("ip", "-n", node.node, "-br", "link")
