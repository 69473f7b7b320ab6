"""Pod events (``AllocIPSucceed`` / ``AllocIPFailed``): kept in a ring, logged, sent to Kubernetes.

The ring lets tests and operators see what would have reached the API server on a node that
has none; the Kubernetes call is made in a worker thread and never delays the CNI answer.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass

from terway.daemon import logfmt
from terway.daemon.ports import Kube

ALLOC_SUCCEED = "AllocIPSucceed"
ALLOC_FAILED = "AllocIPFailed"
log = logfmt.get("events")


@dataclass(frozen=True)
class PodEvent:
    namespace: str
    name: str
    reason: str
    message: str
    warning: bool
    at: float


class EventRecorder:
    def __init__(self, kube: Kube, keep: int = 256) -> None:
        self.kube = kube
        self.recent: collections.deque[PodEvent] = collections.deque(maxlen=keep)
        self._tasks: set[asyncio.Future[None]] = set()

    def record(self, namespace: str, name: str, reason: str, message: str,
               warning: bool = False) -> None:
        event = PodEvent(namespace, name, reason, message, warning, time.time())
        self.recent.append(event)
        log.info("pod event", extra=logfmt.fields(pod=f"{namespace}/{name}", reason=reason,
                                                  message=message))
        if self.kube.enabled:
            task = asyncio.ensure_future(asyncio.to_thread(
                self.kube.record_event, namespace, name, reason, message, warning))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
