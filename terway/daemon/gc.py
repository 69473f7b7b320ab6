"""Periodic GC: release the addresses of pods that are gone, re-sync the routes of the others.

A pod is gone when its netns no longer exists, or — with a Kubernetes API — when the API server
says so. With an API server the netns alone is not enough (upstream double-checks too): a pod
whose sandbox is being recreated keeps its address. Pods with a request in flight are skipped.
Adopted pods (running before our records: adopt.py, migrate.py) are judged by what is known of
them (``adopted_alive``).

Every live pod's datapath is then set up again (it is idempotent), as upstream's GC re-syncs
routes: a host route or rule deleted by hand or by another agent comes back within a period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from terway.daemon import logfmt
from terway.daemon.adopt import ADOPTED_NAMESPACE, is_adopted
from terway.daemon.clock import Clock
from terway.daemon.node import netns_exists
from terway.daemon.ports import Kube
from terway.daemon.service import PENDING, PodService, network_of
from terway.daemon.store import PodRecord
from terway.datapath import modes

log = logfmt.get("gc")


async def is_gone(rec: PodRecord, kube: Kube) -> bool:
    if kube.enabled:
        exists = await asyncio.to_thread(kube.pod_exists, rec.namespace, rec.name)
        return exists is False
    return not netns_exists(rec.netns)


async def gc_once(service: PodService, kube: Kube) -> list[str]:
    """Release every gone pod now, finish what failures left undone (releases whose unwiring
    failed, ADDs not rolled back, addresses without a record); returns the pods' keys."""
    released = await service.finish_pending()
    service.release_orphans()
    wired: dict[str, str] | None = None

    async def routed(ip: str) -> bool:
        nonlocal wired
        if wired is None:
            wired = await asyncio.to_thread(service.datapath.wired_pods)
        return ip in wired

    for rec in service.store.pods():
        if is_adopted(rec):
            if service.busy(rec.key) or await adopted_alive(rec, kube, routed):
                continue
        elif service.busy(rec.key) or not await is_gone(rec, kube):
            continue
        if service.busy(rec.key):
            continue
        with service.exclusive(rec.key):
            current = service.store.get_pod(rec.key)
            if current is None or current.container_id != rec.container_id:
                continue
            await service.release_pod(rec.key, current)
        log.info("gc released pod", extra=logfmt.fields(pod=rec.key, netns=rec.netns))
        released.append(rec.key)
    return released


async def adopted_alive(rec: PodRecord, kube: Kube,
                        routed: Callable[[str], Awaitable[bool]]) -> bool:
    """An adopted pod (terway/daemon/adopt.py, migrate.py) lives while: known by name, the API
    server has it (with a cluster), else its netns exists (when upstream's file said it); else,
    and for pods found by their route, its ``cali*`` route is there. A pod known by name with
    none of these to judge by (no cluster, no netns, not veth) is kept until its DEL."""
    if rec.namespace != ADOPTED_NAMESPACE:
        if kube.enabled:
            exists = await asyncio.to_thread(kube.pod_exists, rec.namespace, rec.name)
            return exists is not False
        if rec.netns:
            return netns_exists(rec.netns)
        mode = modes.REGISTRY.get(rec.extra.get("datapath", modes.DEFAULT.name))
        if mode is None or not mode.host_veth:
            return True
    return await routed(rec.resources[0].ip)


async def resync_once(service: PodService, records: list[PodRecord] | None = None) -> list[str]:
    """Re-run the idempotent datapath set-up of every live pod; returns their keys."""
    done: list[str] = []
    for rec in service.store.pods() if records is None else records:
        net = network_of(rec)
        if net is None or service.busy(rec.key) or not netns_exists(rec.netns) or \
                any(rec.extra.get(flag) for flag in PENDING) or is_adopted(rec):
            continue
        try:
            await asyncio.to_thread(service.datapath.setup, net)
        except Exception as exc:
            log.warning("re-running datapath failed", extra=logfmt.fields(
                pod=rec.key, error=str(exc)))
            continue
        done.append(rec.key)
    return done


async def gc_loop(service: PodService, kube: Kube, clock: Clock, period: float) -> None:
    while True:
        await clock.sleep(period)
        try:
            await gc_once(service, kube)
            synced = await resync_once(service)
            log.debug("routes re-synced", extra=logfmt.fields(pods=len(synced)))
        except Exception:
            log.error("gc failed", exc_info=True)
