"""The daemon assembled: start order, background tasks, shutdown.

Start: lock → store → node facts (metadata, or given) → instance limits → IPAM core → RPC server
(answers "not ready" until reconciled) → reconcile → ready → background loops (driver ticks, GC,
ENI sync, config reload). Stop: refuse new work, give running cloud calls a grace period, close
the store. Everything outside is injected (cloud, datapath, Kubernetes, clock) so tests run the
real daemon in-process against the emulator's model.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from terway.cloud.api import CloudAPI, Eni, InstanceTypeLimits
from terway.cloud.metadata import MetadataClient
from terway.daemon import logfmt
from terway.daemon.adminapi import AdminView
from terway.daemon.adopt import adopted_records
from terway.daemon.clock import Clock, RealClock
from terway.daemon.configwatch import ConfigWatcher
from terway.daemon.deviceplugin import EniDevicePlugin
from terway.daemon.driver import Driver
from terway.daemon.enisync import EniSync, IpSource, cloud_source, metadata_source
from terway.daemon.events import ALLOC_FAILED, EventRecorder
from terway.daemon.executor import Executor
from terway.daemon.gc import gc_loop, gc_once, resync_once
from terway.daemon.k8s import MAX_AVAILABLE_IP
from terway.daemon.lock import LockFile
from terway.daemon.metrics import Health, Metrics
from terway.daemon.migrate import claimed_records, gather_claims
from terway.daemon.node import (
    INSTANCE_TYPE_INFO,
    EniNet,
    LoadedConfig,
    NodeInfo,
    cloud_eni_net,
    discover_node,
    instance_limits,
    ipam_settings,
    metadata_eni_net,
)
from terway.daemon.ports import Datapath, Kube, NoDatapath, NoopKube
from terway.daemon.reconcile import Ownership, node_enis, owners_from_store, settle_intents
from terway.daemon.server import RpcServer
from terway.daemon.service import PodService
from terway.daemon.store import Store
from terway.daemon.timedcloud import TimedCloud
from terway.daemon.upstream_state import state_mark
from terway.ipam import ConditionChanged, IpamCore, IpamSettings
from terway.ipam.drive import WaitPolicy
from terway.ipam.enilimit import EniOpLimiter
from terway.limits import NodeCapacity
from terway.rpc import messages as rpc

log = logfmt.get()
DEFAULT_STATE_DIR = "/var/lib/cni/terway"
LOCK_NAME = "terwayd.lock"
DEBUG_SOCKET_NAME = "eni_debug.socket"  # upstream's /var/run/eni/eni_debug.socket: /metrics
UPSTREAM_MARK = "upstream_state_read"   # store meta: upstream's files as last read (state_mark)


@dataclass
class DaemonOptions:
    state_dir: str = DEFAULT_STATE_DIR
    socket_path: str = rpc.DEFAULT_SOCKET
    lock_path: str = ""                  # "" = terwayd.lock next to the socket
    alloc_timeout: float = rpc.DEFAULT_TIMEOUT
    gc_period: float = 300.0
    config_poll: float = 5.0
    attach_timeout: float = 60.0
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"  # the node only; 0.0.0.0 to be scraped (no auth)
    debug_socket: str | None = None      # /metrics on a unix socket; None: next to the socket,
                                         # "": none
    node_name: str = ""
    seed: int | str | None = None        # core's RNG (vSwitch shuffle); None = from os.urandom
    fail_fast: bool = True               # answer an unservable AllocIP at once (not at timeout)
    wait: WaitPolicy | None = None       # attach/detach polling; None = WaitPolicy(attach_timeout)
    eni_sync_period: float = 60.0        # upstream's per-ENI metadata sync (jittered); 0: off
    eni_op_limit: bool = True            # upstream's per-ENI limiters (10/min, burst 2)
    device_plugin_dir: str = ""          # aliyun/eni device plugin in ENIOnly mode; "": none
                                         # (terwayd's flag: /var/lib/kubelet/device-plugins)
    upstream_state_dir: str = ""         # upstream Terway's pod state files, read at start;
                                         # "": none (terwayd's flag: /var/lib/cni/terway)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lock_file(self) -> str:
        return self.lock_path or str(Path(self.socket_path).parent / LOCK_NAME)

    @property
    def debug_socket_file(self) -> str:
        """Where upstream serves its metrics (``eni_debug.socket`` beside ``eni.socket``)."""
        if self.debug_socket is None:
            return str(Path(self.socket_path).parent / DEBUG_SOCKET_NAME)
        return self.debug_socket

    @property
    def lock_files(self) -> list[str]:
        """The state directory's lock (two daemons on one store would hand out an address
        twice) and the socket's (upstream's place, ``/var/run/eni/terwayd.lock``)."""
        state = str(Path(self.state_dir) / LOCK_NAME)
        return [state] if self.lock_file == state else [state, self.lock_file]


class Daemon:
    def __init__(
        self,
        options: DaemonOptions,
        config: LoadedConfig,
        cloud: CloudAPI,
        *,
        metadata: MetadataClient | None = None,
        node: NodeInfo | None = None,
        datapath: Datapath | None = None,
        kube: Kube | None = None,
        clock: Clock | None = None,
        eni_net: EniNet | None = None,
        link_check: Callable[[str], bool] | None = None,
        config_loader: Callable[[], LoadedConfig] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if metadata is None and node is None:
            raise ValueError("Daemon needs instance metadata or explicit NodeInfo")
        self.options = options
        self.config = config
        self.metrics = metrics or Metrics()
        self.cloud: CloudAPI = TimedCloud(cloud, self.metrics.observe_openapi)
        self.metadata = metadata
        self.node = node
        self.datapath: Datapath = datapath or NoDatapath()
        self.kube: Kube = kube or NoopKube()
        self.clock: Clock = clock or RealClock()
        self._eni_net = eni_net
        self._link_check = link_check
        self._config_loader = config_loader
        self._locks = [LockFile(path) for path in options.lock_files]
        self._foreign_enis = 0   # attached ENIs we do not manage: they take ENI slots
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.store: Store
        self.core: IpamCore
        self.driver: Driver
        self.service: PodService
        self.server: RpcServer
        self.capacity: NodeCapacity
        self.limits: InstanceTypeLimits
        self.settings: IpamSettings
        self.eni_sync: EniSync | None = None
        self.device_plugin: EniDevicePlugin | None = None

    # -- start --------------------------------------------------------------------------------

    def _acquire_locks(self) -> None:
        taken: list[LockFile] = []
        try:
            for lock in self._locks:
                lock.acquire()
                taken.append(lock)
        except BaseException:
            for lock in taken:
                lock.release()
            raise

    async def start(self) -> None:
        self._acquire_locks()
        self.store = Store.open(self.options.state_dir)
        if self.node is None:
            assert self.metadata is not None
            self.node = await asyncio.to_thread(discover_node, self.metadata, self.cloud)
        node = self.node
        info = await asyncio.to_thread(self.kube.node_annotation, INSTANCE_TYPE_INFO) \
            if self.kube.enabled else None
        self.limits = await asyncio.to_thread(instance_limits, self.cloud, node.instance_type,
                                              info)
        settings, self.capacity = ipam_settings(self.config.eni_conf, self.limits, node)
        self.metrics.max_enis, self.metrics.max_ips = (self.capacity.max_enis,
                                                       self.capacity.ips_per_eni)
        self.settings = settings
        generation = int(self.store.meta("generation") or "0") + 1
        self.store.set_meta("generation", str(generation))
        seed = self.options.seed if self.options.seed is not None else \
            int.from_bytes(os.urandom(8), "big")
        self.core = IpamCore(settings, id_prefix=f"{node.instance_id}-g{generation}",
                             rng=random.Random(seed))
        executor = self._executor()
        events = EventRecorder(self.kube)
        self.driver = Driver(self.core, executor, self.store, self.clock, metrics=self.metrics,
                             on_condition=self._on_condition,
                             on_alloc_failure=lambda err: events.record_node(
                                 ALLOC_FAILED, err.describe(), same_as=err.code),
                             limiter=EniOpLimiter() if self.options.eni_op_limit else None)
        self.driver.batch_window = settings.batch_window
        self.driver.fail_fast = self.options.fail_fast
        self.service = PodService(
            self.driver, self.store, self.datapath, self.kube, events,
            self.config, self._eni_lookup(), alloc_timeout=self.options.alloc_timeout)
        view = AdminView(self.core, self.store, self.service, node, self.capacity,
                         lambda: self.config, now=self.clock.now)
        self.server = RpcServer(self.service, view.handle, self.metrics)
        await self.server.start(self.options.socket_path)
        if self.options.metrics_port is not None:
            health = Health(asyncio.get_running_loop(), self.options.socket_path,   # probes
                            lambda: None if self.service.ready else self.service.not_ready_reason)
            port = self.metrics.serve(self.options.metrics_port, self.options.metrics_address,
                                      health=health)
            log.info("serving metrics", extra=logfmt.fields(
                address=self.options.metrics_address, port=port))
        if self.options.debug_socket_file:
            self._serve_debug_socket(self.options.debug_socket_file)
        await self._reconcile(executor)
        self.service.ready = True
        self._spawn(self.driver.run())
        self._spawn(gc_loop(self.service, self.kube, self.clock, self.options.gc_period))
        if self.options.eni_sync_period > 0 and not settings.exclusive:
            self.eni_sync = EniSync(self.core, self._ip_source(), events, self.clock,
                                    rng=random.Random(f"enisync:{seed}"), after=self.driver.pump,
                                    period=self.options.eni_sync_period)
            self._spawn(self.eni_sync.run())
        if self._config_loader is not None:
            watcher = ConfigWatcher(self.config.files, self._config_loader, self.apply_config)
            self._spawn(watcher.run(self.clock, self.options.config_poll))
        self._start_device_plugin()
        self._spawn(asyncio.to_thread(self.kube.annotate_node, MAX_AVAILABLE_IP,
                                      str(self.capacity.capacity)))
        log.info("terwayd ready", extra=logfmt.fields(
            instance=node.instance_id, zone=node.zone_id, capacity=self.capacity.capacity,
            vswitches=",".join(settings.vswitch_ids), generation=generation))

    def _start_device_plugin(self) -> None:
        """Exclusive mode, as upstream: ``aliyun/eni`` through the kubelet's device-plugin API,
        one device per ENI a pod may own (attached ENIs we do not manage take slots), unless
        ``disable_device_plugin``. Read at start only."""
        conf = self.config.eni_conf
        if not (self.settings.exclusive and self.options.device_plugin_dir):
            return
        if conf.disable_device_plugin:
            log.info("device plugin disabled (disable_device_plugin): the scheduler does not "
                     "count exclusive ENIs")
            return
        count = max(0, self.capacity.capacity - self._foreign_enis)
        self.device_plugin = EniDevicePlugin(count, self.options.device_plugin_dir,
                                             clock=self.clock)
        self._spawn(self.device_plugin.run())

    def _serve_debug_socket(self, path: str) -> None:
        """Metrics on upstream's debug socket; a socket that cannot be made (a path too long
        for AF_UNIX, a file in the way) is logged, not fatal: addresses do not depend on it."""
        try:
            log.info("serving metrics", extra=logfmt.fields(socket=self.metrics.serve_unix(path)))
        except OSError as exc:
            log.error("debug socket not served (no metrics there)", extra=logfmt.fields(
                socket=path, error=str(exc)))

    def _executor(self) -> Executor:
        macs: Callable[[], set[str]] | None = None
        if self.metadata is not None:
            md = self.metadata

            def macs() -> set[str]:
                return {m.lower() for m in md.macs()}

        wait = self.options.wait or WaitPolicy(timeout=self.options.attach_timeout)
        return Executor(self.cloud, sleep=self.clock.sleep_blocking, now=self.clock.now,
                        wait=wait,
                        macs_visible=macs, link_exists=self._link_check)

    def _ip_source(self) -> IpSource:
        """Where the ENI sync reads addresses: instance metadata, as upstream (the cloud API
        when the daemon runs without it)."""
        assert self.node is not None
        if self.metadata is not None:
            return metadata_source(self.metadata)
        return cloud_source(self.cloud, self.node.instance_id)

    def _eni_lookup(self) -> EniNet:
        if self._eni_net is not None:
            return self._eni_net
        if self.metadata is not None:
            return metadata_eni_net(self.metadata)
        return cloud_eni_net(self.cloud)

    async def _reconcile(self, executor: Executor) -> None:
        assert self.node is not None
        node = self.node
        settled = await asyncio.to_thread(settle_intents, self.store, self.cloud, executor,
                                          node.instance_id)
        md_macs = None
        if self.metadata is not None:
            md = self.metadata
            md_macs = {m.lower() for m in await asyncio.to_thread(md.macs)}
        ownership = Ownership(self.config.eni_conf.eni_tag_filter,
                              self.config.eni_conf.eni_tag_block_list)
        enis, foreign = await asyncio.to_thread(node_enis, self.cloud, executor,
                                                node.instance_id, md_macs, ownership)
        self._foreign_enis = len(foreign)
        if foreign:
            log.warning("leaving alone ENIs terway does not manage (no creator=terway tag, "
                        "eni_tag_filter or eni_tag_block_list); they take ENI slots",
                        extra=logfmt.fields(enis=",".join(e.eni_id for e in foreign)))
            self.apply_config(self.config)
        owners = owners_from_store(self.store)
        await self._adopt_known(enis, owners)
        await self._adopt_wired(enis, owners)
        report = self.core.restore(enis, owners, self.clock.now())
        for key, ip in report.dropped.items():
            log.warning("dropping record: its address is no longer on this node",
                        extra=logfmt.fields(pod=key, ip=ip))
            self.store.delete_pod(key)
        log.info("reconciled", extra=logfmt.fields(
            enis=len(enis), pods=len(self.store.pods()), freed=len(report.freed),
            dropped=len(report.dropped), intents=len(settled.cleared),
            deleted_enis=",".join(settled.deleted_enis)))
        finished = await self.service.finish_pending()
        if finished:
            log.info("finished interrupted releases and ADDs", extra=logfmt.fields(
                pods=",".join(finished)))
        await resync_once(self.service)   # pods whose netns is gone are left to GC
        self.driver.pump()

    async def _adopt_known(self, enis: list[Eni], owners: dict[str, str]) -> None:
        """Before anything is freed: addresses on our ENIs that upstream's state files or the
        API server give a pod we have no record of get records under that pod's name
        (terway/daemon/migrate.py)."""
        upstream = self.options.upstream_state_dir
        mark = state_mark(upstream) if upstream else ""
        if mark and mark == self.store.meta(UPSTREAM_MARK):
            log.info("upstream Terway's state files already read at an earlier start; "
                     "unchanged, not read again", extra=logfmt.fields(dir=upstream))
            upstream = ""
        claims = await asyncio.to_thread(gather_claims, upstream, self.kube)
        adoption = claimed_records(enis, owners, claims, exclusive=self.settings.exclusive,
                                   datapath=self.config.datapath)
        for rec in adoption.records:
            self.store.put_pod(rec)
            owners[rec.resources[0].ip] = rec.key
        if upstream and mark:
            self.store.set_meta(UPSTREAM_MARK, mark)   # with the records: read once per mark
        if adoption.records:
            log.warning("adopted addresses of running pods we had no record of",
                        extra=logfmt.fields(pods=",".join(
                            f"{r.key}={r.resources[0].ip}" for r in adoption.records)))
        if adoption.dropped:
            log.info("claims on addresses not taken", extra=logfmt.fields(
                claims="; ".join(adoption.dropped)))

    async def _adopt_wired(self, enis: list[Eni], owners: dict[str, str]) -> None:
        """Before anything is freed: addresses the node routes to pods we have no record of
        (terway/daemon/adopt.py) get adopted records and stay used."""
        wired = await asyncio.to_thread(self.datapath.wired_pods)
        adopted = adopted_records(enis, owners, wired)
        for rec in adopted:
            self.store.put_pod(rec)
            owners[rec.resources[0].ip] = rec.key
        if adopted:
            log.warning("adopted addresses of pods wired before our records (upstream Terway?)",
                        extra=logfmt.fields(ips=",".join(r.resources[0].ip for r in adopted)))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    # -- hooks --------------------------------------------------------------------------------

    def _on_condition(self, cond: ConditionChanged) -> None:
        self._spawn(asyncio.to_thread(self.kube.set_node_condition, cond.type, cond.status,
                                      cond.reason, cond.message))

    def apply_config(self, conf: LoadedConfig) -> None:
        """A new eni_conf: the core gets new settings now (a vSwitch added takes effect)."""
        assert self.node is not None
        settings, _ = ipam_settings(conf.eni_conf, self.limits, self.node)
        if self._foreign_enis:
            settings = replace(settings, max_enis=max(0, settings.max_enis - self._foreign_enis))
        self.config = conf
        self.settings = settings
        self.service.config = conf
        self.driver.batch_window = settings.batch_window
        self.core.on_config_changed(settings, self.clock.now())
        self.driver.pump()

    async def gc(self) -> list[str]:
        return await gc_once(self.service, self.kube)

    async def resync(self) -> list[str]:
        """Re-run the datapath of every live pod (what each GC period does after GC)."""
        return await resync_once(self.service)

    # -- stop ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        self.service.ready = False
        self.service.not_ready_reason = "shutting down"
        await self.server.close()
        await self.service.drain()
        self.service.pod_ips.close()
        await self.driver.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.device_plugin is not None:
            await asyncio.to_thread(self.device_plugin.close)
        self.metrics.close()
        self.store.close()
        for lock in self._locks:
            lock.release()
        log.info("terwayd stopped")
