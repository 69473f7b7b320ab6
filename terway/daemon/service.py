"""What each CNI request does: ask the pool, wire the pod, persist, answer.

AllocIP: a pod already in flight is refused; an ADD repeated for the same sandbox returns what
the pod has (after re-running the idempotent datapath setup); a new sandbox of a known pod keeps
the pod's address. Otherwise the core is asked (answered at once when the pool is warm, else after
the cloud calls), the datapath is set up in the pod's netns in a worker thread (pyroute2 blocks),
and the record is committed *before* the answer, so an address the CNI has seen is never lost.

Nothing is wired that the store does not know: a new pod's record is written marked ``wiring``
before its datapath is set up, and completed after. Any failure past that point (setup, the final
write: a full disk) is rolled back at once - unwired, record deleted, address back to the pool -
and what a failure or a crash leaves undone (a ``wiring`` record) is finished by the next GC or
restart (``finish_pending``), exactly like a release.

ReleaseIP is idempotent, ignores a stale container id and works when the netns is gone. It answers
once the release is durable (the record marked ``releasing``); unwiring the pod (deleting a veth
takes the kernel ~20 ms) and returning the address to the pool follow right after, so the address
is never handed out while the old interface exists. A request for the same pod waits for that; a
restart or GC finishes a release the crash (or a failed unwiring) interrupted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from terway.cni import config as cniconf
from terway.daemon import logfmt
from terway.daemon.adopt import adopted_for
from terway.daemon.bandwidth import pod_bandwidth
from terway.daemon.driver import AllocTimeout, Driver
from terway.daemon.events import ALLOC_FAILED, ALLOC_SUCCEED, PARSE_FAILED, EventRecorder
from terway.daemon.k8s import POD_IPS
from terway.daemon.node import EniNet, LoadedConfig
from terway.daemon.podips import PodIpsPatcher
from terway.daemon.ports import Datapath, Kube, NoopKube, PodAttachment, PodMeta, SetupResult
from terway.daemon.store import ERR_STORE, PodRecord, Resource, Store, StoreError, pod_key
from terway.datapath import modes
from terway.datapath.types import PodNetwork, PodSpec
from terway.ipam.notices import Allocation
from terway.rpc import messages as rpc

log = logfmt.get("service")
ERR_DATAPATH = "DatapathSetupFailed"
ERR_ALLOC_TIMEOUT = "AllocIPTimeout"
STICKY_ANNOTATION = "k8s.aliyun.com/pod-ip-reservation"
RELEASING = "releasing"  # PodRecord.extra key: DEL answered, unwiring not yet done
WIRING = "wiring"        # PodRecord.extra key: ADD not answered, datapath maybe half set up
PENDING = (RELEASING, WIRING)  # records GC and restart take apart


class PodService:
    """The RPC handlers' logic (transport-free: tests may call it directly)."""

    def __init__(
        self,
        driver: Driver,
        store: Store,
        datapath: Datapath,
        kube: Kube,
        events: EventRecorder,
        config: LoadedConfig,
        eni_net: EniNet,
        *,
        alloc_timeout: float = rpc.DEFAULT_TIMEOUT,
    ) -> None:
        self.driver = driver
        self.store = store
        self.datapath = datapath
        self.kube = kube
        self.events = events
        self.config = config
        self.eni_net = eni_net
        self.alloc_timeout = alloc_timeout
        self.ready = False
        self.not_ready_reason = "starting: reconciling state with the cloud"
        self._in_flight: set[str] = set()
        self._releasing: dict[str, asyncio.Task[None]] = {}
        self.pod_ips = PodIpsPatcher(kube)

    @contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        if key in self._in_flight:
            raise rpc.RpcError(rpc.ERR_IN_FLIGHT, rpc.CLASS_BUSY,
                               f"pod {key}: another request for this pod is in progress")
        self._in_flight.add(key)
        try:
            yield
        finally:
            self._in_flight.discard(key)

    async def _after_release(self, key: str) -> None:
        """Wait for this pod's answered-but-unfinished release, if any."""
        task = self._releasing.get(key)
        if task is not None:
            await asyncio.wait([task])

    async def drain(self) -> None:
        """Finish every answered release (graceful stop)."""
        if self._releasing:
            await asyncio.wait(list(self._releasing.values()))

    def busy(self, key: str) -> bool:
        """A request for this pod is being served."""
        return key in self._in_flight

    def _require_ready(self) -> None:
        if not self.ready:
            raise rpc.RpcError(rpc.ERR_NOT_READY, rpc.CLASS_TRANSIENT,
                               f"terwayd not ready: {self.not_ready_reason}")

    # -- AllocIP ------------------------------------------------------------------------------

    async def alloc(self, req: rpc.AllocIPRequest, deadline: float | None = None) -> rpc.IPInfo:
        """``deadline`` (driver clock): the ADD's budget ends then, not ``alloc_timeout`` from
        now (ExecCNI: the ADD may have waited for a worker)."""
        _check_names(req.pod_namespace, req.pod_name)
        _check_container_id(req.container_id, required=True)
        _check_cidrs(req.host_stack_cidrs)
        self._require_ready()
        key = pod_key(req.pod_namespace, req.pod_name)
        await self._after_release(key)
        with self.exclusive(key):
            started = time.monotonic()
            info = await self._alloc(key, req, self._budget(key, deadline))
            ms = (time.monotonic() - started) * 1000
            self.events.record(req.pod_namespace, req.pod_name, ALLOC_SUCCEED,
                               f"Alloc IP {info.pod_ip}/{info.prefix_len} for Pod took "
                               f"{ms:.0f}ms")
            return info

    async def _pod_meta(self, req: rpc.AllocIPRequest) -> PodMeta | None:
        """The pod's annotations/owner; no thread hop when there is no cluster (the hot path)."""
        if isinstance(self.kube, NoopKube):
            return None
        return await asyncio.to_thread(self.kube.pod, req.pod_namespace, req.pod_name)

    def _budget(self, key: str, deadline: float | None) -> float:
        if deadline is None:
            return self.alloc_timeout
        left = min(self.alloc_timeout, deadline - self.driver.clock.now())
        if left <= 0:
            raise rpc.RpcError(ERR_ALLOC_TIMEOUT, rpc.CLASS_TRANSIENT, (
                f"pod {key}: its --alloc-timeout ({self.alloc_timeout:g}s) ran out while it "
                "waited for a free ADD worker (too many ADDs in flight); retry"))
        return left

    async def _alloc(self, key: str, req: rpc.AllocIPRequest, budget: float) -> rpc.IPInfo:
        existing = self.store.get_pod(key)
        if existing is not None and existing.extra.get(WIRING):
            await self.release_pod(key, existing)  # a failed ADD's leftovers
            existing = None
        meta = await self._pod_meta(req)
        alloc = self.driver.core.allocation(key)
        if existing is not None and alloc is not None and \
                existing.container_id != req.container_id and existing.netns != req.netns:
            await self._teardown(existing)  # the old sandbox's leftovers, if any
        if alloc is None:
            self._require_writable()
            sticky = _sticky(meta, self._stateful_kinds())
            try:
                alloc = await self.driver.request(key, sticky=sticky, timeout=budget)
            except AllocTimeout as exc:
                raise _timeout_error(exc) from None
        att = self._attachment(req, alloc, meta)
        if existing is None:
            self._write_wiring(key, _record(req, alloc, att, None))
        try:
            result = await asyncio.to_thread(self.datapath.setup, att)
            self.store.put_pod(_record(req, alloc, att, result))
        except Exception as exc:
            await self._roll_back(key, att, existing is None)
            raise _setup_error(key, exc) from None
        self._annotate_ips(req, att.net.pod_ip, meta)
        return _ip_info(att, alloc, result)

    def _annotate_ips(self, req: rpc.AllocIPRequest, ips: str, meta: PodMeta | None) -> None:
        """Upstream's ``k8s.aliyun.com/pod-ips`` (``enable_patch_pod_ips``), only when the pod
        read at this ADD carries another value; queued, never awaited (terway/daemon/podips.py).
        ``meta`` None: no cluster, or the API says the pod does not exist."""
        if meta is None or not self.config.eni_conf.enable_patch_pod_ips:
            return
        if meta.annotations.get(POD_IPS) != ips:
            self.pod_ips.submit(req.pod_namespace, req.pod_name, ips)

    def _write_wiring(self, key: str, record: PodRecord) -> None:
        """Make the coming setup known to the store; on failure give the address back."""
        try:
            self.store.put_pod(record)
        except StoreError as exc:
            self.driver.release(key)
            raise _store_error(exc) from None

    async def _roll_back(self, key: str, att: PodAttachment, new_pod: bool) -> None:
        """Undo a failed ADD. A new pod loses its record and address; a known pod keeps both
        (the runtime saw its address; GC re-wires it). What cannot be undone now stays marked
        ``wiring`` for GC and restart."""
        log.warning("ADD failed after allocation; rolling back", extra=logfmt.fields(pod=key))
        unwired = await self._teardown_net(att)
        if not new_pod or not unwired:
            return
        try:
            self.store.delete_pod(key)
        except StoreError as exc:
            log.error("rollback incomplete: record kept for GC", extra=logfmt.fields(
                pod=key, error=str(exc)))
            return
        self.driver.release(key)

    def _require_writable(self) -> None:
        """Refuse at once, not after the allocation timeout, while the store cannot write."""
        err = self.store.writable()
        if err is not None:
            raise _store_error(err)

    def _stateful_kinds(self) -> tuple[str, ...]:
        return tuple(self.config.eni_conf.custom_stateful_workload_kinds)

    def _attachment(self, req: rpc.AllocIPRequest, alloc: Allocation,
                    meta: PodMeta | None) -> PodAttachment:
        gateway, cidr = self.eni_net(alloc.mac)
        def bad(annotation: str, value: str) -> None:   # upstream's event, word for word
            way = "ingress" if "ingress" in annotation else "egress"
            self.events.record(req.pod_namespace, req.pod_name, PARSE_FAILED,
                               f"Parse {way} bandwidth {value} failed.", warning=True)

        ingress, egress = pod_bandwidth(meta, req.ingress_bps, req.egress_bps, bad)
        net = PodNetwork(
            pod_ip=alloc.ip, gateway=gateway, eni_mac=alloc.mac, prefix_len=_prefix_len(cidr),
            mtu=req.mtu or self.config.mtu, ingress_bps=ingress, egress_bps=egress,
            service_cidr=self.config.service_cidr, host_stack_cidrs=req.host_stack_cidrs,
            disable_host_peer=self.config.disable_host_peer)
        pod = PodSpec(req.pod_namespace, req.pod_name, req.netns, req.ifname)
        return PodAttachment(pod, req.container_id, self.config.datapath, cidr, net)

    # -- ReleaseIP ----------------------------------------------------------------------------

    async def release(self, req: rpc.ReleaseIPRequest) -> rpc.ReleaseIPReply:
        _check_names(req.pod_namespace, req.pod_name)
        _check_container_id(req.container_id, required=False)
        self._require_ready()
        key = pod_key(req.pod_namespace, req.pod_name)
        await self._after_release(key)
        with self.exclusive(key):
            rec = self.store.get_pod(key)
            if rec is not None and req.container_id and rec.container_id and \
                    rec.container_id != req.container_id:   # "": adopted, sandbox unknown
                log.info("release ignored: stale container id", extra=logfmt.fields(
                    pod=key, container=req.container_id, current=rec.container_id))
                return rpc.ReleaseIPReply(released=False)
            if rec is None:
                adopted = adopted_for(self.store, req.pod_namespace, req.pod_name)
                if adopted is not None:  # wired before our records: unwire it as this pod
                    as_pod = replace(adopted, namespace=req.pod_namespace, name=req.pod_name)
                    return rpc.ReleaseIPReply(released=await self.release_pod(
                        adopted.key, adopted, network_of(as_pod)))
                return rpc.ReleaseIPReply(released=await self.release_pod(key, None))
            rec = replace(rec, extra={**rec.extra, RELEASING: "1"})
            try:
                self.store.put_pod(rec)  # durable before the answer: a restart finishes it
            except StoreError as exc:
                raise _store_error(exc) from None
        self._in_flight.add(key)     # (no await since the with: nobody slipped in)
        self._releasing[key] = asyncio.create_task(self._release_after_answer(key, rec))
        return rpc.ReleaseIPReply(released=True)

    async def _release_after_answer(self, key: str, rec: PodRecord) -> None:
        try:
            await self.release_pod(key, rec)
        except Exception:
            log.error("release failed", exc_info=True, extra=logfmt.fields(pod=key))
        finally:
            self._in_flight.discard(key)
            self._releasing.pop(key, None)

    async def finish_pending(self) -> list[str]:
        """Finish the releases and roll back the ADDs a crash or a failure left undone (at
        start-up, and from GC for pods no request is serving); returns their keys."""
        done = []
        for rec in self.store.pods():
            if any(rec.extra.get(flag) for flag in PENDING) and not self.busy(rec.key):
                with self.exclusive(rec.key):
                    if await self.release_pod(rec.key, rec):
                        done.append(rec.key)
        return done

    async def release_pod(self, key: str, rec: PodRecord | None,
                          att: PodAttachment | None = None) -> bool:
        """Unwire (``att``, default: the record's) and give the address back; True when
        something was held. When unwiring fails the record stays (marked ``releasing``) and the
        address held: GC tries again, and the address is never handed to a pod while the old
        one's interface may exist."""
        if rec is not None:
            att = att or network_of(rec)
            if att is not None and not await self._teardown_net(att):
                self._keep_for_gc(rec)
                return True
            self.store.delete_pod(key)
        released = self.driver.release(key)
        if rec is not None or released is not None:
            log.info("released pod address", extra=logfmt.fields(
                pod=key, ip=released.ip if released else ""))
        return rec is not None or released is not None

    def _keep_for_gc(self, rec: PodRecord) -> None:
        if rec.extra.get(RELEASING) or rec.extra.get(WIRING):
            return
        try:
            self.store.put_pod(replace(rec, extra={**rec.extra, RELEASING: "1"}))
        except StoreError as exc:
            log.error("cannot mark pod for GC", extra=logfmt.fields(pod=rec.key, error=str(exc)))

    async def _teardown(self, rec: PodRecord) -> bool:
        att = network_of(rec)
        return True if att is None else await self._teardown_net(att)

    async def _teardown_net(self, att: PodAttachment) -> bool:
        try:
            await asyncio.to_thread(self.datapath.teardown, att)
        except Exception as exc:
            log.warning("datapath teardown failed", extra=logfmt.fields(
                pod=att.pod_key, error=str(exc)))
            return False
        return True

    # -- GetIPInfo / RecordEvent / Status / GC --------------------------------------------------

    async def get_ip_info(self, req: rpc.GetIPInfoRequest) -> rpc.IPInfo:
        _check_names(req.pod_namespace, req.pod_name)
        key = pod_key(req.pod_namespace, req.pod_name)
        rec = self.store.get_pod(key)
        if rec is None or (req.container_id and rec.container_id != req.container_id) or \
                any(rec.extra.get(flag) for flag in PENDING):
            raise rpc.RpcError(rpc.ERR_UNKNOWN_CONTAINER, rpc.CLASS_NOT_FOUND,
                               f"pod {key}: no address held for container {req.container_id}")
        att = network_of(rec)
        assert att is not None
        problems = await asyncio.to_thread(self.datapath.check, att)
        info = _ip_info(att, None, _setup_of(rec), ip_type=rec.ip_type)
        return info._replace(problems=tuple(problems))

    async def record_event(self, req: rpc.RecordEventRequest) -> rpc.Empty:
        self.events.record(req.pod_namespace, req.pod_name, req.reason, req.message,
                           warning=req.reason == ALLOC_FAILED)
        return rpc.Empty()

    def status(self) -> rpc.StatusReply:
        if not self.ready:
            return rpc.StatusReply(False, self.not_ready_reason)
        broken = self.store.writable()
        if broken is not None:
            return rpc.StatusReply(False, f"state store not writable: {broken}")
        cond = self.driver.condition
        stats = self.driver.core.stats()
        if cond is not None and not cond.status and stats.idle == 0:
            return rpc.StatusReply(False, f"no IPs can be had: {cond.message}")
        return rpc.StatusReply(True, "")

    async def gc(self, req: rpc.GCRequest) -> rpc.GCReply:
        """CNI GC: release every pod whose attachment the runtime no longer lists, and every
        address the pool holds for a pod the store does not know."""
        self._require_ready()
        valid = {a.container_id for a in req.valid_attachments}
        released: list[str] = []
        for rec in self.store.pods():
            if rec.container_id in valid or self.busy(rec.key) or not rec.container_id:
                continue      # no container id: adopted, its sandbox unknown; GC judges it
            with self.exclusive(rec.key):
                if await self.release_pod(rec.key, rec):
                    released.append(rec.container_id)
        self.release_orphans()
        return rpc.GCReply(released=tuple(released))

    def release_orphans(self) -> list[str]:
        """Addresses the pool gives pods that have no record (and no request in flight): no
        answer ever carried them, so nothing can be using them."""
        known = {rec.key for rec in self.store.pods()}
        orphans = [k for k in self.driver.core.owner_keys()
                   if k not in known and not self.busy(k)]
        for key in orphans:
            released = self.driver.release(key)
            log.warning("released an address no record holds", extra=logfmt.fields(
                pod=key, ip=released.ip if released else ""))
        return orphans


