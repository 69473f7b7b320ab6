"""Prometheus metrics under upstream's names, in a registry of their own, and the health probes.

A private ``CollectorRegistry`` per daemon keeps several in-process daemons (tests) apart; the
HTTP endpoint is only started when ``--metrics-port`` is given. The same small WSGI server
answers the kubelet's probes (the DaemonSet's ``httpGet``, deploy/kubernetes/daemonset.yaml):

- ``/healthz``: the process is alive *and its event loop is responsive* — a callback handed to
  the loop from the HTTP thread runs within ``Health.loop_timeout``. A wedged loop (a blocking
  call on it, a deadlock) answers no RPC either, so the liveness probe restarts the container.
- ``/readyz``: ``/healthz`` plus the daemon finished start-up and reconcile (``PodService.ready``)
  and its CNI socket is served: a connect to the unix socket at its path succeeds (a socket file
  removed from the host's ``/var/run/eni`` makes the pod unready). IP exhaustion does *not* make
  it unready: that is the node condition ``SufficientIP`` and the CNI STATUS answer.

Upstream serves its metrics on a unix socket (``/var/run/eni/eni_debug.socket``, its
``--readonly-listen``; exposed on the node's TCP 15432 by its terway-metric-proxy) and has no
probes on the terway container. ``serve_unix`` serves ``/metrics`` there too (``--debug-socket``,
default ``eni_debug.socket`` next to the CNI socket, i.e. upstream's path): mode 0600 in a 0700
directory like the CNI socket (upstream: the same), removed on close.

Names *and labels* are upstream's, so its Grafana dashboard works unchanged: ``error`` is
``"true"``/``"false"``, the pool gauges carry ``type="LocalIP"`` and ``ipStack="ipv4"``. Upstream's
counters are Go counters without a ``_total`` suffix; prometheus_client would add one, so
``terway_eniip_factory_ip_alloc_count`` is a gauge that only ever grows (``rate()`` and
``increase()`` work the same); so is ``terway_resource_pool_disposed_count``, upstream's running
count of addresses the pool gave up (unassigned, or on an ENI it released).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn, UnixStreamServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Gauge, Histogram, make_wsgi_app

_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
POOL_LABELS = ("LocalIP", "ipv4")   # upstream's type and ipStack of a node's own pool
FACTORY = "eniip"                   # upstream's factory name label


def error_label(error: str | bool) -> str:
    """Upstream's ``fmt.Sprint(err != nil)``."""
    return "true" if error else "false"

StartResponse = Callable[..., Any]


@dataclass
class Health:
    """What the probes look at: the daemon's event loop, its CNI socket, its readiness.

    ``not_ready`` returns ``None`` when the daemon is ready, else why not (the probe's body).
    """

    loop: asyncio.AbstractEventLoop
    socket_path: str
    not_ready: Callable[[], str | None]
    loop_timeout: float = 2.0       # the DaemonSet's probe timeoutSeconds (5) is larger

    def liveness(self) -> str | None:
        """``None`` when the event loop ran a callback within ``loop_timeout``."""
        if self.loop.is_closed():
            return "event loop closed"
        ran = threading.Event()
        try:
            self.loop.call_soon_threadsafe(ran.set)
        except RuntimeError:                      # closed between the check and the call
            return "event loop closed"
        if not ran.wait(self.loop_timeout):
            return f"event loop unresponsive: a callback did not run within {self.loop_timeout}s"
        return None

    def readiness(self) -> str | None:
        problem = self.liveness() or self.not_ready()
        if problem:
            return problem
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.loop_timeout)
                s.connect(self.socket_path)
        except OSError as exc:
            return f"CNI socket {self.socket_path} not served: {exc.strerror or exc}"
        return None


