"""The two Calico objects Felix needs before it enforces anything, created when missing.

On a Calico cluster calico-node's start-up creates them; a Terway cluster has no calico-node,
so the policy container does (upstream Terway patches Felix's wait out instead):

- ``ClusterInformation/default`` with ``datastoreReady: true``: Felix waits for it at start.
- ``Tier/default``: the tier Kubernetes NetworkPolicies are placed in (Calico v3.30+).

Both are created once and never changed afterwards: an operator's edit stays.
"""

from __future__ import annotations

from typing import Any, Protocol

GROUP, VERSION = "crd.projectcalico.org", "v1"
DEFAULT_TIER_ORDER = 1_000_000          # Calico's order of the default tier

OBJECTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("clusterinformations", "ClusterInformation", {"datastoreReady": True}),
    ("tiers", "Tier", {"order": DEFAULT_TIER_ORDER}),
)


class CustomObjects(Protocol):
    """The part of ``kubernetes.client.CustomObjectsApi`` used here."""

    def get_cluster_custom_object(self, group: str, version: str, plural: str,
                                  name: str) -> Any: ...

    def create_cluster_custom_object(self, group: str, version: str, plural: str,
                                     body: dict[str, Any]) -> Any: ...


def ensure_objects(api: CustomObjects) -> list[str]:
    """Create each missing object; returns the kinds created (empty when all were there)."""
    from kubernetes.client.exceptions import ApiException

    created = []
    for plural, kind, spec in OBJECTS:
        try:
            api.get_cluster_custom_object(GROUP, VERSION, plural, "default")
            continue
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                "metadata": {"name": "default"}, "spec": spec}
        try:
            api.create_cluster_custom_object(GROUP, VERSION, plural, body)
        except ApiException as exc:
            if exc.status != 409:       # another node's policy container was first
                raise
        created.append(kind)
    return created