# -- helpers ---------------------------------------------------------------------------------


def _check_names(namespace: str, name: str) -> None:
    """The plugin's own rules (terway/cni/config.py), for whoever calls without it."""
    if not namespace:
        raise rpc.invalid("params.pod_namespace: must not be empty")
    if not name:
        raise rpc.invalid("params.pod_name: must not be empty")
    if not cniconf.namespace_ok(namespace):
        raise rpc.invalid(f"params.pod_namespace: {namespace[:80]!a} is not a Kubernetes "
                          f"namespace name ({cniconf.NAMESPACE_RULE})")
    if not cniconf.pod_name_ok(name):
        raise rpc.invalid(f"params.pod_name: {name[:80]!a} is not a pod name "
                          f"({cniconf.POD_NAME_RULE})")


def _check_cidrs(cidrs: tuple[str, ...]) -> None:
    for i, cidr in enumerate(cidrs):
        problem = cniconf.cidr_problem(cidr)
        if problem:
            raise rpc.invalid(f"params.host_stack_cidrs[{i}]: {problem}")


def _check_container_id(cid: str, *, required: bool) -> None:
    if (cid or required) and not cniconf.container_id_ok(cid):
        raise rpc.invalid(f"params.container_id: {cid[:80]!a} is not a container ID "
                          f"({cniconf.CONTAINER_ID_RULE})")


