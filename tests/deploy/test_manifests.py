"""The DaemonSet manifests render with kustomize and validate against the schema offline."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"


def _rendered() -> list[dict[str, Any]]:
    if shutil.which("kubectl"):
        out = subprocess.run(
            ["kubectl", "kustomize", str(KUSTOMIZE_DIR)], check=True, capture_output=True, text=True
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    docs: list[dict[str, Any]] = []
    for name in ("rbac.yaml", "configmap.yaml", "daemonset.yaml"):
        docs += [d for d in yaml.safe_load_all((KUSTOMIZE_DIR / name).read_text()) if d]
    return docs


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _rendered() if d["kind"] == kind]


def test_manifests_validate_against_schema() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    for doc in _rendered():
        kv.validate(doc, "1.32", strict=True)


def test_daemonset_matches_upstream_shape() -> None:
    (ds,) = _by_kind("DaemonSet")
    assert ds["metadata"]["name"] == "terway-eniip"
    assert ds["metadata"]["namespace"] == "kube-system"
    spec = ds["spec"]["template"]["spec"]
    assert ds["spec"]["template"]["metadata"]["labels"]["app"] == "terway-eniip"
    assert spec["hostNetwork"] is True
    assert spec["priorityClassName"] == "system-node-critical"
    mounts = {m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]}
    assert {"/etc/eni", "/var/run", "/var/lib/cni/terway"} <= mounts


def test_configmap_eni_conf_is_valid_json_with_seed_keys() -> None:
    (cm,) = _by_kind("ConfigMap")
    assert cm["metadata"]["name"] == "eni-config"
    conf = json.loads(cm["data"]["eni_conf"])
    for key in ("version", "max_pool_size", "min_pool_size", "vswitches", "security_group",
                "service_cidr", "vswitch_selection_policy"):
        assert key in conf
    cni = json.loads(cm["data"]["10-terway.conf"])
    assert cni["type"] == "terway"
    assert cm["data"]["disable_network_policy"] == "true"
