"""Fixtures: runtimes prepared once per session; per test, one emulated node with terwayd in it.

The node comes from emulator.fabric.testbed.NodeBed (emulator served on 127.0.0.1, fabric on,
terwayd started by ``ip netns exec <node>`` with its own socket). The CNI network
``terway-e2e`` (/etc/cni/net.d/terway-e2e.conflist) points at that socket; it is removed, with
every labelled container, before the node goes down.
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from emulator.fabric.testbed import NodeBed
from tests.e2e import runtime_setup as rs
from tests.e2e.runtimes import CONFLIST, Podman, write_conflist

T = TypeVar("T")


def _can_prepare() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("apt-get") is None and rs.missing_packages():
        return f"runtimes missing and no apt-get: {rs.missing_packages()}"
    return None


def _prepare(step: Callable[[], T]) -> T:
    why = _can_prepare()
    if why is not None:
        if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
            pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but runtimes cannot be prepared: {why}")
        pytest.skip(why)
    try:
        return step()
    except rs.RuntimeSetupError as exc:
        pytest.fail(f"runtime setup failed: {exc}")


@pytest.fixture(scope="session")
def podman_ready() -> Path:
    """Podman with the CNI backend and the busybox image; returns the containers.conf in use."""
    def step() -> Path:
        rs.ensure_podman()
        return rs.CONTAINERS_CONF
    return _prepare(step)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker client; dockerd started here (and stopped at the end) if none was running."""
    engine = _prepare(rs.ensure_docker)
    import docker

    client = docker.DockerClient(base_url=f"unix://{rs.DOCKER_SOCK}")
    try:
        yield client
    finally:
        client.close()
        engine.stop()


@pytest.fixture
def bed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeBed]:
    """A fresh emulated node (own seed, so own ids) with terwayd running; conflist written."""
    seed = 8000 + zlib.crc32(request.node.name.encode()) % 1000
    node = NodeBed(tmp_path / "node", seed=seed, vswitch_cidr="10.88.1.0/28").up()
    try:
        node.start_daemon()
        write_conflist(node)
        yield node
    finally:
        print(f"terwayd log tail (shown by pytest on failure):\n{node.log_tail(60)}")
        CONFLIST.unlink(missing_ok=True)
        node.down()


@pytest.fixture
def podman(podman_ready: Path, bed: NodeBed) -> Iterator[Podman]:
    """podman in the node's netns, with the plain plugin; labelled containers removed."""
    runtime = Podman(bed.node)
    try:
        yield runtime
    finally:
        runtime.remove_all()
