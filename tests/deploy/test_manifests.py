"""The production base deploy/kubernetes: renders with kustomize, validates against the schema
offline, and holds every property docs/deploy.md promises (image, host paths, probes, resources,
capabilities, update strategy, affinity, the CNI config as upstream writes it, RBAC exactly as
terwayd's calls need, the `policy` container, its Calico CRDs and its read-only role for Calico
Felix). The Helm chart is compared with this render in test_helm.py; its crds/ file is checked
here (no helm needed) to be this base's calico-crds.yaml, byte for byte."""

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
from terway.policy import datastore
from terway.policy.main import build_parser as policy_parser

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
CRDS_FILE = KUSTOMIZE_DIR / "calico-crds.yaml"
CHART_CRDS_DIR = ROOT / "deploy" / "helm" / "terway-py" / "crds"
IMAGE = "ghcr.io/terway-py/terway:v0.1.0"
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
CONTAINERS = ("install-cni", "terway", "policy")


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
    """One image for every container (the policy container's Felix is in it, docs/image.md)."""
    spec = pod_spec(docs)
    assert tuple(c["name"] for c in spec["initContainers"] + spec["containers"]) == CONTAINERS
    for name in CONTAINERS:
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


def check_policy_container(docs: list[dict[str, Any]]) -> None:
    """`terwayd policy` (then Calico Felix, docs/policy.md): eni-config mounted where its
    --configmap-dir says, probes on the health port it serves on the node's loopback, the node's
    iptables lock, this node's name, privileged (Felix writes /proc/sys/net and the node's
    iptables, ipsets and conntrack), and no CPU limit."""
    c = container("policy", docs)
    assert c["command"][:2] == ["terwayd", "policy"], c["command"]
    args = policy_parser().parse_args(c["command"][2:] + c.get("args", []))
    assert c["securityContext"] == {"privileged": True}
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} \
        in c["env"]
    t = container("terway", docs)
    terwayd = build_parser().parse_args(t["command"][1:] + t.get("args", []))
    assert args.health_port != terwayd.metrics_port
    assert args.metrics_port not in (args.health_port, terwayd.metrics_port)
    for probe, path in (("livenessProbe", "/liveness"), ("readinessProbe", "/readiness")):
        assert c[probe]["httpGet"] == {"host": "127.0.0.1", "path": path,
                                       "port": args.health_port}, probe
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    cm = mounts[args.configmap_dir]
    assert cm.get("readOnly") is True
    assert volumes[cm["name"]]["configMap"]["name"] == "eni-config"
    lock = mounts["/run/xtables.lock"]
    assert volumes[lock["name"]]["hostPath"] == {"path": "/run/xtables.lock",
                                                 "type": "FileOrCreate"}
    assert set(mounts) == {args.configmap_dir, "/run/xtables.lock"}, sorted(mounts)
    assert "cpu" not in c["resources"].get("limits", {}), "no CPU limit (as terwayd)"
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]


def check_daemonset(docs: list[dict[str, Any]], image: str = IMAGE) -> None:
    check_image(docs, image)
    check_probes(docs)
    check_capabilities(docs)
    check_var_run(docs)
    check_device_plugins(docs)
    check_rollout(docs)
    check_policy_container(docs)


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
    # in this order: emulator/cluster/cluster.py patches containers/1 as the policy container
    assert [c["name"] for c in spec["containers"]] == ["terway", "policy"]


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
def test_kustomize_overlay_retargets_every_container(tmp_path: Path) -> None:
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


