"""The ``aliyun/eni`` extended resource: terwayd as a kubelet device plugin (API v1beta1), so the
scheduler counts exclusive ENIs and never sends a node more ENI pods than it has ENIs for.

As upstream (``deviceplugin/eni.go``, started by ``daemon.go`` in daemon mode ENIOnly unless
``disable_device_plugin``): a gRPC server on ``<dir>/<unix time>-eni.sock`` (stale
``*-eni.sock`` sockets removed first), registered with the kubelet at ``<dir>/kubelet.sock``
(version ``v1beta1``, endpoint = the socket's name, resource ``aliyun/eni``). ``ListAndWatch``
sends ``count`` healthy devices ``eni-0`` … ``eni-<count-1>`` and sends them again every 5 s;
``Allocate`` answers one empty container response per container (the CNI plugin does the real
work); the options are empty and ``GetPreferredAllocation`` is not offered. The kubelet empties
its directory when it restarts: the socket is checked every 30 s and, once gone, served again and
registered again.

Unlike upstream (which exits when a restart or a re-registration fails), nothing here stops the
daemon: a missing directory or kubelet socket is logged and tried again (every 5 s until
registered), since pod networking does not depend on the scheduler's count. The socket is made
mode 0600 in a private directory and renamed into place, so no other user can ever connect.
grpcio is imported only when a plugin is served (exclusive mode).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from terway.daemon import logfmt
from terway.daemon.clock import Clock, RealClock
from terway.daemon.dpapi import (
    DEVICE_PLUGIN,
    KUBELET_SOCKET,
    REGISTER,
    VERSION,
    AllocateRequest,
    AllocateResponse,
    ContainerAllocateResponse,
    DevicePluginOptions,
    Empty,
    ListAndWatchResponse,
    PreStartContainerRequest,
    PreStartContainerResponse,
    RegisterRequest,
    devices,
)

log = logfmt.get()
DEFAULT_DIR = "/var/lib/kubelet/device-plugins"   # the kubelet's DevicePluginPath
RESOURCE_ENI = "aliyun/eni"
SOCKET_SUFFIX = "-eni.sock"
CHECK_PERIOD = 30.0          # upstream's watchKubeletRestart period
RETRY_PERIOD = 5.0           # not served or not registered yet: try again sooner
RESEND_PERIOD = 5.0          # ListAndWatch sends the list again this often (upstream's ticker)
REGISTER_TIMEOUT = 5.0       # upstream's dial timeout
STOP_GRACE = 1.0


class RegistrationError(Exception):
    """The kubelet could not be reached or refused the registration."""


def _grpc() -> Any:
    """grpcio, quiet: its C core logs to stderr, outside the daemon's log format."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    import grpc

    return grpc


