"""The production base deploy/kubernetes: renders with kustomize, validates against the schema
offline, and holds every property docs/deploy.md promises (image, host paths, probes, resources,
capabilities, update strategy, affinity, the CNI config as upstream writes it, RBAC exactly as
terwayd's calls need). The Helm chart is compared with this render in test_helm.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from terway.cni.config import parse_netconf
from terway.config import parse_eni_conf
from terway.daemon.app import LOCK_NAME, DaemonOptions
from terway.daemon.install import conflist
from terway.daemon.main import build_parser
from terway.daemon.metrics import Health

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
IMAGE = "ghcr.io/terway-py/terway:v0.1.0"
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding"}


def kubectl() -> str | None:
    """kubectl of the test bed's build (``$TERWAY_KUBE_BIN``), else one on PATH."""
    bin_dir = os.environ.get("TERWAY_KUBE_BIN")
    if bin_dir and (Path(bin_dir) / "kubectl").exists():
        return str(Path(bin_dir) / "kubectl")
    return shutil.which("kubectl")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    exe = kubectl()
    assert exe, "kubectl not found (set TERWAY_KUBE_BIN or put kubectl on PATH)"
    out = subprocess.run([exe, "kustomize", str(directory)], check=True, capture_output=True,
                         text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _render_by_hand() -> list[dict[str, Any]]:
    """What kustomize does to this base (namespace, images), for machines without kubectl."""
    k = yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in k["resources"]:
        docs += [d for d in yaml.safe_load_all((KUSTOMIZE_DIR / name).read_text()) if d]
    images = {i["name"]: i for i in k.get("images", [])}
    for d in docs:
        if d["kind"] not in CLUSTER_KINDS:
            d["metadata"]["namespace"] = k["namespace"]
        if d["kind"] == "DaemonSet":
            spec = d["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                name, _, tag = c["image"].rpartition(":")
                if name in images:
                    c["image"] = f"{images[name].get('newName', name)}:" \
                                 f"{images[name].get('newTag', tag)}"
    return docs


_CACHE: list[list[dict[str, Any]]] = []


def rendered() -> list[dict[str, Any]]:
    if not _CACHE:
        _CACHE.append(kustomize(KUSTOMIZE_DIR) if kubectl() else _render_by_hand())
    return json.loads(json.dumps(_CACHE[0]))      # a fresh copy per test


def by_kind(kind: str, docs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [d for d in (docs if docs is not None else rendered()) if d["kind"] == kind]


def pod_spec(docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    (ds,) = by_kind("DaemonSet", docs)
    spec: dict[str, Any] = ds["spec"]["template"]["spec"]
    return spec


def container(name: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec = pod_spec(docs)
    (c,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return c


# -- the checks, shared with test_helm.py (the chart must pass the same ones) -------------------

def check_image(docs: list[dict[str, Any]], image: str = IMAGE) -> None:
    for name in ("install-cni", "terway"):
        c = container(name, docs)
        assert c["image"] == image, (name, c["image"])
        assert c["imagePullPolicy"] == "IfNotPresent", name


def check_probes(docs: list[dict[str, Any]]) -> None:
    """httpGet /healthz (startup, liveness) and /readyz (readiness) on the port terwayd serves
    with --metrics-port, exposed on the node; each probe waits longer than /healthz does."""
    c = container("terway", docs)
    args = build_parser().parse_args(c["command"][1:] + c.get("args", []))
    assert args.metrics_port and args.metrics_port not in (10248, 10249, 10250, 10256)
    assert args.metrics_address == "127.0.0.1"   # no authentication: not on the network
    (port,) = c["ports"]
    assert port["containerPort"] == port["hostPort"] == args.metrics_port
    assert pod_spec(docs)["hostNetwork"] is True   # the kubelet probes the node's address
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in (port["name"], args.metrics_port), probe
        assert get["host"] == "127.0.0.1", f"{probe}: terwayd serves the node's loopback only"
        assert c[probe]["timeoutSeconds"] > Health.loop_timeout, probe
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 120


def check_capabilities(docs: list[dict[str, Any]]) -> None:
    terway = container("terway", docs)["securityContext"]
    assert terway["capabilities"]["drop"] == ["ALL"]
    assert sorted(terway["capabilities"]["add"]) == ["NET_ADMIN", "SYS_ADMIN"]
    assert terway.get("privileged") is not True
    assert terway["readOnlyRootFilesystem"] is True
    init = container("install-cni", docs)["securityContext"]
    assert init["capabilities"] == {"drop": ["ALL"]}
    assert init["allowPrivilegeEscalation"] is False
    assert init["readOnlyRootFilesystem"] is True


def check_var_run(docs: list[dict[str, Any]]) -> None:
    """The socket, the lock and the pods' netns files live under the host's /var/run, seen with
    HostToContainer propagation (netns files are bind-mounted after terwayd started)."""
    c = container("terway", docs)
    (run,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/var/run"]
    assert run.get("mountPropagation") == "HostToContainer"
    (vol,) = [v for v in pod_spec(docs)["volumes"] if v["name"] == run["name"]]
    assert vol["hostPath"]["path"] == "/var/run"


def check_device_plugins(docs: list[dict[str, Any]]) -> None:
    """terwayd's --device-plugin-dir (aliyun/eni in daemon_mode ENIOnly) is the node's kubelet
    directory, writable: its socket goes there and the kubelet's kubelet.sock is there."""
    c = container("terway", docs)
    args = build_parser().parse_args(c["command"][1:] + c.get("args", []))
    assert args.device_plugin_dir == "/var/lib/kubelet/device-plugins"
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == args.device_plugin_dir]
    assert not mount.get("readOnly")
    (vol,) = [v for v in pod_spec(docs)["volumes"] if v["name"] == mount["name"]]
    assert vol["hostPath"] == {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"}


def check_rollout(docs: list[dict[str, Any]]) -> None:
    (ds,) = by_kind("DaemonSet", docs)
    strategy = ds["spec"]["updateStrategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == "10%"
    terms = pod_spec(docs)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms, "no node affinity"
    for term in terms:     # every term (they are ORed) must keep virtual-kubelet nodes out
        assert {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]} in \
            term["matchExpressions"], term


def check_daemonset(docs: list[dict[str, Any]], image: str = IMAGE) -> None:
    check_image(docs, image)
    check_probes(docs)
    check_capabilities(docs)
    check_var_run(docs)
    check_device_plugins(docs)
    check_rollout(docs)


# -- the base -------------------------------------------------------------------------------------

def test_manifests_validate_against_schema() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    for doc in rendered():
        kv.validate(doc, "1.32", strict=True)


def test_daemonset_matches_upstream_shape() -> None:
    (ds,) = by_kind("DaemonSet")
    assert ds["metadata"]["name"] == "terway-eniip"
    assert ds["metadata"]["namespace"] == "kube-system"
    assert ds["spec"]["selector"]["matchLabels"] == {"app": "terway-eniip"}
    assert ds["spec"]["template"]["metadata"]["labels"]["app"] == "terway-eniip"
    spec = pod_spec()
    assert spec["hostNetwork"] is True
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["serviceAccountName"] == "terway"
    assert [c["name"] for c in spec["initContainers"]] == ["install-cni"]
    assert [c["name"] for c in spec["containers"]] == ["terway"]


def test_daemonset_properties() -> None:
    check_daemonset(rendered())


def test_image_is_registry_qualified_versioned_and_retargetable() -> None:
    name, _, tag = IMAGE.rpartition(":")
    assert "." in name.split("/")[0], "image without a registry host"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), tag
    k = yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())
    assert k["images"] == [{"name": name, "newName": name, "newTag": tag}]
    check_image(rendered())


@pytest.mark.kube
def test_kustomize_overlay_retargets_both_containers(tmp_path: Path) -> None:
    """The kustomize `images:` entry works as docs/deploy.md says (needs kubectl)."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(KUSTOMIZE_DIR, tmp_path)],
        "images": [{"name": "ghcr.io/terway-py/terway", "newName": "registry.example.com/t/terway",
                    "newTag": "v9.9.9"}]}))
    check_image(kustomize(tmp_path), "registry.example.com/t/terway:v9.9.9")


def test_every_path_terwayd_uses_is_a_host_mount() -> None:
    """terwayd's own paths (from its command line, defaults included) are on host volumes, so
    the plugin on the node reaches the socket and the state survives the container."""
    spec = pod_spec()
    c = container("terway")
    args = build_parser().parse_args(c["command"][1:] + c.get("args", []))
    volumes = {v["name"]: v for v in spec["volumes"]}

    def host_path(path: str) -> str:
        """The host path behind ``path`` in the container (longest mount prefix)."""
        mounts = [m for m in c["volumeMounts"]
                  if path == m["mountPath"] or path.startswith(m["mountPath"] + "/")]
        assert mounts, f"{path}: not on any volume"
        m = max(mounts, key=lambda m: len(m["mountPath"]))
        hp = volumes[m["name"]].get("hostPath")
        assert hp, f"{path}: on volume {m['name']}, not a host path"
        return str(hp["path"]) + path[len(m["mountPath"]):]

    assert host_path(args.state_dir) == "/var/lib/cni/terway"
    assert host_path(args.upstream_state_dir) == "/var/lib/cni/terway"   # upstream's files
    assert host_path(args.socket) == "/var/run/eni/eni.socket"      # the plugin's default
    lock = args.lock_file or str(Path(args.socket).parent / LOCK_NAME)
    assert host_path(lock) == "/var/run/eni/terwayd.lock"
    debug = DaemonOptions(socket_path=args.socket, debug_socket=args.debug_socket)
    assert host_path(debug.debug_socket_file) == "/var/run/eni/eni_debug.socket"   # upstream's
    assert host_path("/var/run/netns/cni-0000") == "/var/run/netns/cni-0000"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert host_path(f"{env['TERWAY_PROC_SYS']}/net/ipv4/ip_forward") == \
        "/proc/sys/net/ipv4/ip_forward"
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} \
        in c["env"]
    (cm,) = [m for m in c["volumeMounts"] if m["mountPath"] == args.configmap_dir]
    assert volumes[cm["name"]]["configMap"]["name"] == "eni-config"
    (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]        # the root filesystem is read-only
    # the init container writes exactly where its arguments say, on the host's CNI dirs
    init = container("install-cni")
    cmd = init["command"]
    init_mounts = {m["mountPath"]: volumes[m["name"]] for m in init["volumeMounts"]}
    assert init_mounts[cmd[cmd.index("--bin-dir") + 1]]["hostPath"]["path"] == "/opt/cni/bin"
    assert init_mounts[cmd[cmd.index("--conf-dir") + 1]]["hostPath"]["path"] == "/etc/cni/net.d"


def test_resources_follow_the_measured_rss() -> None:
    res = container("terway")["resources"]
    assert res["requests"] == {"cpu": "100m", "memory": "160Mi"}
    assert res["limits"] == {"memory": "320Mi"}, "no CPU limit (throttling slows CNI calls)"
    measured_mib = 108                                   # docs/performance.md, 30 pods
    assert int(res["requests"]["memory"].removesuffix("Mi")) >= measured_mib
    assert "cpu" not in container("install-cni")["resources"].get("limits", {})


def test_configmap_10_terway_conf_as_upstream_and_accepted_by_our_plugin() -> None:
    (cm,) = by_kind("ConfigMap")
    assert cm["metadata"]["name"] == "eni-config"
    cni = json.loads(cm["data"]["10-terway.conf"])
    assert cni == {"cniVersion": "0.4.0", "name": "terway", "capabilities": {"bandwidth": True},
                   "eniip_virtual_type": "Veth", "type": "terway"}
    # what install-cni writes, and what a runtime then hands the plugin for an ADD (the
    # conflist's name and cniVersion injected, runtimeConfig from the bandwidth capability)
    cl = conflist(cni)
    (plugin,) = cl["plugins"]
    conf = {**plugin, "name": cl["name"], "cniVersion": cl["cniVersion"],
            "runtimeConfig": {"bandwidth": {"ingressRate": 10_000_000, "egressRate": 5_000_000}}}
    net = parse_netconf(conf, "ADD")
    assert net.eniip_virtual_type == "veth"
    assert (net.ingress_bps, net.egress_bps) == (10_000_000, 5_000_000)
    assert cm["data"]["disable_network_policy"] == "true"


def test_configmap_eni_conf_is_valid_with_seed_keys() -> None:
    (cm,) = by_kind("ConfigMap")
    conf = json.loads(cm["data"]["eni_conf"])
    for key in ("version", "max_pool_size", "min_pool_size", "vswitches", "security_group",
                "service_cidr", "vswitch_selection_policy", "credential_path"):
        assert key in conf
    parsed = parse_eni_conf(conf)
    assert parsed.warnings == ()
    # the token file it names is the addon token Secret's mount
    c = container("terway")
    (m,) = [m for m in c["volumeMounts"] if conf["credential_path"].startswith(m["mountPath"])]
    (vol,) = [v for v in pod_spec()["volumes"] if v["name"] == m["name"]]
    assert vol["secret"]["secretName"] == "addon.network.token"
    assert vol["secret"]["items"] == [
        {"key": "addon.token.config",
         "path": conf["credential_path"].removeprefix(m["mountPath"] + "/")}]


# Each CoreV1Api call in terway/daemon/k8s.py and the permission it needs.
CALLS = {
    "read_namespaced_pod": ("pods", "get", "cluster"),
    "patch_namespaced_pod": ("pods", "patch", "cluster"),
    "list_pod_for_all_namespaces": ("pods", "list", "cluster"),
    "create_namespaced_event": ("events", "create", "cluster"),
    "read_node": ("nodes", "get", "cluster"),
    "patch_node": ("nodes", "patch", "cluster"),
    "patch_node_status": ("nodes/status", "patch", "cluster"),
    "read_namespaced_config_map": ("configmaps", "get", "kube-system"),
}


def granted(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(resource, verb, scope) bound to ServiceAccount kube-system/terway."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs
             if d["kind"] in ("Role", "ClusterRole")}
    out: set[tuple[str, str, str]] = set()
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "terway",
                                  "namespace": "kube-system"}]
        role = roles[(b["roleRef"]["kind"], b["roleRef"]["name"])]
        scope = "cluster" if b["kind"] == "ClusterRoleBinding" else b["metadata"]["namespace"]
        for rule in role["rules"]:
            assert rule["apiGroups"] == [""], rule
            out |= {(r, v, scope) for r in rule["resources"] for v in rule["verbs"]}
    return out


def check_rbac(docs: list[dict[str, Any]]) -> None:
    text = json.dumps([d for d in docs if d["kind"] in ("Role", "ClusterRole")])
    assert '"*"' not in text, "wildcard in RBAC"
    (sa,) = by_kind("ServiceAccount", docs)
    assert (sa["metadata"]["name"], sa["metadata"]["namespace"]) == ("terway", "kube-system")
    assert pod_spec(docs)["serviceAccountName"] == "terway"
    assert granted(docs) == set(CALLS.values())


def test_rbac_grants_exactly_what_terwayd_calls() -> None:
    source = (ROOT / "terway" / "daemon" / "k8s.py").read_text()
    used = set(re.findall(r"self\.core\.(\w+)\(", source))
    assert used == set(CALLS), f"k8s.py calls changed: {sorted(used ^ set(CALLS))}: " \
                               "update CALLS and deploy/kubernetes/rbac.yaml"
    check_rbac(rendered())
