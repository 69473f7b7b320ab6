"""ExecCNI: run the Python plugin in-process for the native plugin front (terway/cni/shim.c).

A runtime executes the plugin once per pod; starting CPython costs more than a Go plugin's whole
ADD, so the installed ``terway`` is a small native program that hands the CNI env and stdin to
this daemon, which is already warm. Here they go through ``terway.cni.main.run`` - the very
code the Python plugin runs - in a worker thread, and its calls to the daemon come back to this
server's own request handler (same decoding, checks, logging and metrics as over the socket),
without a socket or a process. Its (exit code, stdout, stderr) goes back to the native front.

A netconf naming another daemon's socket is served by that daemon, as the Python plugin would.

Two lanes: ADDs (which may wait minutes for the cloud) run in their own worker pool, so DEL,
CHECK, STATUS, GC and VERSION never queue behind them. An ADD's allocation budget
(``--alloc-timeout``) starts when its ExecCNI request arrives, not when a worker takes it: time
spent waiting for a worker is taken from it, so an ADD never outlives ``--alloc-timeout`` by more
than its datapath setup.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from terway.cni import main as plugin
from terway.rpc import cnicodec as wire, messages as rpc

ADD_WORKERS = 64    # ADDs in flight at once; an ADD may wait minutes for the cloud
OTHER_WORKERS = 16  # DEL, CHECK, STATUS, GC, VERSION: short, and never behind an ADD

# The server's request handler: (request line, deadline on ``now``'s clock or None) → reply line
LineHandler = Callable[[bytes, "float | None"], Coroutine[Any, Any, bytes]]


def decode_env(data: str) -> dict[str, str]:
    """base64 of NUL-terminated ``KEY=VALUE`` entries → the environment the plugin sees."""
    env: dict[str, str] = {}
    for entry in _b64(data, "env").split(b"\0"):
        if not entry:
            continue
        key, sep, value = entry.partition(b"=")
        if not sep:
            raise rpc.invalid(f"params.env: entry without '=': {entry[:40]!r}")
        env[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return env


def _b64(data: str, field: str) -> bytes:
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise rpc.invalid(f"params.{field}: not base64: {exc}") from None


def _b64_text(text: str) -> str:
    return binascii.b2a_base64(text.encode("utf-8", "surrogateescape"), newline=False).decode()


class CniExecutor:
    """Runs ExecCNI requests; ``handle_line`` is the RPC server's own request handler.

    ``add_budget`` (seconds on ``now``'s clock) is the allocation budget of an ADD from its
    arrival; None leaves it to the daemon's default.
    """

    def __init__(self, socket_path: str, handle_line: LineHandler, *,
                 now: Callable[[], float] = time.monotonic,
                 add_budget: float | None = None) -> None:
        self.socket_path = os.path.abspath(socket_path)
        self.handle_line = handle_line
        self.now = now
        self.add_budget = add_budget
        self._adds = concurrent.futures.ThreadPoolExecutor(ADD_WORKERS,
                                                           thread_name_prefix="cni-add")
        self._others = concurrent.futures.ThreadPoolExecutor(OTHER_WORKERS,
                                                             thread_name_prefix="cni")

    async def run(self, req: rpc.ExecCNIRequest) -> rpc.ExecCNIReply:
        environ, stdin = decode_env(req.env), _b64(req.stdin, "stdin")
        is_add = environ.get("CNI_COMMAND") == "ADD"
        deadline = self.now() + self.add_budget if is_add and self.add_budget else None
        loop = asyncio.get_running_loop()
        code, out, err = await loop.run_in_executor(
            self._adds if is_add else self._others, plugin.run, environ, stdin,
            self._caller(loop, deadline))
        return rpc.ExecCNIReply(exit=code, stdout=_b64_text(out), stderr=_b64_text(err))

    def close(self) -> None:
        for pool in (self._adds, self._others):
            pool.shutdown(wait=False, cancel_futures=True)

    def _caller(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> plugin.Caller:
        """The plugin's ``call`` for a worker thread: this daemon through its request handler
        (with the ADD's deadline), any other socket over the wire."""

        def call(socket_path: str, timeout: float, method: str,
                 params: dict[str, Any]) -> dict[str, Any]:
            if os.path.abspath(socket_path) != self.socket_path:
                return wire.call(socket_path, timeout, method, params)
            line = wire.dumps({"v": wire.PROTOCOL_VERSION, "method": method, "params": params})
            future = asyncio.run_coroutine_threadsafe(
                self.handle_line(line.encode(), deadline), loop)
            try:
                reply = future.result(timeout)
            except TimeoutError:  # like the socket client: the daemon may still finish it
                raise rpc.RpcError(rpc.ERR_TIMEOUT, rpc.CLASS_TRANSIENT,
                                   f"{method}: no reply from terway daemon within {timeout:g}s"
                                   ) from None
            return wire.decode_result(method, reply.rstrip(b"\n"))

        return call