def _sticky(meta: PodMeta | None, kinds: tuple[str, ...] = ()) -> bool:
    """A StatefulSet's pod (or one of ``custom_stateful_workload_kinds``, e.g. an OpenKruise
    AdvancedStatefulSet, compared trimmed and case-blind as upstream), or a pod asking for it
    (Go's ``strconv.ParseBool`` true: 1, t, true in any case), keeps its address."""
    if meta is None:
        return False
    stateful = {"statefulset", *(k.strip().lower() for k in kinds)}
    return meta.owner_kind.strip().lower() in stateful or \
        meta.annotations.get(STICKY_ANNOTATION, "").strip() in ("1", "t", "T", "true", "TRUE",
                                                                 "True")


def _store_error(exc: StoreError) -> rpc.RpcError:
    return rpc.RpcError(ERR_STORE, rpc.CLASS_TRANSIENT, str(exc))


def _setup_error(key: str, exc: Exception) -> rpc.RpcError:
    if isinstance(exc, StoreError):
        return _store_error(exc)
    return rpc.RpcError(ERR_DATAPATH, rpc.CLASS_TRANSIENT,
                        f"pod {key}: datapath setup failed: {exc}")


def _timeout_error(exc: AllocTimeout) -> rpc.RpcError:
    if exc.cause is not None:
        return rpc.RpcError(exc.cause.code, exc.cause.error_class.value, str(exc))
    return rpc.RpcError(ERR_ALLOC_TIMEOUT, rpc.CLASS_TRANSIENT, str(exc))