class EniDevicePlugin:
    """One device plugin: its gRPC server, its registration and the watch for a vanished socket.
    ``check`` does one round (serve if needed, register if needed); ``run`` repeats it."""

    def __init__(self, count: int, directory: str = DEFAULT_DIR, *,
                 resource: str = RESOURCE_ENI, clock: Clock | None = None,
                 check_period: float = CHECK_PERIOD, retry_period: float = RETRY_PERIOD,
                 resend_period: float = RESEND_PERIOD,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if count < 0:
            raise ValueError(f"device count must be >= 0, got {count}")
        self.count = count
        self.resource = resource
        self.directory = Path(directory)
        # named once, as upstream: a re-served socket keeps its name
        self.socket_path = self.directory / f"{int(wall_clock())}{SOCKET_SUFFIX}"
        self.kubelet_socket = self.directory / KUBELET_SOCKET
        self.clock: Clock = clock or RealClock()
        self.check_period, self.retry_period = check_period, retry_period
        self.resend_period = resend_period
        self.registered = False
        self.registrations = 0           # successful ones, re-registrations included
        self._server: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._stop = threading.Event()   # ends this server's ListAndWatch streams
        self._lock = threading.Lock()
        self._closed = False
        self._last_error = ""

    # -- the loop (asyncio) -----------------------------------------------------------------------
    async def run(self) -> None:
        """Serve and register, then look again every period; never raises (but cancellation)."""
        while True:
            try:
                await self.check()
            except ImportError as exc:
                log.error("device plugin not served: grpcio is not installed", extra=logfmt.fields(
                    resource=self.resource, error=str(exc)))
                return
            except Exception as exc:     # a bug must not take the node's pod networking down
                log.error("device plugin check failed", extra=logfmt.fields(
                    resource=self.resource, error=f"{type(exc).__name__}: {exc}"))
            await self.clock.sleep(self.check_period if self.registered else self.retry_period)

    async def check(self) -> bool:
        """One round in a worker thread; True when served and registered."""
        return await asyncio.to_thread(self.check_blocking)

    def check_blocking(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._server is not None and not self._socket_present():
                log.info("device plugin socket removed (kubelet restarted?), serving it again "
                         "and registering again", extra=logfmt.fields(
                             socket=str(self.socket_path), resource=self.resource))
                self._stop_server()
                self.registered = False
            if self._server is None:
                try:
                    self._serve()
                except OSError as exc:
                    self._failed("device plugin not served, trying again", exc)
                    return False
                log.info("serving device plugin", extra=logfmt.fields(
                    socket=str(self.socket_path), resource=self.resource, devices=self.count))
            if not self.registered:
                try:
                    self._register()
                except RegistrationError as exc:
                    self._failed("device plugin not registered with the kubelet, trying again",
                                 exc)
                    return False
                self.registered = True
                self.registrations += 1
                self._last_error = ""
                log.info("registered device plugin with the kubelet", extra=logfmt.fields(
                    resource=self.resource, endpoint=self.socket_path.name, devices=self.count))
            return True

    def _failed(self, what: str, exc: BaseException) -> None:
        """Logged as an error the first time, as debug while the same error repeats."""
        error = str(exc)
        fields = logfmt.fields(resource=self.resource, dir=str(self.directory), error=error)
        if error != self._last_error:
            log.error(what, extra=fields)
        else:
            log.debug(what, extra=fields)
        self._last_error = error

    def close(self) -> None:
        """Stop serving and remove the socket (blocking; the loop must be cancelled first)."""
        with self._lock:
            self._closed = True
            if self._server is not None:
                self._stop_server()
                self._unlink_own_socket()
                log.info("device plugin stopped", extra=logfmt.fields(
                    socket=str(self.socket_path), resource=self.resource))

    # -- serving --------------------------------------------------------------------------------
    def _socket_present(self) -> bool:
        try:
            return stat.S_ISSOCK(os.lstat(self.socket_path).st_mode)
        except FileNotFoundError:
            return False

    def _remove_stale(self) -> None:
        """Upstream's clean-up: every ``*-eni.sock`` socket in the directory goes (ours from
        before a restart, upstream Terway's); anything that is not a socket stays."""
        for entry in os.scandir(self.directory):
            if entry.name.endswith(SOCKET_SUFFIX) and \
                    stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                try:
                    os.unlink(entry.path)
                    log.info("removed a stale device plugin socket", extra=logfmt.fields(
                        socket=entry.path))
                except OSError as exc:
                    log.warning("cannot remove a stale device plugin socket", extra=logfmt.fields(
                        socket=entry.path, error=str(exc)))

    def _serve(self) -> None:
        """Bind in a private 0700 directory, make the socket 0600, rename it into place: the
        kubelet's directory is world-readable and the socket is never reachable by others."""
        grpc = _grpc()
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory}: no such directory (is the kubelet "
                                    "running, and is this its device-plugin directory?)")
        self._remove_stale()
        private = tempfile.mkdtemp(prefix=".terway-", dir=self.directory)
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deviceplugin")
        server = grpc.server(executor)
        try:
            stop = threading.Event()
            server.add_generic_rpc_handlers((self._handlers(grpc, stop),))
            bound = os.path.join(private, "s")
            try:
                server.add_insecure_port(f"unix:{bound}")
            except RuntimeError as exc:           # grpcio: "Failed to bind to address …"
                raise OSError(f"cannot listen on {self.socket_path}: {exc}") from None
            os.chmod(bound, 0o600)
            os.replace(bound, self.socket_path)
            server.start()
        except BaseException:
            server.stop(None)
            executor.shutdown(wait=False)
            raise
        finally:
            shutil.rmtree(private, ignore_errors=True)
        self._server, self._executor, self._stop = server, executor, stop

    def _stop_server(self) -> None:
        self._stop.set()
        server, executor = self._server, self._executor
        self._server = self._executor = None
        if server is not None:
            server.stop(STOP_GRACE).wait()
        if executor is not None:
            executor.shutdown(wait=False)

    def _unlink_own_socket(self) -> None:
        if self._socket_present():
            try:
                os.unlink(self.socket_path)
            except OSError as exc:
                log.warning("cannot remove the device plugin socket", extra=logfmt.fields(
                    socket=str(self.socket_path), error=str(exc)))

    def _register(self) -> None:
        grpc = _grpc()
        if not self.kubelet_socket.exists():
            raise RegistrationError(f"no kubelet socket at {self.kubelet_socket} (is the kubelet "
                                    "running, and is this its device-plugin directory?)")
        request = RegisterRequest(VERSION, self.socket_path.name, self.resource)
        with grpc.insecure_channel(f"unix:{self.kubelet_socket}") as channel:
            register = channel.unary_unary(REGISTER, request_serializer=RegisterRequest.encode,
                                           response_deserializer=Empty.decode)
            try:
                register(request, timeout=REGISTER_TIMEOUT)
            except grpc.RpcError as exc:
                raise RegistrationError(f"kubelet at {self.kubelet_socket}: "
                                        f"{exc.code().name}: {exc.details()}") from None

    # -- the DevicePlugin service (gRPC worker threads) -------------------------------------------
    def _handlers(self, grpc: Any, stop: threading.Event) -> Any:
        def unary(fn: Any, request: Any, response: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=request.decode, response_serializer=response.encode)

        def list_and_watch(request: Empty, context: Any) -> Iterator[ListAndWatchResponse]:
            return self._list_and_watch(stop, context)

        def preferred(request: bytes, context: Any) -> bytes:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "unsupported")
            return b""   # abort raises

        return grpc.method_handlers_generic_handler(DEVICE_PLUGIN, {
            "GetDevicePluginOptions": unary(self._options, Empty, DevicePluginOptions),
            "ListAndWatch": grpc.unary_stream_rpc_method_handler(
                list_and_watch, request_deserializer=Empty.decode,
                response_serializer=ListAndWatchResponse.encode),
            "GetPreferredAllocation": grpc.unary_unary_rpc_method_handler(preferred),
            "Allocate": unary(self._allocate, AllocateRequest, AllocateResponse),
            "PreStartContainer": unary(self._pre_start, PreStartContainerRequest,
                                       PreStartContainerResponse),
        })

    def _options(self, request: Empty, context: Any) -> DevicePluginOptions:
        return DevicePluginOptions()

    def _list_and_watch(self, stop: threading.Event,
                        context: Any) -> Iterator[ListAndWatchResponse]:
        response = ListAndWatchResponse(devices(self.count))
        log.info("device list sent to the kubelet", extra=logfmt.fields(
            resource=self.resource, devices=self.count))
        while True:
            yield response
            if stop.wait(self.resend_period) or not context.is_active():
                return

    def _allocate(self, request: AllocateRequest, context: Any) -> AllocateResponse:
        log.info("allocate", extra=logfmt.fields(
            resource=self.resource, containers=len(request.container_requests),
            devices=",".join(i for ids in request.container_requests for i in ids)))
        return AllocateResponse(tuple(ContainerAllocateResponse()
                                      for _ in request.container_requests))

    def _pre_start(self, request: PreStartContainerRequest,
                   context: Any) -> PreStartContainerResponse:
        return PreStartContainerResponse()
