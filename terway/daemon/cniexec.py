"""ExecCNI: run the Python plugin in-process for the native plugin front (terway/cni/shim.c).

A runtime executes the plugin once per pod; starting CPython costs more than a Go plugin's whole
ADD, so the installed ``terway`` is a small native program that hands the CNI env and stdin to
this daemon, which is already warm. Here they go through ``terway.cni.main.run`` - the very
code the Python plugin runs - in a worker thread, and its calls to the daemon come back to this
server's own request handler (same decoding, checks, logging and metrics as over the socket),
without a socket or a process. Its (exit code, stdout, stderr) goes back to the native front.

A netconf naming another daemon's socket is served by that daemon, as the Python plugin would.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import os
from collections.abc import Callable, Coroutine
from typing import Any

from terway import rpc
from terway.cni import main as plugin, wire

MAX_WORKERS = 64  # CNI commands in flight at once; an ADD may wait minutes for the cloud

LineHandler = Callable[[bytes], Coroutine[Any, Any, bytes]]


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
    """Runs ExecCNI requests; ``handle_line`` is the RPC server's own request handler."""

    def __init__(self, socket_path: str, handle_line: LineHandler) -> None:
        self.socket_path = os.path.abspath(socket_path)
        self.handle_line = handle_line
        self._pool = concurrent.futures.ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="cni")

    async def run(self, req: rpc.ExecCNIRequest) -> rpc.ExecCNIReply:
        environ, stdin = decode_env(req.env), _b64(req.stdin, "stdin")
        loop = asyncio.get_running_loop()
        code, out, err = await loop.run_in_executor(
            self._pool, plugin.run, environ, stdin, self._caller(loop))
        return rpc.ExecCNIReply(exit=code, stdout=_b64_text(out), stderr=_b64_text(err))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _caller(self, loop: asyncio.AbstractEventLoop) -> plugin.Caller:
        """The plugin's ``call`` for a worker thread: this daemon through its request handler,
        any other socket over the wire."""

        def call(socket_path: str, timeout: float, method: str,
                 params: dict[str, Any]) -> dict[str, Any]:
            if os.path.abspath(socket_path) != self.socket_path:
                return wire.call(socket_path, timeout, method, params)
            line = wire.dumps({"v": wire.PROTOCOL_VERSION, "method": method, "params": params})
            future = asyncio.run_coroutine_threadsafe(self.handle_line(line.encode()), loop)
            try:
                reply = future.result(timeout)
            except TimeoutError:  # like the socket client: the daemon may still finish it
                raise rpc.RpcError(rpc.ERR_TIMEOUT, rpc.CLASS_TRANSIENT,
                                   f"{method}: no reply from terway daemon within {timeout:g}s"
                                   ) from None
            return wire.decode_result(method, reply.rstrip(b"\n"))

        return call
