"""Pod events (``AllocIPSucceed`` / ``AllocIPFailed``) and node events (a cloud failure while
allocating, as upstream's ``AllocIPFailed`` warning on the Node): kept in a ring, logged, sent to
Kubernetes. The same node event is sent at most once a minute (a retry storm is one event).

The ring lets tests and operators see what would have reached the API server on a node that
has none; the Kubernetes call is made in a worker thread and never delays the CNI answer.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from terway.daemon import logfmt
from terway.daemon.ports import Kube

ALLOC_SUCCEED = "AllocIPSucceed"
ALLOC_FAILED = "AllocIPFailed"
PARSE_FAILED = "ParseFailed"   # a pod annotation that could not be read
log = logfmt.get("events")


@dataclass(frozen=True)
class PodEvent:
    namespace: str
    name: str
    reason: str
    message: str
    warning: bool
    at: float


NODE_EVENT_EVERY = 60.0  # seconds between two identical node events


class EventRecorder:
    def __init__(self, kube: Kube, keep: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.recent: collections.deque[PodEvent] = collections.deque(maxlen=keep)
        self._tasks: set[asyncio.Future[None]] = set()
        self._clock = clock
        self._node_sent: dict[tuple[str, str], float] = {}

    def record_node(self, reason: str, message: str, warning: bool = True,
                    same_as: str = "") -> None:
        """An event on the node itself (``namespace`` "" in the ring). Events with the same
        reason and ``same_as`` (e.g. the cloud's error code; default: the message) within a
        minute are one."""
        now = self._clock()
        key = (reason, same_as or message)
        last = self._node_sent.get(key)
        if last is not None and now - last < NODE_EVENT_EVERY:
            return
        self._node_sent[key] = now
        self.recent.append(PodEvent("", "", reason, message, warning, time.time()))
        log.warning("node event", extra=logfmt.fields(reason=reason, message=message))
        if self.kube.enabled:
            task = asyncio.ensure_future(asyncio.to_thread(
                self.kube.record_node_event, reason, message, warning))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

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
