"""Work inside a network namespace without forking.

pyroute2's ``IPRoute(netns=...)`` forks a child per socket (~13 ms). A netlink socket belongs to
the namespace of the thread that created it, so we create it in a short-lived thread that has
called ``setns(2)`` and hand the file descriptor to ``IPRoute(fileno=...)`` (~1 ms). The same
trick writes ``/proc/sys/net`` sysctls of another namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pyroute2 import IPRoute

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"
NETLINK_ROUTE = 0
T = TypeVar("T")

_libc: ctypes.CDLL | None = None


class NetnsGone(FileNotFoundError):
    """The namespace file does not exist (any more): the pod sandbox is gone."""


def netns_path(netns: str) -> str:
    """A bare name means ``/var/run/netns/<name>`` (like ``ip netns``); a path is used as is."""
    return netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)


def netns_exists(netns: str | None) -> bool:
    """The namespace exists *as this process sees it*: a file on nsfs (the same device as our
    own ``/proc/self/ns/net``). A sandbox bind-mounted in another mount namespace (a runtime
    under ``ip netns exec``) is only a plain file here: nothing of ours can be inside it."""
    if netns is None:
        return True
    try:
        return os.stat(netns_path(netns)).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def _setns(fd: int) -> None:
    try:
        _raw_setns(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        raise OSError(exc.errno, _not_a_netns_message(fd)) from None


def _raw_setns(fd: int) -> None:
    global _libc
    setns = getattr(os, "setns", None)  # Python >= 3.12
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _not_a_netns_message(fd: int) -> str:
    """EINVAL from setns means the file is not a netns *as this process sees it*: typically a
    sandbox bind-mounted in another mount namespace (e.g. a runtime under ``ip netns exec``)."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        path = f"fd {fd}"
    return (f"{path} is not a network namespace this daemon can see (setns: EINVAL); "
            "is CNI_NETNS a bind mount made in another mount namespace?")


def open_netns(netns: str) -> int:
    """Open a namespace file for ``setns`` / ``net_ns_fd``; NetnsGone when it does not exist."""
    path = netns_path(netns)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsGone(f"network namespace {path} does not exist") from None


def run_in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a fresh thread switched into ``netns`` (None: the caller's namespace)."""
    if netns is None:
        return fn()
    fd = open_netns(netns)
    box: dict[str, object] = {}

    def worker() -> None:
        try:
            _setns(fd)
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    try:
        thread = threading.Thread(target=worker, name="netns-worker", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _netlink_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)


@contextmanager
def iproute(netns: str | None) -> Iterator[IPRoute]:
    """An ``IPRoute`` bound to ``netns`` (None: the daemon's own namespace)."""
    if netns is None:
        ipr = IPRoute()
    else:
        sock = run_in_netns(netns, _netlink_socket)
        ipr = IPRoute(fileno=sock.detach())
    try:
        yield ipr
    finally:
        ipr.close()


def sysctl_path(key: str) -> str:
    """The file of ``net.*`` sysctl ``key``. In a container /proc/sys is read-only unless the
    container is privileged; the DaemonSet instead mounts the host's /proc/sys/net read-write
    at ``$TERWAY_PROC_SYS/net`` (a sysctl file under /proc/sys/net answers for the network
    namespace of the thread that opens it, so the same mount serves the node and every pod)."""
    return os.environ.get("TERWAY_PROC_SYS", "/proc/sys") + "/" + key.replace(".", "/")


def write_sysctl(netns: str | None, key: str, value: str) -> None:
    """Write ``net.*`` sysctl ``key`` (dotted, e.g. ``net.ipv4.ip_forward``) inside ``netns``."""
    write_sysctls(netns, {key: value})


def write_sysctls(netns: str | None, values: dict[str, str]) -> None:
    """Write several sysctls in one trip into ``netns``; unchanged values are not rewritten."""

    def write() -> None:
        for key, value in values.items():
            with open(sysctl_path(key), "r+", encoding="ascii") as fh:
                if fh.read().strip() != value:
                    fh.seek(0)
                    fh.write(value)

    run_in_netns(netns, write)


def read_sysctl(netns: str | None, key: str) -> str:
    path = sysctl_path(key)

    def read() -> str:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()

    return run_in_netns(netns, read)