def _prefix_len(vswitch_cidr: str) -> int:
    """The vSwitch CIDR's prefix length (32 when unknown: an adopted pod's record)."""
    return ipaddress.ip_network(vswitch_cidr, strict=False).prefixlen if vswitch_cidr else 32


def _record(req: rpc.AllocIPRequest, alloc: Allocation, att: PodAttachment,
            result: SetupResult | None) -> PodRecord:
    """The pod's record; without a setup result it is marked ``wiring`` (setup not done).
    ``prefix_len`` is the pod's (the CNI result's); the datapath's is read from the CIDR."""
    rtype = "eni" if alloc.exclusive else "eniIp"
    if result is None:
        done = _record(req, alloc, att, SetupResult())
        return replace(done, extra={**done.extra, WIRING: "1"})
    net = att.net
    extra = {
        "gateway": net.gateway, "vswitch_cidr": att.vswitch_cidr,
        "prefix_len": str(att.pod_prefix_len), "service_cidr": net.service_cidr,
        "datapath": att.mode, "mtu": str(net.mtu), "ingress_bps": str(net.ingress_bps),
        "egress_bps": str(net.egress_bps), "disable_host_peer": str(net.disable_host_peer),
        "host_stack_cidrs": ",".join(net.host_stack_cidrs),
        "pod_mac": result.pod_mac, "host_ifname": result.host_ifname,
        "host_mac": result.host_mac,
        "eni_ifindex": "" if result.eni_ifindex is None else str(result.eni_ifindex),
        "vswitch_id": alloc.vswitch_id,
    }
    return PodRecord(
        namespace=req.pod_namespace, name=req.pod_name, container_id=req.container_id,
        netns=req.netns, ifname=req.ifname, ip_type=rtype,
        resources=(Resource(rtype, alloc.eni_id, alloc.mac, alloc.ip),), extra=extra)