def test_policy_container_runs_terwayd_policy_with_eni_config() -> None:
    c = container("policy")
    assert c["command"] == ["terwayd", "policy", "--configmap-dir", "/etc/eni"]
    assert c["image"] == container("terway")["image"]
    # the same eni-config volume as terwayd's: disable_network_policy is read from it
    (policy_cm,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/eni"]
    (terway_cm,) = [m for m in container("terway")["volumeMounts"] if m["mountPath"] == "/etc/eni"]
    assert policy_cm["name"] == terway_cm["name"]
    assert c["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                              "limits": {"memory": "512Mi"}}


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


# The ClusterRole of the `policy` container: Calico Felix's calls, not k8s.py's (checked apart,
# check_policy_rbac). Felix's Kubernetes datastore lists and watches these besides the Calico
# CRDs (calico-crds.yaml): the policies, what they select (pods, namespaces; service accounts
# become Calico profiles), nodes, services and endpoint slices.
POLICY_ROLE = "terway-policy"
READ_VERBS = {"get", "list", "watch"}
FELIX_READS = {("", "pods"), ("", "namespaces"), ("", "serviceaccounts"), ("", "nodes"),
               ("", "services"), ("discovery.k8s.io", "endpointslices"),
               ("networking.k8s.io", "networkpolicies")}
# terway/policy/datastore.py's CustomObjectsApi calls and the verb each needs
POLICY_CALLS = {"get_cluster_custom_object": "get", "create_cluster_custom_object": "create"}


def crd_resources(text: str | None = None) -> dict[tuple[str, str], str]:
    """(group, plural) -> scope of each CRD in calico-crds.yaml."""
    docs = [d for d in yaml.safe_load_all(text if text is not None else CRDS_FILE.read_text())
            if d]
    assert {d["kind"] for d in docs} == {"CustomResourceDefinition"}
    out = {(d["spec"]["group"], d["spec"]["names"]["plural"]): d["spec"]["scope"] for d in docs}
    assert len(out) == len(docs), "a CRD defined twice"
    for d in docs:
        assert d["metadata"]["name"] == "{}.{}".format(d["spec"]["names"]["plural"],
                                                       d["spec"]["group"])
    return out


def granted(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(resource, verb, scope) bound to ServiceAccount kube-system/terway by terwayd's roles
    (every binding but terway-policy's, which check_policy_rbac covers)."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs
             if d["kind"] in ("Role", "ClusterRole")}
    out: set[tuple[str, str, str]] = set()
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "terway",
                                  "namespace": "kube-system"}]
        if b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": POLICY_ROLE}:
            continue
        role = roles[(b["roleRef"]["kind"], b["roleRef"]["name"])]
        scope = "cluster" if b["kind"] == "ClusterRoleBinding" else b["metadata"]["namespace"]
        for rule in role["rules"]:
            assert rule["apiGroups"] == [""], rule
            out |= {(r, v, scope) for r in rule["resources"] for v in rule["verbs"]}
    return out


def policy_grants(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of ClusterRole terway-policy, bound cluster-wide to
    ServiceAccount kube-system/terway by the ClusterRoleBinding of the same name."""
    (role,) = [d for d in by_kind("ClusterRole", docs) if d["metadata"]["name"] == POLICY_ROLE]
    (binding,) = [d for d in by_kind("ClusterRoleBinding", docs)
                  if d["roleRef"]["name"] == POLICY_ROLE]
    assert binding["metadata"]["name"] == POLICY_ROLE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": POLICY_ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "terway",
                                    "namespace": "kube-system"}]
    out: set[tuple[str, str, str]] = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, \
            f"{rule}: no resourceNames, nonResourceURLs or aggregation"
        out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                for v in rule["verbs"]}
    return out


def check_policy_rbac(docs: list[dict[str, Any]]) -> None:
    """terway-policy is read-only (get, list, watch: Felix lists and watches everything it
    reads) but for `create` on exactly the objects terway/policy/datastore.py creates when
    missing (ClusterInformation/default and Tier/default, cluster-scoped); it reads every CRD
    of calico-crds.yaml and Felix's Kubernetes kinds, nothing else."""
    grants = policy_grants(docs)
    crds = crd_resources()
    writes = {(g, r, v) for g, r, v in grants if v not in READ_VERBS}
    created = {(datastore.GROUP, plural) for plural, _, _ in datastore.OBJECTS}
    assert created == {("crd.projectcalico.org", "clusterinformations"),
                       ("crd.projectcalico.org", "tiers")}
    assert writes == {(g, r, "create") for g, r in created}, f"writes: {sorted(writes)}"
    assert all(crds[key] == "Cluster" for key in created), "created with *_cluster_custom_object"
    reads = {(g, r) for g, r, v in grants if v in READ_VERBS}
    for g, r in sorted(reads):
        assert {v for gg, rr, v in grants if (gg, rr) == (g, r)} >= READ_VERBS, \
            f"{g}/{r}: Felix lists and watches what it reads"
    assert set(crds) <= reads, f"CRDs Felix cannot read: {sorted(set(crds) - reads)}"
    expected = set(crds) | FELIX_READS
    assert reads == expected, f"reads differ: {sorted(reads ^ expected)}"


def check_rbac(docs: list[dict[str, Any]]) -> None:
    text = json.dumps([d for d in docs if d["kind"] in ("Role", "ClusterRole")])
    assert '"*"' not in text, "wildcard in RBAC"
    (sa,) = by_kind("ServiceAccount", docs)
    assert (sa["metadata"]["name"], sa["metadata"]["namespace"]) == ("terway", "kube-system")
    assert pod_spec(docs)["serviceAccountName"] == "terway"
    assert granted(docs) == set(CALLS.values())
    check_policy_rbac(docs)


def test_rbac_grants_exactly_what_terwayd_calls() -> None:
    source = (ROOT / "terway" / "daemon" / "k8s.py").read_text()
    used = set(re.findall(r"self\.core\.(\w+)\(", source))
    assert used == set(CALLS), f"k8s.py calls changed: {sorted(used ^ set(CALLS))}: " \
                               "update CALLS and deploy/kubernetes/rbac.yaml"
    check_rbac(rendered())


def test_policy_rbac_grants_what_terwayd_policy_calls() -> None:
    """terwayd policy's own calls (terway/policy/*.py) are datastore.py's get/create of cluster
    custom objects and a Node event through KubeApi (k8s.py's create_namespaced_event, granted
    by terway-pod-reader); Felix's are the reads check_policy_rbac pins."""
    used: set[str] = set()
    for f in sorted((ROOT / "terway" / "policy").glob("*.py")):
        used |= set(re.findall(r"\.(\w+_custom_objects?)\(", f.read_text()))
    assert used == set(POLICY_CALLS), f"terway/policy calls changed: {sorted(used)}: update " \
                                      "POLICY_CALLS and the terway-policy ClusterRole"
    grants = policy_grants(rendered())
    for plural, _, _ in datastore.OBJECTS:
        for verb in POLICY_CALLS.values():
            assert (datastore.GROUP, plural, verb) in grants, (plural, verb)
    assert ("events", "create", "cluster") in granted(rendered())   # record_node_event
    check_policy_rbac(rendered())


def test_calico_crds_are_in_the_base_and_the_chart() -> None:
    """calico-crds.yaml is a resource of the base, and the chart's crds/ (which Helm installs
    before its templates) holds the same file byte for byte: one source, copied. Fix a
    difference with  cp deploy/kubernetes/calico-crds.yaml deploy/helm/terway-py/crds/"""
    k = yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())
    assert CRDS_FILE.name in k["resources"]
    crds = crd_resources()
    assert {g for g, _ in crds} == {"crd.projectcalico.org", "policy.networking.k8s.io"}
    assert {(d["spec"]["group"], d["spec"]["names"]["plural"])
            for d in by_kind("CustomResourceDefinition")} == set(crds)
    assert sorted(p.name for p in CHART_CRDS_DIR.iterdir()) == [CRDS_FILE.name]
    chart_file = CHART_CRDS_DIR / CRDS_FILE.name
    assert chart_file.read_bytes() == CRDS_FILE.read_bytes(), \
        "deploy/helm/terway-py/crds/calico-crds.yaml differs from deploy/kubernetes/: copy it"
