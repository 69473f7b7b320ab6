"""``kill -9`` terwayd between and during allocations; restart; nothing is lost or leaked.

The real binary runs as a subprocess against ``terway-emulator serve`` (official SDK over HTTP,
metadata at /instances/<id>/latest/meta-data/), with ``--datapath none`` (no netns here). The
world's attach delay keeps the daemon waiting in the middle of ENI creation when it is killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from terway.rpc import messages as rpc

pytestmark = pytest.mark.slow

WORLD = """
seed: 5
region: cn-hangzhou
cloud:
  attach_delay: 0.6
vpcs:
  - name: vpc
    cidr: 192.168.0.0/16
    vswitches:
      - {name: node, zone: cn-hangzhou-h, cidr: 192.168.200.0/24}
      - {name: pods, zone: cn-hangzhou-h, cidr: 192.168.0.0/24}
    security_groups:
      - name: sg
instances:
  - {name: node-1, type: ecs.g6.xlarge, vswitch: node}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(pred: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (OSError, rpc.RpcError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Bed:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "world.yaml").write_text(WORLD)
        self.emu = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--port", str(self.port),
             "--world", str(tmp / "world.yaml")],
            stdout=subprocess.DEVNULL, stderr=(tmp / "emu.log").open("w"))
        _wait(lambda: self.snapshot(), "the emulator")
        snap = self.snapshot()
        self.instance_id = snap["instances"][0]["instance_id"]
        pods = next(v for v in snap["vswitches"] if v["name"] == "pods")
        sg = snap["security_groups"][0]["security_group_id"]
        (tmp / "eni.json").write_text(json.dumps({
            "version": "1", "access_key": "LTAIemulatorAccessKey",
            "access_secret": "emulator-secret",
            "vswitches": {"cn-hangzhou-h": [pods["vswitch_id"]]},
            "security_group": sg, "max_pool_size": 5, "min_pool_size": 0}))
        self.socket = str(tmp / "run" / "eni.socket")
        self.netns = tmp / "netns"
        self.netns.mkdir()
        self.daemon: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def snapshot(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_emulator/snapshot", timeout=2) as r:
            data: dict[str, Any] = json.loads(r.read())
            return data

    def start_daemon(self) -> None:
        self.starts += 1
        log = (self.tmp / f"terwayd-{self.starts}.log").open("w")
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "terway.daemon.main", "--config", str(self.tmp / "eni.json"),
             "--cloud-endpoint", self.url,
             "--metadata-endpoint", f"{self.url}/instances/{self.instance_id}",
             "--state-dir", str(self.tmp / "state"), "--socket", self.socket,
             "--datapath", "none", "--log-level", "debug", "--seed", "1"],
            stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: rpc.RpcClient(self.socket, timeout=2).status().ready, "terwayd ready")

    def kill9(self) -> None:
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait(10)

    def stop(self) -> None:
        for p in (self.daemon, self.emu):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()

    def alloc(self, name: str, timeout: float = 60.0) -> rpc.IPInfo:
        ns = self.netns / name
        ns.touch()
        return rpc.RpcClient(self.socket, timeout=timeout).alloc_ip(rpc.AllocIPRequest(
            pod_name=name, pod_namespace="default", container_id=f"cid-{name}",
            netns=str(ns), ifname="eth0"))

    def info(self, name: str) -> rpc.IPInfo:
        return rpc.RpcClient(self.socket, timeout=10).get_ip_info(rpc.GetIPInfoRequest(
            name, "default", f"cid-{name}", "eth0"))

    def node_ips(self) -> set[str]:
        snap = self.snapshot()
        return {ip for e in snap["enis"] if e.get("instance_id") == self.instance_id
                and e.get("eni_type") != "Primary" for ip in e["private_ips"]}

    def attaching(self) -> bool:
        return any(e.get("status") == "Attaching" for e in self.snapshot()["enis"])

    def unattached_enis(self) -> list[str]:
        return [e["eni_id"] for e in self.snapshot()["enis"] if not e.get("instance_id")]


def _mapping(sock: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-m", "terway.cli.main", "--socket", sock, "mapping"],
                         capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


def test_kill_9_between_and_during_allocations_loses_nothing(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    try:
        bed.start_daemon()
        held: dict[str, str] = {}
        for name in ("p0", "p1", "p2"):
            held[name] = bed.alloc(name).pod_ip
        bed.kill9()                                    # between allocations
        bed.start_daemon()
        for name, ip in held.items():
            assert bed.info(name).pod_ip == ip

        # during an allocation: the pool is empty, so p3 makes the daemon create and attach
        # an ENI (attach takes 0.6 s); kill it while it waits for the attachment.
        for name in ("p4", "p5", "p6", "p7", "p8", "p9", "p10"):
            held[name] = bed.alloc(name).pod_ip
        failed: list[BaseException] = []
        t = threading.Thread(target=lambda: _catch(failed, bed.alloc, "p3"))
        t.start()
        _wait(lambda: bed.attaching(), "the new ENI to be attaching")
        bed.kill9()
        t.join(30)
        bed.start_daemon()
        for name, ip in held.items():
            assert bed.info(name).pod_ip == ip, name
        held["p3"] = bed.alloc("p3").pod_ip            # the CNI retries: it succeeds now

        code, out = _mapping(bed.socket)
        assert code == 0, out
        rows = [[c.strip() for c in ln.split("|")] for ln in out.splitlines()[1:]]
        mapped = [_ip_of(r[2]) for r in rows]
        assert sorted(mapped) == sorted(bed.node_ips())  # every address on the node, once
        owned = {_ip_of(r[2]) for r in rows if r[0] == "Normal"}
        assert owned == set(held.values())
        assert len(set(held.values())) == len(held)    # no address handed out twice
        assert bed.unattached_enis() == []             # no ENI leaked
    finally:
        bed.stop()


def _ip_of(res_id: str) -> str:
    return res_id[len("00:16:3e:00:00:00."):]  # Res ID is <mac>.<ip>


def _catch(into: list[BaseException], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # the daemon died under the request: expected
        into.append(exc)


@pytest.mark.parametrize("field", ["max_pool_size"])
def test_bad_config_exits_2_naming_the_field_and_touches_nothing(tmp_path: Path,
                                                                field: str) -> None:
    conf = tmp_path / "eni.json"
    conf.write_text(json.dumps({field: "many", "vswitches": []}))
    state = tmp_path / "state"
    out = subprocess.run(
        [sys.executable, "-m", "terway.daemon.main", "--config", str(conf),
         "--state-dir", str(state), "--socket", str(tmp_path / "run" / "eni.socket")],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"eni_conf.{field}" in out.stderr and "eni_conf.vswitches" in out.stderr
    assert "Traceback" not in out.stderr
    assert not state.exists() and not (tmp_path / "run").exists()
    assert os.listdir(tmp_path) == ["eni.json"]
