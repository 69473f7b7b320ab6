"""The Kubernetes API (official ``kubernetes`` client), used only when a cluster is reachable.

Chosen when ``--kubeconfig`` is given or the in-cluster environment exists
(``KUBERNETES_SERVICE_HOST``); otherwise the daemon runs with ``NoopKube``. Every call is best
effort: a failure is logged and the daemon carries on (address management never depends on the
API server). Verified against a real API server (upstream kube-apiserver) by tests/kube/ on the
cluster test bed; see docs/kube.md.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from terway.cloud.ratelimit import TokenBucket
from terway.daemon import logfmt
from terway.daemon.ports import Kube, NodePod, NoopKube, PodMeta

log = logfmt.get("k8s")
COMPONENT = "terway-daemon"
NODE_CONFIG_LABEL = "terway-config"           # node label: name of the node's own ConfigMap
NODE_CONFIG_NAMESPACE = "kube-system"
NODE_CONFIG_KEY = "eni_conf"
KUBEADM_CONFIG = "kubeadm-config"             # kube-system ConfigMap: the service CIDR fallback
MAX_AVAILABLE_IP = "k8s.aliyun.com/max-available-ip"
POD_IPS = "k8s.aliyun.com/pod-ips"       # pod: its addresses, comma-separated (upstream's)


def kube_from_env(kubeconfig: str | None, node_name: str) -> Kube:
    """``KubeApi`` when a cluster is configured, else ``NoopKube``."""
    if not kubeconfig and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return NoopKube()
    if not node_name:
        log.warning("Kubernetes configured but no node name (--node-name / NODE_NAME); "
                    "node condition and annotation are disabled")
    try:
        return KubeApi(kubeconfig, node_name)
    except Exception as exc:
        log.warning("Kubernetes client setup failed; running without it",
                    extra=logfmt.fields(error=str(exc)))
        return NoopKube()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


DEFAULT_QPS, DEFAULT_BURST = 5.0, 10   # client-go's, what upstream gets with 0


class RateLimited:
    """Every call of the wrapped API object waits for a token first (client-go's QPS/burst:
    the API server sees at most ``qps`` requests a second from this node, after a burst)."""

    def __init__(self, api: Any, bucket: TokenBucket,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._api, self.bucket, self._sleep, self._now = api, bucket, sleep, now

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if not callable(attr):
            return attr

        def limited(*args: Any, **kwargs: Any) -> Any:
            wait = self.bucket.reserve(self._now())
            if wait > 0:
                self._sleep(wait)
            return attr(*args, **kwargs)

        return limited


def rate_limited(api: Any, qps: float, burst: int) -> RateLimited:
    """eni_conf's ``kube_client_qps``/``kube_client_burst`` (0: client-go's defaults)."""
    return RateLimited(api, TokenBucket(qps or DEFAULT_QPS, burst or DEFAULT_BURST,
                                        now=time.monotonic()))


class KubeApi:
    enabled = True

    def __init__(self, kubeconfig: str | None, node_name: str) -> None:
        from kubernetes import client, config

        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        else:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        self._client = client
        self.core: Any = rate_limited(client.CoreV1Api(), DEFAULT_QPS, DEFAULT_BURST)
        self.node_name = node_name
        # Pod UIDs seen by pod(): an event must name its pod's UID, or `kubectl describe pod`
        # (which selects events by involvedObject.uid) does not show it.
        self._uids: dict[tuple[str, str], str] = {}
        self._node_uid_cache: str | None = None

    def set_rate_limit(self, qps: float, burst: int) -> None:
        """Apply eni_conf's client limits (known only once the config is read)."""
        self.core = rate_limited(self.core._api, qps, burst)

    def _status(self, exc: Exception) -> int:
        return int(getattr(exc, "status", 0) or 0)

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        try:
            pod: Any = self.core.read_namespaced_pod(name, namespace)
        except Exception as exc:
            if self._status(exc) == 404:
                return None
            log.warning("reading pod failed", extra=logfmt.fields(
                pod=f"{namespace}/{name}", error=str(exc)))
            return PodMeta()
        owners = pod.metadata.owner_references or []
        self._remember_uid(namespace, name, str(pod.metadata.uid or ""))
        return PodMeta(annotations=dict(pod.metadata.annotations or {}),
                       owner_kind=str(owners[0].kind) if owners else "")

    def pod_exists(self, namespace: str, name: str) -> bool | None:
        try:
            self.core.read_namespaced_pod(name, namespace)
        except Exception as exc:
            return False if self._status(exc) == 404 else None
        return True

    def node_pods(self) -> list[NodePod] | None:
        """Upstream's ``GetLocalPods``: one list of the pods on this node, phase neither
        Succeeded nor Failed (field selectors, served from the API server's cache as upstream:
        resourceVersion 0), hostNetwork pods left out. Needs ``list`` on pods."""
        if not self.node_name:
            return None
        selector = (f"spec.nodeName={self.node_name},status.phase!=Succeeded,"
                    "status.phase!=Failed")
        try:
            found: Any = self.core.list_pod_for_all_namespaces(field_selector=selector,
                                                               resource_version="0")
        except Exception as exc:
            log.warning("listing this node's pods failed", extra=logfmt.fields(
                node=self.node_name, error=str(exc)[:200]))
            return None
        out = []
        for pod in found.items or []:
            if pod.spec is None or pod.spec.host_network:
                continue
            status = pod.status
            listed = (getattr(status, "pod_ips", None) or getattr(status, "pod_i_ps", None)
                      or []) if status else []    # the client's name for podIPs changed
            ips = [str(p.ip) for p in listed if p.ip]
            if status and status.pod_ip and status.pod_ip not in ips:
                ips.append(str(status.pod_ip))
            out.append(NodePod(str(pod.metadata.namespace), str(pod.metadata.name), tuple(ips)))
        return out

    def _remember_uid(self, namespace: str, name: str, uid: str) -> None:
        if len(self._uids) > 4096:          # bounded: pods come and go
            self._uids.clear()
        if uid:
            self._uids[(namespace, name)] = uid

    def _uid(self, namespace: str, name: str) -> str | None:
        uid = self._uids.get((namespace, name))
        if uid is None:
            try:
                pod: Any = self.core.read_namespaced_pod(name, namespace)
                uid = str(pod.metadata.uid or "") or None
            except Exception:
                return None
        return uid

    def record_event(self, namespace: str, name: str, reason: str, message: str,
                     warning: bool) -> None:
        c = self._client
        now = _now()
        event = c.CoreV1Event(
            metadata=c.V1ObjectMeta(generate_name=f"{name}.", namespace=namespace),
            involved_object=c.V1ObjectReference(kind="Pod", name=name, namespace=namespace,
                                                uid=self._uid(namespace, name),
                                                api_version="v1"),
            reason=reason, message=message, type="Warning" if warning else "Normal",
            source=c.V1EventSource(component=COMPONENT, host=self.node_name),
            first_timestamp=now, last_timestamp=now, count=1)
        try:
            self.core.create_namespaced_event(namespace, event)
        except Exception as exc:
            log.warning("recording event failed", extra=logfmt.fields(
                pod=f"{namespace}/{name}", reason=reason, error=str(exc)))

    def record_node_event(self, reason: str, message: str, warning: bool) -> None:
        """Upstream's node events live in the default namespace, about the Node object."""
        if not self.node_name:
            return
        c = self._client
        now = _now()
        event = c.CoreV1Event(
            metadata=c.V1ObjectMeta(generate_name=f"{self.node_name}.", namespace="default"),
            involved_object=c.V1ObjectReference(kind="Node", name=self.node_name,
                                                uid=self._node_uid(), api_version="v1"),
            reason=reason, message=message, type="Warning" if warning else "Normal",
            source=c.V1EventSource(component=COMPONENT, host=self.node_name),
            first_timestamp=now, last_timestamp=now, count=1)
        try:
            self.core.create_namespaced_event("default", event)
        except Exception as exc:
            log.warning("recording node event failed", extra=logfmt.fields(
                reason=reason, error=str(exc)))

    def _node_uid(self) -> str | None:
        if self._node_uid_cache is None:
            try:
                node: Any = self.core.read_node(self.node_name)
                self._node_uid_cache = str(node.metadata.uid)
            except Exception:
                return None
        return self._node_uid_cache

    def set_node_condition(self, cond_type: str, status: bool, reason: str,
                           message: str) -> None:
        if not self.node_name:
            return
        now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"status": {"conditions": [{
            "type": cond_type, "status": "True" if status else "False", "reason": reason,
            "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now}]}}
        try:
            self.core.patch_node_status(self.node_name, body)
        except Exception as exc:
            log.warning("patching node condition failed", extra=logfmt.fields(
                node=self.node_name, error=str(exc)))

    def node_annotation(self, key: str) -> str | None:
        if not self.node_name:
            return None
        try:
            node: Any = self.core.read_node(self.node_name)
        except Exception as exc:
            log.warning("reading the node failed", extra=logfmt.fields(
                node=self.node_name, error=str(exc)[:200]))
            return None
        value = (node.metadata.annotations or {}).get(key)
        return None if value is None else str(value)

    def annotate_node(self, key: str, value: str) -> None:
        if not self.node_name:
            return
        try:
            self.core.patch_node(self.node_name,
                                 {"metadata": {"annotations": {key: value}}})
        except Exception as exc:
            log.warning("annotating node failed", extra=logfmt.fields(
                node=self.node_name, error=str(exc)))

    def patch_pod_ips(self, namespace: str, name: str, ips: str) -> None:
        """Upstream's ``PatchPodIPInfo``: annotation ``k8s.aliyun.com/pod-ips`` set to ``ips``
        by a merge patch of the pod's metadata (its other annotations stay)."""
        try:
            self.core.patch_namespaced_pod(name, namespace,
                                           {"metadata": {"annotations": {POD_IPS: ips}}})
        except Exception as exc:
            log.warning("annotating pod with its IPs failed", extra=logfmt.fields(
                pod=f"{namespace}/{name}", error=str(exc)))

    def kubeadm_service_cidr(self) -> str:
        """Upstream's fallback for an empty ``service_cidr``: ``networking.serviceSubnet`` of the
        ``ClusterConfiguration`` in ConfigMap ``kube-system/kubeadm-config``; "" (logged) when
        it is missing or does not parse."""
        try:
            cm: Any = self.core.read_namespaced_config_map(KUBEADM_CONFIG, NODE_CONFIG_NAMESPACE)
            text = (cm.data or {}).get("ClusterConfiguration") or ""
            import yaml  # the kubernetes client's own dependency; only needed here

            doc = yaml.safe_load(text) or {}
            subnet = str(((doc.get("networking") or {}).get("serviceSubnet")) or "")
            nets = [ipaddress.ip_network(c.strip(), strict=False) for c in subnet.split(",")
                    if c.strip()]
        except Exception as exc:
            log.warning("no service CIDR from kube-system/kubeadm-config", extra=logfmt.fields(
                error=str(exc)[:200]))
            return ""
        return ",".join(str(n) for n in nets)

    def node_config_patch(self) -> Mapping[str, Any] | None:
        """``eni_conf`` of ConfigMap ``kube-system/<label terway-config>``, as upstream reads it.
        A node without the label has no patch; a label naming a missing or malformed ConfigMap
        is logged and ignored (the base config applies)."""
        if not self.node_name:
            return None
        try:
            node: Any = self.core.read_node(self.node_name)
            name = (node.metadata.labels or {}).get(NODE_CONFIG_LABEL)
            if not name:
                return None
            cm: Any = self.core.read_namespaced_config_map(name, NODE_CONFIG_NAMESPACE)
            text = (cm.data or {}).get(NODE_CONFIG_KEY)
            patch = json.loads(text) if text else None
        except Exception as exc:
            log.warning("reading the node's terway-config ConfigMap failed; using the base "
                        "config", extra=logfmt.fields(node=self.node_name, error=str(exc)))
            return None
        if patch is not None and not isinstance(patch, dict):
            log.warning("the node's terway-config eni_conf is not a JSON object; ignored",
                        extra=logfmt.fields(node=self.node_name))
            return None
        return patch
