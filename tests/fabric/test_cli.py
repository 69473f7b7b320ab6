"""``terway-emulator serve --fabric netns`` and ``fabric up|down`` as users run them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.fabric import probe
from emulator.fabric.netns import ip, netns_list

pytestmark = pytest.mark.privileged

WORLD = """\
seed: {seed}
region: cn-hangzhou
vpcs:
  - name: vpc-cli
    cidr: 10.66.0.0/16
    vswitches:
      - name: vsw-cli
        zone: cn-hangzhou-h
        cidr: 10.66.1.0/28
    security_groups:
      - name: sg-cli
instances:
  - name: node
    type: ecs.g6.2xlarge
    vswitch: vsw-cli
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fabric_namespaces(state_dir: Path) -> list[str]:
    from emulator.fabric.registry import recorded

    return [n for _, names in recorded(state_dir).values() for n in names]


def _wired(node: str) -> bool:
    """The node netns exists and its eth0 is configured (default route present)."""
    return node in netns_list() and bool(ip("route", "show", "default", ns=node, check=False))


def _start(args: list[str], state_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TERWAY_FABRIC_STATE_DIR": str(state_dir)}
    return subprocess.Popen([sys.executable, "-m", "emulator.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_nodes(state_dir: Path, proc: subprocess.Popen[str], count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = [n for n in _fabric_namespaces(state_dir) if n.startswith("i-")]
        if len(names) >= count and all(_wired(n) for n in names):
            return names
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"emulator exited {proc.returncode}: {out}")
        time.sleep(0.2)
    pytest.fail("fabric namespaces never appeared")


@pytest.mark.parametrize("mode", ["serve", "fabric-up"])
def test_cli_brings_the_world_up_as_namespaces_and_sigterm_removes_them(
        tmp_path: Path, mode: str) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(WORLD.format(seed=4711 if mode == "serve" else 4712))
    state_dir = tmp_path / "state"
    port = str(_free_port())
    args = (["serve", "--port", port, "--world", str(world), "--fabric", "netns"]
            if mode == "serve" else ["fabric", "up", "--port", port, "--world", str(world)])
    proc = _start(args, state_dir)
    try:
        (node,) = _wait_nodes(state_dir, proc, 1)
        status, body = probe.http_get(node, "http://100.100.100.200/latest/meta-data/instance-id")
        assert (status, body.strip()) == (200, node)
        assert probe.ping(node, "10.66.1.13")   # the /28's gateway
        made = _fabric_namespaces(state_dir)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not set(made) & set(netns_list())


def test_fabric_down_cleans_up_after_a_killed_emulator(tmp_path: Path) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(WORLD.format(seed=4713))
    state_dir = tmp_path / "state"
    proc = _start(["fabric", "up", "--port", str(_free_port()), "--world", str(world)], state_dir)
    _wait_nodes(state_dir, proc, 1)
    made = _fabric_namespaces(state_dir)
    proc.kill()
    proc.wait(timeout=10)
    assert set(made) <= set(netns_list())   # a crash leaves them behind…
    down = _start(["fabric", "down"], state_dir)
    assert down.wait(timeout=30) == 0
    assert not set(made) & set(netns_list())   # …and `fabric down` removes them
