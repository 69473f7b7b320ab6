"""The kubelet's probes on the metrics port, against the real daemon (in-process, emulator's model):
``/healthz`` = alive with a responsive event loop, ``/readyz`` = reconciled and serving the CNI
socket. The DaemonSet's httpGet probes (deploy/kubernetes/daemonset.yaml) ask exactly these."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from emulator.inprocess import ModelCloud
from terway.cloud.api import Eni
from terway.daemon.app import Daemon, DaemonOptions
from terway.daemon.clock import ScaledClock
from terway.daemon.metrics import Metrics
from terway.daemon.node import load_config
from tests.daemon.daemon_harness import FakeDatapath, World, run, running_daemon, until


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()


async def _aget(port: int, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(_get, port, path)


class ReconcileGate(ModelCloud):
    """ModelCloud whose DescribeNetworkInterfaces (reconcile's listing of the node's ENIs) waits
    on ``gate``: holds the daemon between "RPC server up" and "ready"."""

    def __init__(self, cloud: Any, instance_id: str) -> None:
        super().__init__(cloud, instance_id)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def describe_network_interfaces(self, **kw: Any) -> list[Eni]:
        self.waiting.set()
        self.gate.wait(30)
        return super().describe_network_interfaces(**kw)


def test_readyz_follows_start_up_while_healthz_answers(tmp_path: Path) -> None:
    world = World.build()
    conf = tmp_path / "eni.json"
    conf.write_text(json.dumps(world.eni_conf()))
    cloud = ReconcileGate(world.cloud, world.instance_id)
    options = DaemonOptions(state_dir=str(tmp_path / "state"),
                            socket_path=str(tmp_path / "run" / "eni.socket"),
                            metrics_port=0, seed=7)
    daemon = Daemon(options, load_config(str(conf), None), cloud, node=world.node(),
                    datapath=FakeDatapath(), clock=ScaledClock(20.0))

    async def scenario() -> None:
        start = asyncio.ensure_future(daemon.start())
        try:
            await until(cloud.waiting.is_set, "reconcile to list the node's ENIs")
            port = daemon.metrics.port
            assert port
            assert await _aget(port, "/healthz") == (200, "ok\n")
            status, body = await _aget(port, "/readyz")
            assert status == 503 and body.startswith("starting"), (status, body)
            cloud.gate.set()
            await start
            assert await _aget(port, "/readyz") == (200, "ok\n")
            status, text = await _aget(port, "/metrics")       # same port, same server
            assert status == 200 and "# TYPE terway_rpc_latency histogram" in text
            assert (await _aget(port, "/nope"))[0] == 404
        finally:
            cloud.gate.set()
            if not start.done():
                await start
            await daemon.stop()
        assert daemon.service.not_ready_reason == "shutting down"

    run(scenario())


def test_readyz_fails_when_the_cni_socket_is_gone(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, metrics_port=0) as d:
            port = d.daemon.metrics.port
            assert port
            assert await _aget(port, "/readyz") == (200, "ok\n")
            Path(d.socket).unlink()             # e.g. the host's /var/run/eni cleaned up
            status, body = await _aget(port, "/readyz")
            assert status == 503 and f"CNI socket {d.socket} not served" in body, body
            assert await _aget(port, "/healthz") == (200, "ok\n")   # alive all the same

    run(scenario())


def test_healthz_fails_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, metrics_port=0) as d:
            port = d.daemon.metrics.port
            assert port and d.daemon.metrics.health is not None
            d.daemon.metrics.health.loop_timeout = 0.2
            seen: dict[str, tuple[int, str]] = {}
            answered = threading.Event()

            def probe() -> None:
                seen["healthz"] = _get(port, "/healthz")
                seen["readyz"] = _get(port, "/readyz")
                answered.set()

            threading.Thread(target=probe, daemon=True).start()
            # Block the loop on purpose until both probes have answered (or 30 s at worst):
            # neither can see the loop run a callback meanwhile.
            answered.wait(30)
            assert seen["healthz"][0] == 503, seen
            assert "event loop unresponsive" in seen["healthz"][1]
            assert seen["readyz"][0] == 503 and "event loop" in seen["readyz"][1], seen
            assert await _aget(port, "/healthz") == (200, "ok\n")   # loop free again

    run(scenario())


def _call(app: Any, path: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    got: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: got.append(status)))
    return got[0], body


def test_metrics_app_without_a_daemon_is_alive_but_not_ready() -> None:
    app = Metrics().app
    assert _call(app, "/healthz") == ("200 OK", b"ok\n")
    status, body = _call(app, "/readyz")
    assert status.startswith("503") and b"no daemon" in body
    status, body = _call(app, "/metrics")
    assert status.startswith("200") and b"terway_resource_pool_idle_count" in body
    assert _call(app, "/other")[0].startswith("404")
