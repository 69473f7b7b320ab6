"""Upstream Terway's pod state files, written by the real bbolt library (tests/go/boltwriter).

``write_bolt(path, spec)`` builds the Go program once (tests/gobuild.py: cached outside the
repository, keyed by the Go version, go.mod, go.sum and sources) and runs it; ``relation`` and
``pod_info`` give entries in upstream's schema (types/daemon/res.go, pkg/k8s/k8s.go) that the
program decodes into upstream's types and encodes as upstream does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.gobuild import go_binary

MODULE = Path(__file__).resolve().parents[1] / "go" / "boltwriter"


def write_bolt(path: Path, spec: dict[str, Any]) -> Path:
    """A bbolt file at ``path`` as the spec says (see tests/go/boltwriter/main.go)."""
    binary = go_binary(MODULE)
    spec_file = path.with_name(path.name + ".spec.json")
    spec_file.write_text(json.dumps(spec))
    result = subprocess.run([str(binary), str(path), str(spec_file)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"boltwriter failed: {result.stderr}"
    return path


def relation(namespace: str, name: str, ip: str, *, mac: str = "", eni_id: str = "",
             container_id: str | None = None, netns: str | None = None,
             legacy: bool = False, exited: bool = False) -> dict[str, Any]:
    """A ``PodResources`` as upstream's AllocIP stores it in ResRelation.db; ``legacy``: the
    resource item as old versions wrote it (type and ``<mac>.<ip>`` id only)."""
    item: dict[str, Any] = {"type": "eniIp", "id": f"{mac}.{ip}"}
    if not legacy:
        item |= {"eni_id": eni_id, "eni_mac": mac, "ipv4": ip}
    doc: dict[str, Any] = {
        "Resources": [item],
        "PodInfo": {"Namespace": namespace, "Name": name, "PodNetworkType": "ENIMultiIP",
                    "PodIPs": {"IPv4": ip}, "SandboxExited": exited,
                    "CreateTime": "2026-07-01T08:00:00Z"},
        "NetConf": "[]",
    }
    if container_id is not None:
        doc["ContainerID"] = container_id
    if netns is not None:
        doc["NetNs"] = netns
    return doc


def pod_info(namespace: str, name: str, ip: str) -> dict[str, Any]:
    """pkg/k8s's ``storageItem`` as pod.db keeps it (a sticky pod's PodInfo)."""
    return {"Pod": {"Namespace": namespace, "Name": name, "PodIPs": {"IPv4": ip},
                    "PodIP": ip, "IPStickTime": 300_000_000_000}}


def upstream_dir(directory: Path, relations: dict[str, dict[str, Any]],
                 pods: dict[str, dict[str, Any]] | None = None) -> Path:
    """``directory`` with upstream's ResRelation.db (bucket relation) and, when ``pods`` is
    given, pod.db (bucket pods): keys ``<namespace>/<name>`` as upstream's PodInfoKey."""
    directory.mkdir(parents=True, exist_ok=True)
    write_bolt(directory / "ResRelation.db", {"buckets": {"relation": {
        "kind": "pod-resources", "entries": relations}}})
    if pods is not None:
        write_bolt(directory / "pod.db", {"buckets": {"pods": {
            "kind": "pod-info", "entries": pods}}})
    return directory
