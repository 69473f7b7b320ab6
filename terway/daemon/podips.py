"""``k8s.aliyun.com/pod-ips`` after a successful ADD (eni_conf ``enable_patch_pod_ips``, on by
default as upstream), written off the CNI's path.

Upstream patches from inside AllocIP, after reading the pod from its informer cache, only when
the annotation differs, and drops any error. Here the ADD only hands the value to one worker
thread and answers at once: an API server that is slow, rate-limited (``kube_client_qps``) or
down never delays an ADD nor takes the threads the datapath runs in. The worker keeps the latest
value per pod (a pod re-added before its patch went out is patched once, with its last value);
a failure is logged by ``KubeApi.patch_pod_ips`` and not retried (upstream: not even logged),
the next ADD of the pod writes it again.
"""

from __future__ import annotations

import threading

from terway.daemon import logfmt
from terway.daemon.ports import Kube

log = logfmt.get("podips")


class PodIpsPatcher:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._pending: dict[tuple[str, str], str] = {}
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._busy = False

    def submit(self, namespace: str, name: str, ips: str) -> None:
        """Queue the patch and return at once (never blocks on the API server)."""
        with self._cond:
            if self._closed:
                return
            self._pending[(namespace, name)] = ips
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="pod-ips", daemon=True)
                self._worker.start()
            self._cond.notify()

    def idle(self) -> bool:
        """Nothing queued and no patch in progress (for tests and a graceful stop)."""
        with self._cond:
            return not self._pending and not self._busy

    def close(self) -> None:
        """Drop what is queued and stop the worker (a patch under way finishes)."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                (namespace, name), ips = next(iter(self._pending.items()))
                del self._pending[(namespace, name)]
                self._busy = True
            try:
                self.kube.patch_pod_ips(namespace, name, ips)
            except Exception as exc:   # KubeApi logs its own failures; a fake may raise
                log.warning("annotating pod with its IPs failed", extra=logfmt.fields(
                    pod=f"{namespace}/{name}", error=str(exc)))
            finally:
                with self._cond:
                    self._busy = False