def network_of(rec: PodRecord) -> PodAttachment | None:
    """Rebuild the pod's attachment from a record (for teardown, check, re-setup)."""
    if not rec.resources:
        return None
    res = rec.resources[0]
    x = rec.extra
    cidr = x.get("vswitch_cidr", "")
    net = PodNetwork(
        pod_ip=res.ip, gateway=x.get("gateway", ""), eni_mac=res.mac,
        prefix_len=_prefix_len(cidr), mtu=int(x.get("mtu", "1500") or 1500),
        ingress_bps=int(x.get("ingress_bps", "0") or 0),
        egress_bps=int(x.get("egress_bps", "0") or 0), service_cidr=x.get("service_cidr", ""),
        host_stack_cidrs=tuple(c for c in x.get("host_stack_cidrs", "").split(",") if c),
        disable_host_peer=x.get("disable_host_peer") == "True")
    pod = PodSpec(rec.namespace, rec.name, rec.netns, rec.ifname)
    mode = x.get("datapath", modes.DEFAULT.name)
    return PodAttachment(pod, rec.container_id, mode, cidr, net)


def _setup_of(rec: PodRecord) -> SetupResult:
    x = rec.extra
    idx = x.get("eni_ifindex", "")
    return SetupResult(pod_mac=x.get("pod_mac", ""), host_ifname=x.get("host_ifname", ""),
                       host_mac=x.get("host_mac", ""), eni_ifindex=int(idx) if idx else None)


def _ip_info(att: PodAttachment, alloc: Allocation | None, result: SetupResult,
             ip_type: str | None = None) -> rpc.IPInfo:
    exclusive = (alloc.exclusive if alloc is not None else ip_type == "eni")
    net = att.net
    return rpc.IPInfo(
        ip_type=rpc.IP_TYPE_ENI if exclusive else rpc.IP_TYPE_ENIIP, pod_ip=net.pod_ip,
        prefix_len=att.pod_prefix_len, gateway=net.gateway, eni_mac=net.eni_mac,
        vswitch_cidr=att.vswitch_cidr, service_cidr=net.service_cidr,
        eni_ifindex=result.eni_ifindex, ingress_bps=net.ingress_bps, egress_bps=net.egress_bps,
        datapath=att.mode, ifname=att.pod.ifname, pod_mac=result.pod_mac,
        host_ifname=result.host_ifname, host_mac=result.host_mac, mtu=net.mtu)
