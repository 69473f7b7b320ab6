"""The unix-socket RPC server: CNI methods (terway/rpc/messages.py) and terway-cli's
``Admin.*`` methods (terway/rpc/admin.py).

The socket is created with mode 0600 inside a 0700 directory: only root may ask for addresses.
A stale socket file left by a killed daemon is replaced (the lock file proves nobody serves it).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from terway.daemon import logfmt
from terway.daemon.cniexec import CniExecutor
from terway.daemon.metrics import Metrics, error_label
from terway.daemon.service import PodService
from terway.rpc import admin, messages

log = logfmt.get("server")
AdminHandler = Callable[[str, Any], Awaitable[Any]]


class RpcServer:
    def __init__(self, service: PodService, admin_handler: AdminHandler,
                 metrics: Metrics | None = None) -> None:
        self.service = service
        self.admin_handler = admin_handler
        self.metrics = metrics
        self._server: asyncio.AbstractServer | None = None
        self._cni: CniExecutor | None = None

    async def start(self, socket_path: str) -> None:
        path = Path(socket_path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.is_socket():
            path.unlink()           # a stale socket of ours (the lock says nobody serves it)
        elif path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, "refusing to replace it: not a socket "
                                  "(--socket must name a socket or nothing)", str(path))
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._connection, path=str(path), limit=messages.MAX_MESSAGE + 1)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._cni = CniExecutor(str(path), self.handle_line, now=self.service.driver.clock.now,
                                add_budget=self.service.alloc_timeout)
        log.info("serving", extra=logfmt.fields(socket=str(path)))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._cni is not None:
            self._cni.close()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    writer.write(messages.encode_error(messages.invalid(
                        f"request: larger than {messages.MAX_MESSAGE} bytes")))
                    break
                if not line:
                    break
                writer.write(await self.handle_line(line.rstrip(b"\n")))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle_line(self, line: bytes, deadline: float | None = None) -> bytes:
        """One request line → its reply line. ``deadline`` (on the driver's clock) bounds an
        AllocIP from ExecCNI, whose budget started when the ADD arrived."""
        method = admin.peek_method(line)
        if method is not None:
            try:
                _, request = admin.decode_request(line)
                return admin.encode_reply(await self.admin_handler(method, request))
            except messages.RpcError as exc:
                return messages.encode_error(exc)
            except Exception as exc:
                log.error("admin request failed", exc_info=True)
                return messages.encode_error(messages.RpcError(
                    messages.ERR_INTERNAL, messages.CLASS_FATAL, f"{type(exc).__name__}: {exc}"))
        dispatch = functools.partial(self._dispatch, deadline=deadline)
        return await messages.handle_line(line, dispatch)

    async def _dispatch(self, method: str, request: Any, deadline: float | None = None) -> Any:
        started = time.monotonic()
        error = ""
        try:
            return await self._call(method, request, deadline)
        except messages.RpcError as exc:
            error = exc.code
            log.warning("rpc failed", extra=logfmt.fields(method=method, code=exc.code,
                                                          error=exc.message))
            raise
        except Exception as exc:
            error = type(exc).__name__
            log.error("rpc failed", exc_info=True, extra=logfmt.fields(method=method))
            raise
        finally:
            if self.metrics is not None:
                self.metrics.rpc_latency.labels(method, error_label(error)).observe(
                    (time.monotonic() - started) * 1000)

    async def _call(self, method: str, request: Any, deadline: float | None) -> Any:
        s = self.service
        match method:
            case "AllocIP":
                return await s.alloc(request, deadline=deadline)
            case "ReleaseIP":
                return await s.release(request)
            case "GetIPInfo":
                return await s.get_ip_info(request)
            case "RecordEvent":
                return await s.record_event(request)
            case "Status":
                return s.status()
            case "GC":
                return await s.gc(request)
            case "ExecCNI" if self._cni is not None:
                return await self._cni.run(request)
        raise messages.RpcError(messages.ERR_UNKNOWN_METHOD, messages.CLASS_INVALID,
                           f"unknown method {method!r}")
