"""A stand-in terway daemon speaking terway.rpc.messages, for plugin tests and the CNI benchmark.

It runs the real server helper (``rpc.serve_connection``) on its own asyncio loop in a thread.
Replies come from ``responses`` (method → reply or RpcError); with ``datapath_netns`` set it
also wires pods for real through terway.datapath, like terwayd does. ``ExecCNI`` (the native
plugin front's request) is served by terwayd's own ``CniExecutor``, whose inner calls come back
to ``handle`` like any other request; they are recorded in ``calls``, the ExecCNI requests
themselves in ``exec_calls``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import weakref
from typing import Any

from terway.daemon.cniexec import CniExecutor
from terway.rpc import messages as rpc

DEFAULT_INFO = rpc.IPInfo(
    ip_type=rpc.IP_TYPE_ENIIP,
    pod_ip="10.9.0.11",
    prefix_len=32,
    gateway="10.9.0.253",
    eni_mac="02:00:00:00:01:01",
    vswitch_cidr="10.9.0.0/24",
    service_cidr="172.21.0.0/20",
    eni_ifindex=3,
    pod_mac="0a:00:00:00:00:01",
    host_ifname="cali0123456789a",
    host_mac="0a:00:00:00:00:02",
)


class FakeDaemon:
    def __init__(self, datapath_netns: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="terway-fake-")
        # the socket's directory goes on exit, or when a FakeDaemon that was never entered is
        # collected, or at interpreter exit, whichever comes first
        self._remove_dir = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        self.socket = os.path.join(self.dir, "eni.socket")
        self.calls: list[tuple[str, Any]] = []
        self.exec_calls: list[rpc.ExecCNIRequest] = []
        self.exec_cni = True  # False: answer ExecCNI like a daemon older than the native front
        self._cni = CniExecutor(self.socket,
                                lambda line, _deadline: rpc.handle_line(line, self.handle))
        self.responses: dict[str, Any] = {
            "AllocIP": DEFAULT_INFO,
            "ReleaseIP": rpc.ReleaseIPReply(released=True),
            "GetIPInfo": DEFAULT_INFO,
            "RecordEvent": rpc.Empty(),
            "Status": rpc.StatusReply(ready=True),
            "GC": rpc.GCReply(),
        }
        self.datapath_netns = datapath_netns
        self.next_ip = 11
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeDaemon:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._cni.close()
        self._remove_dir()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> asyncio.AbstractServer:
            server = await asyncio.start_unix_server(
                lambda r, w: rpc.serve_connection(r, w, self.handle),
                path=self.socket,
                limit=rpc.MAX_MESSAGE + 1,
            )
            os.chmod(self.socket, 0o600)
            return server

        server = self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def handle(self, method: str, request: Any) -> Any:
        if method == "ExecCNI":
            self.exec_calls.append(request)
            if not self.exec_cni:
                raise rpc.RpcError(rpc.ERR_UNKNOWN_METHOD, rpc.CLASS_INVALID,
                                   "unknown method 'ExecCNI'")
            return await self._cni.run(request)
        self.calls.append((method, request))
        if self.datapath_netns is not None and method in ("AllocIP", "ReleaseIP"):
            return await asyncio.to_thread(self._datapath, method, request)
        reply = self.responses[method]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _datapath(self, method: str, request: Any) -> Any:
        from terway import datapath as dp

        if method == "AllocIP":
            pod_ip = f"10.9.0.{self.next_ip}"
            self.next_ip = 11 + (self.next_ip - 10) % 200
            net = dp.PodNetwork(pod_ip, DEFAULT_INFO.gateway, DEFAULT_INFO.eni_mac)
            pod = dp.PodSpec(request.pod_namespace, request.pod_name, request.netns, request.ifname)
            links = dp.setup_pod(dp.VETH, pod, net, self.datapath_netns)
            self.responses[f"ip:{request.container_id}"] = pod_ip
            return DEFAULT_INFO._replace(
                pod_ip=pod_ip,
                pod_mac=links.pod_mac,
                host_ifname=links.host_ifname,
                host_mac=links.host_mac,
                eni_ifindex=links.eni_ifindex,
            )
        pod_ip = self.responses.pop(f"ip:{request.container_id}", None)
        if pod_ip is None:
            return rpc.ReleaseIPReply(released=False)
        pod = dp.PodSpec(request.pod_namespace, request.pod_name, request.netns, request.ifname)
        net = dp.PodNetwork(pod_ip, DEFAULT_INFO.gateway, DEFAULT_INFO.eni_mac)
        dp.teardown_pod(dp.VETH, pod, net, self.datapath_netns)
        return rpc.ReleaseIPReply(released=True)
