"""NetworkPolicy on the real cluster: Calico Felix in the DaemonSet's `policy` container.

A truth table per case (tests/kube/netpol.py): clients = the six server pods (x/a … z/a, on both
nodes), each node's host network and a VPC host that is no node; every cell a real TCP or UDP
exchange whose reply must name the right pod. The expected tables are written by hand from the
Kubernetes NetworkPolicy documentation and upstream's network-policy e2e cases. Then: a
restart of Felix and a frozen API server open nothing; with disable_network_policy "true" the
same pods reach each other freely and Felix's rules are gone.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.cluster import Cluster
from tests.kube.conftest import wait_for
from tests.kube.netpol import SERVERS, VPC, Bed, Cell, set_policy_enabled
from tests.kube.workloads import apply, terway_pods

ENFORCE_TIMEOUT = 30.0      # "within seconds": generous for a 2-CPU machine under test load
TIMES: dict[str, float] = {}


def np(name: str, ns: str, selector: dict[str, str], *, ingress: list[Any] | None = None,
       egress: list[Any] | None = None, types: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector} if selector else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def pod(c: str) -> bool:
    return c in SERVERS


def ns(c: str) -> str | None:
    return c.split("/")[0] if c in SERVERS else None


def own_node(c: Cell) -> bool:
    """Traffic from the server's own node is always allowed (Calico; kubelet probes)."""
    return c.client == f"host{SERVERS[c.server]}"


def only_to(server: str, allowed: Callable[[Cell], bool]) -> Callable[[Cell], bool]:
    """Ingress rules on ``server`` alone: other servers keep all traffic."""
    return lambda c: c.server != server or own_node(c) or allowed(c)


