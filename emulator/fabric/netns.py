"""Thin, synchronous helpers over iproute2 and setns(2): the fabric's only contact with the kernel.

``ip`` as a subprocess rather than pyroute2: every operation is one readable command that a person
can replay by hand when debugging a fabric, and iproute2's netns handling (``-n``, bind mounts in
/var/run/netns) is the reference implementation. The cost (~2 ms per call) is irrelevant next to
the cloud API calls that trigger it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class FabricError(RuntimeError):
    """A fabric operation failed; the message names the command or the resource."""


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    """Run ``ip [-n ns] args…``; return stdout, raise FabricError (with stderr) on failure."""
    cmd = ["ip", *(("-n", ns) if ns else ()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise FabricError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_list() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def netns_add(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def netns_delete(name: str) -> bool:
    """Delete a netns if present (idempotent); True when something was removed."""
    if not netns_exists(name):
        return False
    ip("netns", "delete", name, check=False)
    return True


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise FabricError(f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the block with the *calling thread* inside netns ``name``, then come back.

    setns(2) on CLONE_NEWNET is per thread, so other threads of the emulator are unaffected.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def listening_socket(name: str, addr: str, port: int) -> socket.socket:
    """A TCP socket listening on ``addr:port`` *inside* netns ``name``, usable from any thread.

    A socket belongs to the netns it was created in, so the fabric's proxies can accept
    connections in the router namespace while connecting upstream from the root namespace.
    """
    with entered(name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise FabricError(f"cannot listen on {addr}:{port} in netns {name}: {exc}") from exc
    return sock


def write_sysctls(name: str, values: dict[str, str]) -> None:
    """Write ``/proc/sys/<key with dots as slashes>`` inside netns ``name`` (no fork needed)."""
    with entered(name):
        for key, value in values.items():
            Path("/proc/sys", *key.split(".")).write_text(value)


def link_names(ns: str) -> list[str]:
    """Interface names in a netns (without the ``@peer`` suffix)."""
    out = ip("-o", "link", "show", ns=ns)
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def ip_batch(lines: list[str], ns: str | None = None, *, force: bool = False) -> None:
    """Run several ``ip`` commands in one process (``ip -batch -``).

    Stops at the first error unless ``force`` (then every line runs and errors are only logged:
    used for removals that may already have happened, e.g. with the link).
    """
    if not lines:
        return
    cmd = ["ip", *(("-n", ns) if ns else ()), *(("-force",) if force else ()), "-batch", "-"]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0 and not force:
        raise FabricError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()} (batch: {lines})")
