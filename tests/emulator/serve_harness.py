"""Support for tests that drive a real ``terway-emulator serve`` subprocess (no tests here).

``served(world)`` starts ``serve`` on a free port with the world file, asynchronous attach and
detach (``ATTACH_DELAY`` each, so clients wait for ``InUse``/``Available`` as on ECS), waits for
the health probe, and yields a ``Served`` with the ids of what the world built (read from the
control API's snapshot). SIGTERM on exit; the process's stderr (logfmt) is kept in ``logs``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "cn-hangzhou"
ZONE = "cn-hangzhou-h"
ATTACH_DELAY = "0.2"
INSTANCE_TYPE = "ecs.g6.26xlarge"  # 15 ENIs: a failed test's leftovers do not block the next
PODS_CIDR, TINY_CIDR = "192.168.1.0/24", "192.168.9.0/29"
WORLD = f"""
seed: 21
vpcs:
  - name: main
    cidr: 192.168.0.0/16
    vswitches:
      - {{name: pods, zone: {ZONE}, cidr: {PODS_CIDR}}}
      - {{name: tiny, zone: {ZONE}, cidr: {TINY_CIDR}}}
    security_groups:
      - {{name: default}}
instances:
  - {{name: node, type: {INSTANCE_TYPE}, vswitch: pods}}
"""


def command() -> list[str]:
    exe = shutil.which("terway-emulator")
    return [exe] if exe else [sys.executable, "-m", "emulator.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``serve``: its URL, the ``host:port`` SDKs take, and the world's ids."""

    url: str
    proc: subprocess.Popen[str]
    vswitches: dict[str, str] = field(default_factory=dict)    # CIDR → vSwitch id
    security_group: str = ""
    instance: str = ""
    logs: str = ""

    @property
    def endpoint(self) -> str:
        return self.url.removeprefix("http://")

    def control(self, method: str, name: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator/{name}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = self.control("GET", "snapshot")
        return snap


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"{url}/_emulator/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("serve did not become healthy")


@contextmanager
def served(world: str = WORLD, *args: str) -> Iterator[Served]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "world.yaml")
        path.write_text(world)
        port = free_port()
        proc = subprocess.Popen(
            [*command(), "serve", "--port", str(port), "--world", str(path),
             "--attach-delay", ATTACH_DELAY, "--detach-delay", ATTACH_DELAY, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        srv = Served(f"http://127.0.0.1:{port}", proc)
        try:
            wait_healthy(srv.url, proc)
            snap = srv.snapshot()
            srv.vswitches = {v["cidr_block"]: v["vswitch_id"] for v in snap["vswitches"]}
            [sg] = snap["security_groups"]
            [inst] = snap["instances"]
            srv.security_group, srv.instance = sg["security_group_id"], inst["instance_id"]
            yield srv
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
            srv.logs = proc.stderr.read() if proc.stderr else ""
