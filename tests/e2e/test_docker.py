"""Docker engine containers wired by the ``terway`` plugin, the way CNI test suites wire docker.

The engine has no CNI: a container starts with ``--network none`` (only ``lo``), then the plugin
is executed in the node's netns with ``CNI_NETNS=/proc/<pid>/ns/net`` from ``docker inspect``,
exactly as a CNI runtime would; DEL before the container goes (or after, when the netns is gone).
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from emulator.fabric.testbed import CniOutcome, MappingRow, NodeBed
from tests.e2e import runtime_setup as rs
from tests.e2e.runtimes import LABEL, Podman, cni_exec, eth0_ipv4
from tests.e2e.waiting import wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]


@dataclass
class DockerPod:
    container: Any   # docker.models.containers.Container
    netns: str
    outcome: CniOutcome

    @property
    def name(self) -> str:
        return str(self.container.name)

    @property
    def ip(self) -> str:
        assert self.outcome.ip is not None, self.outcome.out
        return self.outcome.ip

    def sh(self, *cmd: str) -> tuple[int, str]:
        code, out = self.container.exec_run(list(cmd))
        return int(code), out.decode(errors="replace")

    def ping(self, target: str) -> bool:
        return self.sh("ping", "-c", "1", "-W", "3", target)[0] == 0


@pytest.fixture
def docker_pods(docker_client: Any, bed: NodeBed) -> Iterator[Callable[[str], DockerPod]]:
    """Factory: a ``--network none`` container + CNI ADD; teardown runs DEL, then removes it."""
    made: list[DockerPod] = []

    def make(name: str) -> DockerPod:
        container = docker_client.containers.run(
            rs.IMAGE, ["sleep", "600"], name=f"{name}-{bed.seed}", network_mode="none",
            labels={LABEL: "1"}, detach=True)
        container.reload()
        netns = f"/proc/{container.attrs['State']['Pid']}/ns/net"
        pod = DockerPod(container, netns, cni_exec(bed, "ADD", container.id, netns,
                                                   container.name))
        made.append(pod)
        return pod

    try:
        yield make
    finally:
        for pod in made:
            cni_exec(bed, "DEL", pod.container.id, pod.netns, pod.name)
            with contextlib.suppress(docker.errors.NotFound):
                pod.container.remove(force=True)


def row_for(bed: NodeBed, address: str, status: str) -> MappingRow | None:
    return next((r for r in bed.mapping() if r.ip == address and r.status == status), None)


def test_docker_container_gets_a_vswitch_address_and_reaches_gateway_and_node(
        docker_pods: Callable[[str], DockerPod], bed: NodeBed) -> None:
    vsw = bed.cloud.get_vswitch(bed.vswitch_id)
    pod = docker_pods("dk-a")
    assert pod.outcome.ok, f"ADD: {pod.outcome.msg}\n{pod.outcome.stderr}"
    assert ipaddress.IPv4Address(pod.ip) in ipaddress.IPv4Network(vsw.cidr_block)
    code, out = pod.sh("ip", "-4", "-o", "addr", "show", "dev", "eth0")
    assert code == 0 and eth0_ipv4(out) == pod.ip, out
    assert pod.ping(vsw.gateway), f"cannot reach the vSwitch gateway {vsw.gateway}"
    assert pod.ping(bed.cloud.get_instance(bed.node).primary_ip), "cannot reach the node"
    row = wait_for(f"Normal row for {pod.ip}", lambda: row_for(bed, pod.ip, "Normal"))
    assert row.pod.rsplit("/", 1)[-1] == pod.name


def test_two_docker_containers_ping_each_other_and_del_frees_the_address(
        docker_pods: Callable[[str], DockerPod], bed: NodeBed) -> None:
    a, b = docker_pods("dk-a"), docker_pods("dk-b")
    assert a.outcome.ok and b.outcome.ok, (a.outcome.msg, b.outcome.msg)
    assert a.ip != b.ip
    assert a.ping(b.ip) and b.ping(a.ip), f"{a.ip} <-> {b.ip} not reachable"
    gone = cni_exec(bed, "DEL", b.container.id, b.netns, b.name)
    assert gone.ok, gone.msg
    wait_for(f"{b.ip} Idle after DEL", lambda: row_for(bed, b.ip, "Idle"))
    code, out = b.sh("ip", "-o", "link", "show")
    assert code == 0 and "eth0" not in out, f"DEL left eth0 in the container:\n{out}"
    assert not a.ping(b.ip), f"{b.ip} still answers after DEL"


def test_del_after_the_container_is_gone_still_frees_the_address(
        docker_pods: Callable[[str], DockerPod], bed: NodeBed) -> None:
    """A runtime that lost the sandbox (crash, docker rm) still sends DEL: it must succeed."""
    pod = docker_pods("dk-gone")
    assert pod.outcome.ok, pod.outcome.msg
    pod.container.remove(force=True)
    gone = cni_exec(bed, "DEL", pod.container.id, pod.netns, pod.name)
    assert gone.ok, f"DEL with the netns gone: {gone.msg}"
    wait_for(f"{pod.ip} Idle", lambda: row_for(bed, pod.ip, "Idle"))


def test_docker_and_podman_containers_on_one_node_reach_each_other(
        docker_pods: Callable[[str], DockerPod], podman: Podman, bed: NodeBed) -> None:
    dk = docker_pods("dk-x")
    assert dk.outcome.ok, dk.outcome.msg
    name = podman.start("pm-x")
    out = podman.exec(name, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    pm_ip = eth0_ipv4(out)
    assert pm_ip is not None and pm_ip != dk.ip, out
    assert dk.ping(pm_ip), f"docker {dk.ip} cannot reach podman {pm_ip}"
    assert podman.exec(name, "ping", "-c", "1", "-W", "3", dk.ip, check=False).returncode == 0


def test_check_passes_on_a_wired_container_and_fails_once_its_eth0_is_gone(
        docker_pods: Callable[[str], DockerPod], bed: NodeBed) -> None:
    pod = docker_pods("dk-check")
    assert pod.outcome.ok, pod.outcome.msg
    args = (bed, "CHECK", pod.container.id, pod.netns, pod.name)
    ok = cni_exec(*args, prev_result=pod.outcome.out)
    assert ok.ok, f"CHECK on a healthy container: {ok.msg}"
    subprocess.run(["nsenter", f"--net={pod.netns}", "ip", "link", "del", "eth0"], check=True)
    broken = cni_exec(*args, prev_result=pod.outcome.out)
    assert not broken.ok, f"CHECK missed the deleted eth0: {broken.out}"
