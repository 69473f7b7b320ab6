"""Prometheus metrics under upstream's names, in a registry of their own.

A private ``CollectorRegistry`` per daemon keeps several in-process daemons (tests) apart; the
HTTP endpoint is only started when ``--metrics-port`` is given.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server

_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)


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
        self.pool_total = Gauge("terway_resource_pool_total_count",
                                "resources in the pool (idle + in use)", registry=r)
        self.pool_idle = Gauge("terway_resource_pool_idle_count",
                               "idle resources in the pool", registry=r)
        self.pool_disposed = Gauge("terway_resource_pool_disposed_count",
                                   "resources released back to the cloud", registry=r)
        self.eni_count = Gauge("terway_eniip_factory_eni_count",
                               "secondary ENIs managed by the daemon", registry=r)
        self.ip_count = Gauge("terway_eniip_factory_ip_count",
                              "addresses on the daemon's ENIs", registry=r)

        self._server: WSGIServer | None = None
        self.port: int | None = None             # bound by serve()

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` (port 0: any free port); returns the bound port."""
        self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
        self.port = int(self._server.server_port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def observe_openapi(self, api: str, ms: float, error: str) -> None:
        self.openapi_latency.labels(api, error).observe(ms)

    def set_pool(self, *, total: int, idle: int, disposed: int, eni_count: int) -> None:
        self.pool_total.set(total)
        self.pool_idle.set(idle)
        self.pool_disposed.set(disposed)
        self.eni_count.set(eni_count)
        self.ip_count.set(total)