class _Server(ThreadingMixIn, WSGIServer):
    """A thread per request: a probe waiting on a wedged loop does not hold up a scrape."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the kubelet probes every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _UnixHandler(_QuietHandler):
    """A unix peer has no (host, port): wsgiref reads ``client_address[0]``."""

    def setup(self) -> None:
        self.client_address = ("unix", 0)
        super().setup()


class _UnixWSGIServer(ThreadingMixIn, UnixStreamServer):
    """wsgiref's server over a unix socket (its WSGIServer assumes TCP's host and port)."""

    daemon_threads = True

    def __init__(self, path: str, app: Callable[..., Iterable[bytes]]) -> None:
        super().__init__(path, _UnixHandler)
        self.application = app
        self.base_environ = {"SERVER_NAME": "localhost", "SERVER_PORT": "0",
                             "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_HOST": "",
                             "CONTENT_LENGTH": "", "SCRIPT_NAME": ""}

    def get_app(self) -> Callable[..., Iterable[bytes]]:
        return self.application


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rpc_latency = Histogram(
            "terway_rpc_latency", "terwayd RPC latency in ms", ["rpc_api", "error"],
            buckets=_BUCKETS_MS, registry=r)
        self.openapi_latency = Histogram(
            "aliyun_openapi_latency", "cloud OpenAPI call latency in ms", ["api", "error"],
            buckets=_BUCKETS_MS, registry=r)
        self.metadata_latency = Histogram(
            "aliyun_metadata_latency", "instance metadata latency in ms", ["url", "error"],
            buckets=_BUCKETS_MS, registry=r)
        pool = ["type", "ipStack"]
        self.pool_total = Gauge("terway_resource_pool_total_count",
                                "resources in the pool (idle + in use)", pool, registry=r)
        self.pool_idle = Gauge("terway_resource_pool_idle_count",
                               "idle resources in the pool", pool, registry=r)
        self.pool_disposed = Gauge("terway_resource_pool_disposed_count",
                                   "resources released back to the cloud (a counter)", pool,
                                   registry=r)
        self.pool_disposed.labels(*POOL_LABELS)      # 0 until the first release, as a counter
        self.eni_count = Gauge("terway_eniip_factory_eni_count",
                               "secondary ENIs managed by the daemon", ["name", "max_eni"],
                               registry=r)
        self.ip_count = Gauge("terway_eniip_factory_ip_count",
                              "addresses on one of the daemon's ENIs", ["name", "eni", "max_ip"],
                              registry=r)
        self.ip_alloc_count = Gauge("terway_eniip_factory_ip_alloc_count",
                                    "address allocations (a counter)", ["eni", "status"],
                                    registry=r)
        self.max_enis = self.max_ips = 0        # the node's capacity, for the labels above

        self.health: Health | None = None          # None: /healthz ok, /readyz 503
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        self.port: int | None = None             # bound by serve()
        self._debug: _UnixWSGIServer | None = None
        self.debug_socket: str | None = None     # bound by serve_unix()

    def serve(self, port: int, addr: str = "127.0.0.1", health: Health | None = None) -> int:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` (port 0: any free port) in a daemon
        thread; returns the bound port. ``addr`` 127.0.0.1 keeps them on the node (no
        authentication; upstream serves its metrics on a local socket): the DaemonSet's probes
        ask 127.0.0.1, which with ``hostNetwork`` is the node's loopback."""
        if health is not None:
            self.health = health
        server = make_server(addr, port, self.app, _Server, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
        self._server = server
        self.port = int(server.server_port)
        return self.port

    def serve_unix(self, path: str) -> str:
        """Serve ``/metrics`` on the unix socket ``path`` (upstream's debug socket) in a daemon
        thread. A stale socket there is replaced (the daemon's lock says nobody serves it);
        anything else there is refused."""
        where = Path(path)
        where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if where.is_socket():
            where.unlink()
        elif where.exists() or where.is_symlink():
            raise FileExistsError(errno.EEXIST, "refusing to replace it: not a socket "
                                  "(--debug-socket must name a socket or nothing)", path)
        old = os.umask(0o177)
        try:
            server = _UnixWSGIServer(path, self.debug_app)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        threading.Thread(target=server.serve_forever, name="metrics-unix", daemon=True).start()
        self._debug, self.debug_socket = server, path
        return path

    def debug_app(self, environ: dict[str, Any],
                  start_response: StartResponse) -> Iterable[bytes]:
        """The debug socket's app: ``/metrics`` only, as upstream's (no probes there)."""
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        return _reply(start_response, "404 Not Found", f"{path}: not found (try /metrics)")

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI app: ``/metrics`` (and ``/``) for Prometheus, the two probes, else 404."""
        path = environ.get("PATH_INFO") or "/"
        if path in ("/metrics", "/"):
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            problem = self.health.liveness() if self.health is not None else None
        elif path == "/readyz":
            problem = (self.health.readiness() if self.health is not None
                       else "no daemon attached to this metrics server")
        else:
            return _reply(start_response, "404 Not Found", f"{path}: not found (try /metrics, "
                          "/healthz, /readyz)")
        if problem:
            return _reply(start_response, "503 Service Unavailable", problem)
        return _reply(start_response, "200 OK", "ok")

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._debug is not None:
            self._debug.shutdown()
            self._debug.server_close()
            self._debug = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(self.debug_socket))

    def observe_openapi(self, api: str, ms: float, error: str) -> None:
        self.openapi_latency.labels(api, error_label(error)).observe(ms)

    def observe_metadata(self, url: str, ms: float, failed: bool) -> None:
        self.metadata_latency.labels(url, error_label(failed)).observe(ms)

    def count_alloc(self, eni_mac: str, ok: bool) -> None:
        self.ip_alloc_count.labels(eni_mac, "succeed" if ok else "fail").inc()

    def count_disposed(self, addresses: int) -> None:
        self.pool_disposed.labels(*POOL_LABELS).inc(addresses)

    def set_pool(self, *, total: int, idle: int, ips_by_eni: dict[str, int]) -> None:
        """The pool's sizes; ``ips_by_eni``: {ENI MAC: its addresses}."""
        self.pool_total.labels(*POOL_LABELS).set(total)
        self.pool_idle.labels(*POOL_LABELS).set(idle)
        self.eni_count.clear()
        self.eni_count.labels(FACTORY, str(self.max_enis)).set(len(ips_by_eni))
        self.ip_count.clear()
        for mac, count in ips_by_eni.items():
            self.ip_count.labels(FACTORY, mac, str(self.max_ips)).set(count)


def _reply(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]
