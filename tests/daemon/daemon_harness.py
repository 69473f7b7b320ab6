"""Run the real daemon in-process against the emulator's model, with a fake datapath.

``World`` builds a VPC, vSwitches, a security group and one instance (the node) in
``emulator.model.Cloud``; ``running_daemon`` starts ``terway.daemon.app.Daemon`` on a real unix
socket in a temp dir, with ``ModelCloud`` as its cloud and a ``ScaledClock`` so periods of
minutes pass in a fraction of a second. Tests talk to it with terway/rpc/messages.py's blocking
client from a worker thread, exactly as the CNI plugin would.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.inprocess import ModelCloud
from emulator.model import Cloud
from terway.cloud.api import Eni
from terway.daemon import logfmt
from terway.daemon.app import Daemon, DaemonOptions
from terway.daemon.clock import ScaledClock
from terway.daemon.node import LoadedConfig, NodeInfo, load_config
from terway.daemon.ports import PodAttachment, SetupResult
from terway.rpc import messages as rpc

ZONE = "cn-hangzhou-h"


@dataclass
class World:
    cloud: Cloud
    vpc_id: str
    vswitch_ids: list[str]
    sg_id: str
    instance_id: str
    instance_type: str

    @classmethod
    def build(cls, cidrs: Sequence[str] = ("192.168.0.0/24",),
              instance_type: str = "ecs.g6.xlarge", seed: int = 1,
              vpc_cidr: str = "192.168.0.0/16", node_cidr: str = "192.168.200.0/24") -> World:
        cloud = Cloud(seed=seed)
        vpc = cloud.create_vpc(vpc_cidr).vpc_id
        node_vsw = cloud.create_vswitch(vpc, ZONE, node_cidr).vswitch_id
        vsws = [cloud.create_vswitch(vpc, ZONE, c).vswitch_id for c in cidrs]
        sg = cloud.create_security_group(vpc).security_group_id
        (inst,) = cloud.run_instances(instance_type, node_vsw, [sg])
        return cls(cloud, vpc, vsws, sg, inst, instance_type)

    def add_vswitch(self, cidr: str) -> str:
        return self.cloud.create_vswitch(self.vpc_id, ZONE, cidr).vswitch_id

    def node(self) -> NodeInfo:
        inst = self.cloud.get_instance(self.instance_id)
        return NodeInfo(instance_id=inst.instance_id, instance_type=inst.instance_type,
                        region_id=inst.region_id, zone_id=inst.zone_id,
                        primary_vswitch_id=inst.vswitch_id,
                        primary_security_group_ids=tuple(inst.security_group_ids))

    def enis(self) -> list[Eni]:
        """Secondary ENIs attached to the node, per the cloud."""
        return [e for e in ModelCloud(self.cloud).describe_network_interfaces(
            instance_id=self.instance_id) if e.eni_type != "Primary"]

    def all_secondary_enis(self) -> list[Eni]:
        return [e for e in ModelCloud(self.cloud).describe_network_interfaces()
                if e.eni_type != "Primary"]

    def exhaust(self, vswitch_id: str) -> None:
        """Take every free address of a vSwitch with filler ENIs (not the node's)."""
        while True:
            free = self.cloud.get_vswitch(vswitch_id).available_ip_count
            if free == 0:
                return
            self.cloud.create_network_interface(
                vswitch_id, [self.sg_id], secondary_ip_count=min(free - 1, 49))

    def eni_conf(self, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "version": "1", "vswitches": {ZONE: list(self.vswitch_ids)},
            "security_group": self.sg_id, "max_pool_size": 5, "min_pool_size": 0,
            "service_cidr": "172.21.0.0/20", "vswitch_selection_policy": "ordered",
        }
        conf.update(extra)
        return conf


class FakeDatapath:
    """Records what the daemon asks; ``fail_setup`` makes the next setups raise."""

    def __init__(self) -> None:
        self.setups: list[PodAttachment] = []
        self.teardowns: list[PodAttachment] = []
        self.fail_setup: str | None = None
        self.foreign: dict[str, str] = {}
        self._lock = threading.Lock()

    def setup(self, net: PodAttachment) -> SetupResult:
        with self._lock:
            if self.fail_setup:
                raise RuntimeError(self.fail_setup)
            self.setups.append(net)
        return SetupResult(pod_mac="02:00:00:00:00:01", host_ifname="cali0123456789a",
                           host_mac="02:00:00:00:00:02", eni_ifindex=3)

    def teardown(self, net: PodAttachment) -> None:
        with self._lock:
            self.teardowns.append(net)

    def check(self, net: PodAttachment) -> list[str]:
        return []

    def wired_pods(self) -> dict[str, str]:
        """``foreign``: pods wired by someone else (upstream Terway before a migration)."""
        return dict(self.foreign)


class GatedCloud(ModelCloud):
    """ModelCloud whose allocating calls wait on ``gate`` (to hold a request in flight)."""

    def __init__(self, cloud: Cloud, instance_id: str) -> None:
        super().__init__(cloud, instance_id)
        self.gate = threading.Event()
        self.gate.set()

    def create_network_interface(self, **kw: Any) -> Eni:
        self.gate.wait(30)
        return super().create_network_interface(**kw)

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        self.gate.wait(30)
        return super().assign_private_ips(eni_id, count)


@dataclass
class Running:
    daemon: Daemon
    world: World
    cloud: ModelCloud
    datapath: FakeDatapath
    socket: str
    state_dir: str
    config_file: Path
    log: io.StringIO
    netns_dir: Path
    counter: list[int] = field(default_factory=lambda: [0])

    def client(self, timeout: float = 60.0) -> rpc.RpcClient:
        return rpc.RpcClient(self.socket, timeout=timeout)

    def netns(self, name: str) -> str:
        """A stand-in netns path that exists (GC judges pods by it)."""
        path = self.netns_dir / name
        path.touch()
        return str(path)

    def alloc_req(self, name: str, namespace: str = "default",
                  container_id: str | None = None, **fields: Any) -> rpc.AllocIPRequest:
        """An ADD for pod ``name``; ``fields``: more AllocIPRequest fields (netconf hints)."""
        return rpc.AllocIPRequest(pod_name=name, pod_namespace=namespace,
                                  container_id=container_id or f"cid-{name}",
                                  netns=self.netns(f"ns-{name}"), ifname="eth0", **fields)

    async def alloc(self, name: str, **kw: Any) -> rpc.IPInfo:
        return await asyncio.to_thread(self.client().alloc_ip, self.alloc_req(name, **kw))

    async def release(self, name: str, namespace: str = "default",
                      container_id: str | None = None) -> rpc.ReleaseIPReply:
        req = rpc.ReleaseIPRequest(pod_name=name, pod_namespace=namespace,
                                   container_id=container_id or f"cid-{name}", ifname="eth0")
        reply = await asyncio.to_thread(self.client().release_ip, req)
        await self.daemon.service.drain()  # the unwiring that follows the answer
        return reply

    def write_config(self, conf: dict[str, Any]) -> None:
        self.config_file.write_text(json.dumps(conf))

    def log_lines(self) -> list[str]:
        return self.log.getvalue().splitlines()


@asynccontextmanager
async def running_daemon(
    tmp: Path, world: World, *, conf: dict[str, Any] | None = None, scale: float = 20.0,
    cloud: ModelCloud | None = None, datapath: Any = None,
    link_check: Callable[[str], bool] | None = None,
    alloc_timeout: float = 120.0, config_poll: float = 1.0, gc_period: float = 3600.0,
    log: io.StringIO | None = None, prepare: Callable[[Path], None] | None = None,
    fail_fast: bool = True, kube: Any = None, metrics_port: int | None = None,
    node_config_patch: str = "", device_plugin_dir: str = "", upstream_state_dir: str = "",
) -> AsyncIterator[Running]:
    """Start a daemon (state in ``tmp/state``, socket ``tmp/run/eni.socket``); stop it after."""
    config_file = tmp / "eni.json"
    if conf is not None or not config_file.exists():
        config_file.write_text(json.dumps(conf if conf is not None else world.eni_conf()))
    if prepare is not None:
        prepare(tmp)
    stream = log or io.StringIO()
    logfmt.setup(logfmt.parse_level("debug"), stream)
    (tmp / "netns").mkdir(exist_ok=True)
    socket = str(tmp / "run" / "eni.socket")
    state = str(tmp / "state")
    mc = cloud or ModelCloud(world.cloud, world.instance_id)
    dp = datapath or FakeDatapath()

    def loader() -> LoadedConfig:
        return load_config(str(config_file), None, node_patch_file=node_config_patch)

    options = DaemonOptions(state_dir=state, socket_path=socket, alloc_timeout=alloc_timeout,
                            gc_period=gc_period, config_poll=config_poll, attach_timeout=60.0,
                            seed=7, fail_fast=fail_fast, metrics_port=metrics_port,
                            device_plugin_dir=device_plugin_dir,
                            upstream_state_dir=upstream_state_dir)
    daemon = Daemon(options, loader(), mc, node=world.node(), datapath=dp,
                    clock=ScaledClock(scale), config_loader=loader, link_check=link_check,
                    kube=kube)
    await daemon.start()
    try:
        yield Running(daemon, world, mc, dp, socket, state, config_file, stream, tmp / "netns")
    finally:
        await daemon.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def until(pred: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``pred`` (real time) until true; fail naming ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def upstream_eni(world: World, ips: int) -> tuple[str, str, list[str]]:
    """An ENI as upstream Terway leaves it: tagged creator=terway, attached, with addresses."""
    eni = world.cloud.create_network_interface(world.vswitch_ids[0], [world.sg_id],
                                               secondary_ip_count=ips,
                                               tags={"creator": "terway"})
    world.cloud.attach_network_interface(eni.eni_id, world.instance_id)
    view = world.cloud.get_network_interface(eni.eni_id)
    return eni.eni_id, view.mac, [ip for ip in view.private_ips if ip != view.primary_ip]
