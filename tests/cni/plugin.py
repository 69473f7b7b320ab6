"""Run the real ``terway`` plugin as a runtime would: env + stdin in, JSON + exit code out.

Two forms of the plugin exist (terway/cni/launcher.py ``write_plugin``): the Python plugin, and
the native front that hands the command to the daemon (ExecCNI) and falls back to the Python
plugin. ``use(kind)`` picks the one ``run`` executes by default.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_PLUGIN = [sys.executable, "-m", "terway.cni"]
_default: list[list[str]] = [PYTHON_PLUGIN]


def use(argv: list[str]) -> None:
    """Make ``run`` execute ``argv`` unless told otherwise."""
    _default[0] = argv


def netconf(socket_path: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "terway",
        "type": "terway",
        "daemon_socket": socket_path,
        **extra,
    }


def cni_env(command: str, netns: str = "/var/run/netns/x", **over: str) -> dict[str, str]:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
        "K8S_POD_INFRA_CONTAINER_ID=c0ffee",
        "CNI_PATH": "/opt/cni/bin",
    }
    env.update(over)
    return {k: v for k, v in env.items() if v is not None}


def run(
    env: dict[str, str], stdin: bytes | dict[str, Any], argv: list[str] | None = None
) -> tuple[int, Any, str]:
    """(exit code, parsed stdout or None, stderr)."""
    data = json.dumps(stdin).encode() if isinstance(stdin, dict) else stdin
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": ROOT, **env}
    proc = subprocess.run(
        argv or _default[0],
        input=data,
        env=full_env,
        capture_output=True,
        timeout=60,
    )
    out = proc.stdout.decode()
    return proc.returncode, json.loads(out) if out.strip() else None, proc.stderr.decode()


@contextmanager
def misbehaving_daemon(path: str, answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A unix socket at ``path`` whose every connection (the native front's, then its
    fallback's) gets ``answer(conn)`` and is closed; yields ``path``."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                answer(conn)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield path
    finally:
        srv.close()
