"""Over the whole shared-cluster suite, terwayd's ServiceAccount was never refused by RBAC: the
API server's audit log (every request, metadata level) has no 403 for it. Runs last."""

from __future__ import annotations

import json

from emulator.cluster import Cluster

USER = "system:serviceaccount:kube-system:terway"


def terway_requests(cluster: Cluster) -> list[dict]:
    log = cluster.workdir / "logs" / "audit.log"
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in entries if e.get("user", {}).get("username") == USER]


def forbidden(cluster: Cluster) -> list[str]:
    return [f"{e['verb']} {e['requestURI']}" for e in terway_requests(cluster)
            if e.get("responseStatus", {}).get("code") == 403]


def test_terwayd_was_never_forbidden(cluster: Cluster) -> None:
    calls = terway_requests(cluster)
    verbs = {(e["verb"], e.get("objectRef", {}).get("resource")) for e in calls}
    # It did talk to the API: events, node patches, pod reads, the pod-ips annotation, the
    # list of the node's pods at start (else this test proves nothing).
    assert {("create", "events"), ("patch", "nodes"), ("get", "pods"),
            ("patch", "pods"), ("list", "pods")} <= verbs, verbs
    assert forbidden(cluster) == []
