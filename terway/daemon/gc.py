"""Periodic GC: release the addresses of pods that are gone.

A pod is gone when its netns no longer exists, or — with a Kubernetes API — when the API server
says so. With an API server the netns alone is not enough (upstream double-checks too): a pod
whose sandbox is being recreated keeps its address. Pods with a request in flight are skipped.
"""

from __future__ import annotations

import asyncio

from terway.daemon import logfmt
from terway.daemon.clock import Clock
from terway.daemon.node import netns_exists
from terway.daemon.ports import Kube
from terway.daemon.service import PodService
from terway.daemon.store import PodRecord

log = logfmt.get("gc")


async def is_gone(rec: PodRecord, kube: Kube) -> bool:
    if kube.enabled:
        exists = await asyncio.to_thread(kube.pod_exists, rec.namespace, rec.name)
        return exists is False
    return not netns_exists(rec.netns)


async def gc_once(service: PodService, kube: Kube) -> list[str]:
    """Release every gone pod now; returns their keys."""
    released: list[str] = []
    for rec in service.store.pods():
        if service.busy(rec.key) or not await is_gone(rec, kube):
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


async def gc_loop(service: PodService, kube: Kube, clock: Clock, period: float) -> None:
    while True:
        await clock.sleep(period)
        try:
            await gc_once(service, kube)
        except Exception:
            log.error("gc failed", exc_info=True)
