"""The running fabric: a worker thread converging the kernel to the cloud model.

Woken by the model's events (``cloud.subscribe``) and, as a safety net and to drive the model's
lazily applied Attaching→InUse transitions, by a short poll. Each wake-up reads the whole model
(``desired.read``) and applies the difference (``Plumber.apply``): level-triggered, so coalesced
or missed events cannot leave the kernel out of step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from . import desired as desired_mod
from .netns import FabricError, ip, netns_exists
from .plumber import Plumber
from .proxy import API_IP, METADATA_IP, RouterServices
from .registry import Registry

log = logging.getLogger("emulator.fabric")


class Fabric:
    """Nodes as network namespaces for one cloud model; ``stop()`` removes everything it made."""

    def __init__(self, cloud: Any, http_port: int, http_host: str = "127.0.0.1",
                 poll_interval: float = 0.2) -> None:
        self.cloud = cloud
        self.upstream = (http_host, http_port)
        self.poll_interval = poll_interval
        self.registry = Registry()
        self.plumber = Plumber(self.registry, on_router=self._router_up)
        self._services: dict[str, RouterServices] = {}
        self._owners: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()        # one converge at a time
        self._started = 0                    # converges begun / finished (for sync())
        self._finished = 0
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None
        self.last_error: str | None = None
        self._gone: list[str] = []

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> Fabric:
        if os.geteuid() != 0:
            raise FabricError("the netns fabric needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
        subscribe = getattr(self.cloud, "subscribe", None)
        if callable(subscribe):
            self._unsubscribe = subscribe(lambda _event: self._wake.set())
        try:
            self._converge()
            if self.last_error is not None:
                raise FabricError(f"fabric failed to come up: {self.last_error}")
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._run, name="fabric", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Tear everything down (idempotent): worker, proxies, node and router namespaces."""
        self._stop.set()
        self._wake.set()
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._unsubscribe()
            self._unsubscribe = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        with self._lock:
            self.plumber.teardown(keep_routers=True)
            for services in self._services.values():
                services.close()
            self._services.clear()
            self.plumber.teardown()
            self.registry.close()

    def __enter__(self) -> Fabric:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries -----------------------------------------------------------------------------
    def sync(self, timeout: float = 10.0) -> None:
        """Block until a converge that started after this call has finished (tests, tools)."""
        with self._done:
            target = self._started + 1   # the one running now may have read stale state
            self._wake.set()
            if not self._done.wait_for(lambda: self._finished >= target or self._stop.is_set(),
                                       timeout):
                raise FabricError(f"fabric did not converge within {timeout}s")

    def owner_of(self, address: str) -> str | None:
        """The instance whose plugged ENI holds ``address`` (node or pod IP), if any."""
        return self._owners.get(address)

    def node_links(self, instance_id: str) -> dict[str, str]:
        """ENI id → interface name inside the node namespace, as plugged now."""
        node = self.plumber.nodes.get(instance_id)
        return {} if node is None else {e: p.node_link for e, p in node.enis.items()}

    @property
    def routers(self) -> list[str]:
        return sorted(self.plumber.routers)

    def vanished(self) -> list[str]:
        """Namespaces this fabric made that are gone although it did not remove them (someone
        else deleted them: a test bed then breaks in ways that hide the cause)."""
        with self._lock:
            return self._missing()

    def _missing(self) -> list[str]:
        return sorted(n for n in (*self.plumber.routers, *self.plumber.nodes)
                      if not netns_exists(n))

    # -- internals ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._converge()

    def _report_vanished(self) -> None:
        gone = self._missing()
        if gone and gone != self._gone:
            log.error("fabric namespaces vanished (deleted by someone else): %s", ", ".join(gone),
                      extra={"fields": {"netns": ",".join(gone)}})
        self._gone = gone

    def _converge(self) -> None:
        with self._lock:
            if self._stop.is_set() and self._thread is not None:
                return
            with self._done:
                self._started += 1
                generation = self._started
            try:
                self.plumber.apply(desired_mod.read(self.cloud))
                self.last_error = None
            except Exception as exc:  # keep serving; the next wake-up retries
                if str(exc) != self.last_error:
                    log.warning("fabric converge failed", extra={"fields": {"error": str(exc)}})
                self.last_error = str(exc)
            self._owners = self.plumber.owners()
            self._report_vanished()
            with self._done:
                self._finished = generation
                self._done.notify_all()

    def _router_up(self, router_ns: str) -> None:
        for addr in (METADATA_IP, API_IP):
            ip("addr", "add", f"{addr}/32", "dev", "lo", ns=router_ns)
        self._services[router_ns] = RouterServices(router_ns, self.upstream, self.owner_of)