ALL_PORTS = ((80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp"))


@dataclass(frozen=True)
class Case:
    id: str
    policies: Callable[[dict[str, str]], list[dict[str, Any]]]
    expect: Callable[[Cell], bool]
    ports: tuple[tuple[int, str], ...] = ((80, "tcp"),)
    servers: tuple[str, ...] = tuple(SERVERS)
    doc: str = field(default="", compare=False)


def _cases() -> list[Case]:
    from_b = [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]
    from_y = [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]
    return [
        Case("no-policy", lambda w: [], lambda c: True, ALL_PORTS,
             doc="pods selected by no policy: everything allowed"),
        Case("deny-all-ingress", lambda w: [np("deny", "x", {}, ingress=[], types=["Ingress"])],
             lambda c: ns(c.server) != "x" or own_node(c),
             doc="default deny ingress in x; host of the pod's node still allowed"),
        Case("allow-all-adds-to-deny", lambda w: [
            np("deny", "x", {}, ingress=[], types=["Ingress"]),
            np("allow", "x", {}, ingress=[{}])], lambda c: True,
             doc="policies add up: an allow-all next to a deny-all allows all"),
        Case("deny-all-egress", lambda w: [np("deny", "x", {}, egress=[], types=["Egress"])],
             lambda c: ns(c.client) != "x",
             doc="default deny egress in x; x's pods still answer others"),
        Case("pod-selector", lambda w: [np("a-from-b", "x", {"pod": "a"}, ingress=from_b)],
             only_to("x/a", lambda c: c.client == "x/b"),
             doc="podSelector peer: same namespace only (y/b is pod=b too, and denied)"),
        Case("namespace-selector", lambda w: [np("a-from-y", "x", {"pod": "a"}, ingress=from_y)],
             only_to("x/a", lambda c: ns(c.client) == "y")),
        Case("namespace-and-pod-in-one-peer", lambda w: [np(
            "a-from-ya", "x", {"pod": "a"}, ingress=[
                {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                           "podSelector": {"matchLabels": {"pod": "a"}}}]}])],
             only_to("x/a", lambda c: c.client == "y/a"), doc="both in one peer: AND"),
        Case("namespace-or-pod-two-peers", lambda w: [np(
            "a-from-y-or-b", "x", {"pod": "a"}, ingress=[
                {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                          {"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
             only_to("x/a", lambda c: ns(c.client) == "y" or c.client == "x/b"),
             doc="two peers: OR"),
        Case("ipblock", lambda w: [np("a-from-nodes", "x", {"pod": "a"}, ingress=[
            {"from": [{"ipBlock": {"cidr": w["node_cidr"]}}]}])],
             only_to("x/a", lambda c: not pod(c.client)),
             doc="ipBlock: the node vSwitch's hosts (both nodes, the VPC host), no pod"),
        Case("ipblock-except", lambda w: [np("a-from-nodes-but-vpc", "x", {"pod": "a"}, ingress=[
            {"from": [{"ipBlock": {"cidr": w["node_cidr"], "except": [f"{w['vpc_ip']}/32"]}}]}])],
             only_to("x/a", lambda c: c.client.startswith("host"))),
        Case("port-number", lambda w: [np("a-tcp-80", "x", {"pod": "a"}, ingress=[
            {"ports": [{"port": 80, "protocol": "TCP"}]}])],
             only_to("x/a", lambda c: (c.port, c.proto) == (80, "tcp")), ALL_PORTS, ("x/a",)),
        Case("named-port", lambda w: [np("a-named-81", "x", {"pod": "a"}, ingress=[
            {"ports": [{"port": "serve-81-tcp"}]}])],
             only_to("x/a", lambda c: (c.port, c.proto) == (81, "tcp")), ALL_PORTS, ("x/a",)),
        Case("end-port", lambda w: [np("a-tcp-80-81", "x", {"pod": "a"}, ingress=[
            {"ports": [{"port": 80, "endPort": 81, "protocol": "TCP"}]}])],
             only_to("x/a", lambda c: c.proto == "tcp"), ALL_PORTS, ("x/a",)),
        Case("udp", lambda w: [np("a-udp-80", "x", {"pod": "a"}, ingress=[
            {"ports": [{"port": 80, "protocol": "UDP"}]}])],
             only_to("x/a", lambda c: (c.port, c.proto) == (80, "udp")), ALL_PORTS, ("x/a",)),
        Case("sctp-only", lambda w: [np("a-sctp-80", "x", {"pod": "a"}, ingress=[
            {"ports": [{"port": 80, "protocol": "SCTP"}]}])],
             only_to("x/a", lambda c: False), ALL_PORTS, ("x/a",),
             doc="an SCTP-only rule opens no TCP or UDP (this kernel has no SCTP to probe)"),
        Case("egress-pod-and-namespace", lambda w: [np(
            "x-to-ya", "x", {}, types=["Egress"], egress=[
                {"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                         "podSelector": {"matchLabels": {"pod": "a"}}}]}])],
             lambda c: ns(c.client) != "x" or c.server == "y/a"),
        Case("egress-ipblock-except", lambda w: [np("x-to-pods-but-ya", "x", {}, types=["Egress"],
                                                    egress=[{"to": [{"ipBlock": {
                                                        "cidr": w["pod_cidr"],
                                                        "except": [f"{w['y/a']}/32"]}}]}])],
             lambda c: ns(c.client) != "x" or c.server != "y/a",
             doc="as upstream's e2e 'except clause while egress access to server in CIDR'"),
        Case("egress-port", lambda w: [np("x-to-81", "x", {}, types=["Egress"], egress=[
            {"ports": [{"port": 81, "protocol": "TCP"}]}])],
             lambda c: ns(c.client) != "x" or c.port == 81, ((80, "tcp"), (81, "tcp"))),
        Case("policies-add-up", lambda w: [
            np("a-from-xb", "x", {"pod": "a"}, ingress=[{"from": [
                {"podSelector": {"matchLabels": {"pod": "b"}}}]}]),
            np("a-from-yb", "x", {"pod": "a"}, ingress=[{"from": [
                {"namespaceSelector": {"matchLabels": {"ns": "y"}},
                 "podSelector": {"matchLabels": {"pod": "b"}}}]}])],
             only_to("x/a", lambda c: c.client in ("x/b", "y/b"))),
        Case("ingress-and-egress", lambda w: [np("x-only", "x", {}, types=["Ingress", "Egress"],
                                                 ingress=[{"from": [{"podSelector": {}}]}],
                                                 egress=[{"to": [{"podSelector": {}}]}])],
             lambda c: (ns(c.server) == "x") if ns(c.client) == "x"
             else (ns(c.server) != "x" or own_node(c)),
             doc="x talks to x only, both ways"),
        Case("deny-all-both", lambda w: [np("deny", "y", {}, types=["Ingress", "Egress"])],
             lambda c: ns(c.client) != "y" and (ns(c.server) != "y" or own_node(c))),
    ]


CASES = _cases()


@pytest.fixture(scope="module")
def bed(cluster: Cluster) -> Iterator[Bed]:
    b = Bed(cluster)
    b.delete()
    set_policy_enabled(cluster, True)
    b.create()
    try:
        yield b
    finally:
        b.delete()
        if cluster.kubectl("-n", "kube-system", "get", "configmap", "eni-config", "-o",
                           "jsonpath={.data.disable_network_policy}").stdout != "true":
            set_policy_enabled(cluster, False)
        if TIMES:
            ordered = sorted(TIMES.values())
            print(f"policy enforced after (s): p50={ordered[len(ordered) // 2]:.1f} "
                  f"max={ordered[-1]:.1f} over {len(ordered)} cases")


def world(bed: Bed) -> dict[str, str]:
    w = bed.cluster.world
    return {"node_cidr": w.node_cidr, "pod_cidr": w.pod_cidr, "vpc_ip": bed.cluster.master_ip,
            **bed.ips}


def apply_case(bed: Bed, case: Case) -> list[dict[str, Any]]:
    policies = case.policies(world(bed))
    for p in policies:
        apply(bed.cluster, json.dumps(p))
    return policies


def remove(bed: Bed, policies: list[dict[str, Any]]) -> None:
    for p in policies:
        bed.cluster.kubectl("-n", p["metadata"]["namespace"], "delete", "networkpolicy",
                            p["metadata"]["name"], "--ignore-not-found")


def check(bed: Bed, case: Case, expect: Callable[[Cell], bool] | None = None) -> float:
    cells = bed.cells(case.ports, case.servers)
    took, wrong = bed.table_matches(cells, expect or case.expect, ENFORCE_TIMEOUT)
    assert not wrong, (f"{case.id}: {len(wrong)} of {len(cells)} cells wrong after "
                       f"{took:.0f}s:\n" + "\n".join(wrong))
    return took


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_truth_table(bed: Bed, case: Case) -> None:
    policies = apply_case(bed, case)
    try:
        TIMES[case.id] = check(bed, case)
    finally:
        remove(bed, policies)


def test_pod_label_change_takes_effect(bed: Bed) -> None:
    case = next(c for c in CASES if c.id == "pod-selector")
    policies = apply_case(bed, case)
    try:
        check(bed, case)
        bed.cluster.kubectl("-n", "x", "label", "pod", "c", "pod=b", "--overwrite")
        TIMES["pod-label"] = check(bed, case, only_to("x/a", lambda c: c.client in ("x/b", "x/c")))
    finally:
        bed.cluster.kubectl("-n", "x", "label", "pod", "c", "pod=c", "--overwrite")
        remove(bed, policies)


def test_namespace_label_change_takes_effect(bed: Bed) -> None:
    case = next(c for c in CASES if c.id == "namespace-selector")
    policies = apply_case(bed, case)
    try:
        check(bed, case)
        bed.cluster.kubectl("label", "namespace", "z", "ns=y", "--overwrite")
        TIMES["namespace-label"] = check(bed, case, only_to(
            "x/a", lambda c: ns(c.client) in ("y", "z")))
    finally:
        bed.cluster.kubectl("label", "namespace", "z", "ns=z", "--overwrite")
        remove(bed, policies)


def test_policy_edit_takes_effect(bed: Bed) -> None:
    case = next(c for c in CASES if c.id == "port-number")
    policies = apply_case(bed, case)
    try:
        check(bed, case)
        edited = json.loads(json.dumps(policies[0]))
        edited["spec"]["ingress"][0]["ports"][0]["port"] = 81
        apply(bed.cluster, json.dumps(edited))
        TIMES["policy-edit"] = check(bed, case, only_to(
            "x/a", lambda c: (c.port, c.proto) == (81, "tcp")))
    finally:
        remove(bed, policies)


def test_ipv6_block_is_reported_and_narrows_nothing(bed: Bed) -> None:
    """An IPv6 ipBlock (the policy is IPv4-only here) next to an IPv4 one: a Warning event on
    the policy names it, and the IPv4 table is exactly the IPv4 rule's."""
    case = Case("ipblock-with-v6", lambda w: [np("a-from-nodes-v6", "x", {"pod": "a"}, ingress=[
        {"from": [{"ipBlock": {"cidr": w["node_cidr"]}},
                  {"ipBlock": {"cidr": "2001:db8::/32"}}]}])],
        only_to("x/a", lambda c: not pod(c.client)))
    policies = apply_case(bed, case)
    try:
        check(bed, case)
        events = wait_for("a NetworkPolicyNotEnforced event on the policy", lambda: [
            e for e in json.loads(bed.cluster.kubectl(
                "-n", "x", "get", "events", "--field-selector",
                "involvedObject.name=a-from-nodes-v6", "-o", "json").stdout)["items"]
            if e["reason"] == "NetworkPolicyNotEnforced"], 60)
        assert len(events) == 1, events                    # one event, not one per node
        assert "2001:db8::/32" in events[0]["message"]
    finally:
        remove(bed, policies)


DENY_X = Case("deny-x", lambda w: [np("deny", "x", {}, ingress=[], types=["Ingress"])],
              lambda c: ns(c.server) != "x" or own_node(c))


def sample_cells(bed: Bed) -> list[Cell]:
    """Denied and allowed cells across both nodes, small enough to probe every second."""
    return [Cell("host1", "x/a", 80, "tcp"), Cell(VPC, "x/c", 80, "tcp"),
            Cell("y/b", "x/a", 80, "tcp"), Cell("y/a", "x/b", 80, "tcp"),
            Cell("x/b", "y/a", 80, "tcp"), Cell("host0", "y/a", 80, "tcp")]


def watch_cells(bed: Bed, until: Callable[[], bool], timeout: float) -> list[str]:
    """Probe the sample cells until ``until()``; every deviation from DENY_X, with its time."""
    cells, start, seen = sample_cells(bed), time.monotonic(), []
    while time.monotonic() - start < timeout:
        got = bed.probe(cells)
        seen += [f"t={time.monotonic() - start:.1f}s {c.client}->{c.server}: "
                 f"{'allowed' if got[c] else 'denied'}" for c in cells
                 if got[c] != DENY_X.expect(c)]
        if until():
            return seen
    pytest.fail(f"condition not reached in {timeout:.0f}s; deviations: {seen}")


def test_felix_restart_opens_nothing(bed: Bed) -> None:
    """Felix stopped and started again: its rules stay in force meanwhile (fail closed)."""
    policies = apply_case(bed, DENY_X)
    try:
        check(bed, DENY_X)
        for node, name in terway_pods(bed.cluster).items():
            restarts = _policy_restarts(bed.cluster, name)
            bed.cluster.kubectl("-n", "kube-system", "exec", name, "-c", "policy", "--",
                                "bash", "-c", "kill -TERM 1")
            deviations = watch_cells(bed, lambda n=name, r=restarts: _policy_ready_again(
                bed.cluster, n, r), 120)
            assert not deviations, f"while Felix restarted on {node}: {deviations}"
        check(bed, DENY_X)
    finally:
        remove(bed, policies)


def _policy_status(cluster: Cluster, pod: str) -> dict[str, Any]:
    status = json.loads(cluster.kubectl("-n", "kube-system", "get", "pod", pod, "-o",
                                        "json").stdout)["status"]
    return dict(next(s for s in status["containerStatuses"] if s["name"] == "policy"))


def _policy_restarts(cluster: Cluster, pod: str) -> int:
    return int(_policy_status(cluster, pod)["restartCount"])


def _policy_ready_again(cluster: Cluster, pod: str, restarts: int) -> bool:
    s = _policy_status(cluster, pod)
    return int(s["restartCount"]) > restarts and bool(s.get("ready"))


def test_api_server_gone_keeps_the_rules(bed: Bed) -> None:
    """The API server frozen for 20 s (SIGSTOP: connections hang, as when it is unreachable):
    every cell keeps its state, denied and allowed; then it comes back."""
    policies = apply_case(bed, DENY_X)
    apiserver = next(p for p in bed.cluster.control.procs if p.name == "kube-apiserver")
    try:
        check(bed, DENY_X)
        cells = sample_cells(bed)
        os.kill(apiserver.pid, signal.SIGSTOP)
        try:
            deadline, deviations = time.monotonic() + 20, []
            while time.monotonic() < deadline:
                got = bed.probe([c for c in cells if not c.client.startswith(("x/", "y/", "z/"))])
                deviations += [f"{c.client}->{c.server}" for c, ok in got.items()
                               if ok != DENY_X.expect(c)]
                time.sleep(1)
        finally:
            os.kill(apiserver.pid, signal.SIGCONT)
        assert not deviations, f"while the API server was gone: {deviations}"
        check(bed, DENY_X)
    finally:
        remove(bed, policies)


def test_disabled_policy_lets_everything_through(bed: Bed) -> None:
    """disable_network_policy "true": the same pods, under deny-all policies in x and y, reach
    each other freely, and Felix's chains are gone from every node."""
    deny = [np("deny", n, {}, types=["Ingress", "Egress"]) for n in ("x", "y")]
    for p in deny:
        apply(bed.cluster, json.dumps(p))
    try:
        check(bed, Case("deny-both", lambda w: [], lambda c: (
            ns(c.client) not in ("x", "y") and (ns(c.server) not in ("x", "y") or own_node(c)))))
        set_policy_enabled(bed.cluster, False)
        check(bed, Case("disabled", lambda w: [], lambda c: True, ALL_PORTS))
        for i in range(bed.cluster.nodes):
            saved = _node_run(bed.cluster, i, ["iptables-nft-save"])
            assert "cali-" not in saved, f"node {i} keeps Felix's chains:\n{saved[:2000]}"
    finally:
        remove(bed, deny)       # policy stays off: the test bed's default, restored


def _node_run(cluster: Cluster, index: int, argv: list[str]) -> str:
    import subprocess

    proc = subprocess.run(cluster.node(index).enter(argv), capture_output=True, text=True,
                          timeout=60, check=True)
    return proc.stdout

