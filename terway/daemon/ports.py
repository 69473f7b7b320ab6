"""The daemon's outside world besides the cloud: the pod datapath and Kubernetes.

Both are small synchronous interfaces (the daemon calls them in worker threads) so tests plug in
fakes and a node without a control plane plugs in ``NoopKube``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from terway.datapath import modes
from terway.datapath.types import PodNetwork, PodSpec


@dataclass(frozen=True)
class PodAttachment:
    """One pod as the daemon wires it: the sandbox, the datapath mode, the vSwitch its address
    comes from and the network the datapath sets up (``net.prefix_len``: the vSwitch's)."""

    pod: PodSpec
    container_id: str
    mode: str            # a name in terway/datapath/modes.py
    vswitch_cidr: str
    net: PodNetwork

    @property
    def pod_key(self) -> str:
        return f"{self.pod.pod_namespace}/{self.pod.pod_name}"

    @property
    def pod_prefix_len(self) -> int:
        """The prefix of the address on the pod's interface (what the CNI result shows)."""
        return modes.get(self.mode).pod_prefix_len(self.net.prefix_len)


@dataclass(frozen=True)
class SetupResult:
    pod_mac: str = ""
    host_ifname: str = ""
    host_mac: str = ""
    eni_ifindex: int | None = None


class Datapath(Protocol):
    def setup(self, attachment: PodAttachment) -> SetupResult:
        """Wire the pod; idempotent (re-running on a wired pod converges)."""
        ...

    def teardown(self, attachment: PodAttachment) -> None:
        """Unwire the pod; must succeed when the netns is already gone."""
        ...

    def check(self, attachment: PodAttachment) -> list[str]:
        """Problems found in the pod's datapath (empty = fine)."""
        ...

    def wired_pods(self) -> dict[str, str]:
        """{pod IP: host interface} of every pod wired on the node, records or not."""
        ...


class NoDatapath:
    """Does nothing: for a daemon run against the emulator without network namespaces."""

    def setup(self, attachment: PodAttachment) -> SetupResult:
        return SetupResult()

    def teardown(self, attachment: PodAttachment) -> None:
        return None

    def check(self, attachment: PodAttachment) -> list[str]:
        return []

    def wired_pods(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class PodMeta:
    """What the API server says about a pod (only what the daemon acts on)."""

    annotations: Mapping[str, str] = field(default_factory=dict)
    owner_kind: str = ""             # e.g. StatefulSet


@dataclass(frozen=True)
class NodePod:
    """A pod the API server places on this node, running or about to (what a daemon starting
    without records needs to know of it: who it is and its addresses)."""

    namespace: str
    name: str
    ips: tuple[str, ...] = ()


class Kube(Protocol):
    """The Kubernetes API as the daemon uses it. Every method is best effort."""

    enabled: bool

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        """The pod, or None when the API says it does not exist."""
        ...

    def pod_exists(self, namespace: str, name: str) -> bool | None:
        """True/False from the API server; None when it cannot tell (then keep the pod)."""
        ...

    def node_pods(self) -> list[NodePod] | None:
        """This node's pods on the pod network (not hostNetwork, not Succeeded or Failed), as
        upstream's ``GetLocalPods``; None when the API server cannot tell."""
        ...

    def record_event(self, namespace: str, name: str, reason: str, message: str,
                     warning: bool) -> None: ...

    def record_node_event(self, reason: str, message: str, warning: bool) -> None:
        """An event on this node (upstream: cloud failures as AllocIPFailed warnings)."""
        ...

    def set_node_condition(self, cond_type: str, status: bool, reason: str,
                           message: str) -> None: ...

    def annotate_node(self, key: str, value: str) -> None: ...

    def patch_pod_ips(self, namespace: str, name: str, ips: str) -> None:
        """Annotate the pod with its addresses (``k8s.aliyun.com/pod-ips``, comma-separated)."""
        ...

    def node_config_patch(self) -> Mapping[str, Any] | None:
        """The node's own eni_conf merge patch (upstream: the ConfigMap named by the node's
        ``terway-config`` label), or None when the node has none."""
        ...

    def node_annotation(self, key: str) -> str | None:
        """One annotation of this node, None when absent (or unreadable: logged)."""
        ...

    def kubeadm_service_cidr(self) -> str:
        """``networking.serviceSubnet`` of ConfigMap ``kube-system/kubeadm-config`` (upstream's
        fallback for an empty ``service_cidr``), or "" when there is none."""
        ...


class NoopKube:
    """No control plane: no events, no conditions, pods only known by their netns."""

    enabled = False

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        return PodMeta()

    def pod_exists(self, namespace: str, name: str) -> bool | None:
        return None

    def node_pods(self) -> list[NodePod] | None:
        return None

    def record_event(self, namespace: str, name: str, reason: str, message: str,
                     warning: bool) -> None:
        return None

    def record_node_event(self, reason: str, message: str, warning: bool) -> None:
        return None

    def set_node_condition(self, cond_type: str, status: bool, reason: str,
                           message: str) -> None:
        return None

    def annotate_node(self, key: str, value: str) -> None:
        return None

    def patch_pod_ips(self, namespace: str, name: str, ips: str) -> None:
        return None

    def node_config_patch(self) -> Mapping[str, Any] | None:
        return None

    def node_annotation(self, key: str) -> str | None:
        return None

    def kubeadm_service_cidr(self) -> str:
        return ""
