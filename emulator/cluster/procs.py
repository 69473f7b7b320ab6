"""Processes of the test bed: started inside a node's namespaces, logged, waited for, stopped.

Every component (etcd, the API server, kubelet, containerd …) is an upstream program run as a
child of the test bed with its output in ``<workdir>/logs/<name>.log``. ``wait_until`` turns a
component that never becomes ready into a ``ClusterError`` that names it and shows its log tail,
so a failed bring-up says *which* part did not come up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class ClusterError(RuntimeError):
    """Bring-up or teardown failed; the message names the component and shows its log tail."""


@dataclass
class Proc:
    """One running component."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``grace`` seconds."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


TAG = "TERWAY_TESTBED"      # every component's environment names its cluster's workdir


def spawn(name: str, argv: Sequence[str], logs: Path, env: dict[str, str] | None = None) -> Proc:
    """Start ``argv`` in a session of its own, output appended to ``logs/<name>.log``.

    ``env`` should carry ``TAG=<workdir>`` (``tag_env``): it is how ``tagged`` finds the
    processes of a cluster whose own process died."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 env={**os.environ, **(env or {})})
    return Proc(name, popen, log)


def wait_until(proc: Proc | None, what: str, ready: Callable[[], bool], timeout: float,
               interval: float = 0.5) -> None:
    """Poll ``ready()`` until true; raise ``ClusterError`` naming ``what`` on exit or timeout."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise ClusterError(f"{what}: {proc.name} exited with code {proc.popen.returncode}; "
                               f"log {proc.log}:\n{proc.tail()}")
        try:
            if ready():
                return
        except Exception as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(interval)
    tail = f"; log {proc.log}:\n{proc.tail()}" if proc is not None else ""
    raise ClusterError(f"{what} did not come up within {timeout:.0f} s"
                       f"{f' (last probe: {last_error})' if last_error else ''}{tail}")


def tag_env(workdir: Path) -> dict[str, str]:
    return {TAG: str(workdir)}


def tagged(workdir: Path) -> list[int]:
    """Processes started for the cluster in ``workdir`` (found by their environment)."""
    needle = f"{TAG}={workdir}".encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry}/environ").read_bytes():
                    found.append(int(entry))
    return found


def pids_in_mount_ns(ns_inode: str) -> list[int]:
    """Every process whose mount namespace is ``ns_inode`` (``mnt:[…]``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{entry}/ns/mnt") == ns_inode:
                found.append(int(entry))
    return found


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
