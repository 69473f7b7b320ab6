"""The Helm chart deploy/helm/terway-py with a real helm (built from its Go module by
scripts/kube/build.sh): lint passes, the default render (with the CRDs of its crds/ directory,
``--include-crds``) is the kustomize base's objects, and each value changes what its comment in
values.yaml says. No skip: without helm these tests fail
(build.sh builds it; ``nox -s kube`` passes its bin dir as ``$TERWAY_KUBE_BIN``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from terway.cloud.credentials import parse_token_file
from terway.cni.config import parse_netconf
from terway.config import parse_eni_conf
from terway.config.configmap import load_configmap_dir
from terway.daemon.install import conflist
from terway.daemon.main import build_parser
from terway.policy.main import not_enforced_reason
from tests.deploy.test_manifests import (
    CRDS_FILE,
    IMAGE,
    by_kind,
    check_daemonset,
    check_image,
    check_policy_container,
    check_rbac,
    container,
    crd_resources,
    pod_spec,
    rendered,
)

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "terway-py"
_HELM: list[str] = []


def helm() -> str:
    """helm from ``$TERWAY_KUBE_BIN``, else from ``scripts/kube/build.sh`` (cached build)."""
    if _HELM:
        return _HELM[0]
    bin_dir = os.environ.get("TERWAY_KUBE_BIN", "")
    if not bin_dir:
        script = ROOT / "scripts" / "kube" / "build.sh"
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            pytest.fail(f"helm unavailable: {script} exited {proc.returncode}: "
                        f"{proc.stderr.strip()[-2000:]}")
        bin_dir = lines[-1]
    exe = Path(bin_dir) / "helm"
    if not exe.is_file():
        pytest.fail(f"helm unavailable: no {exe} (TERWAY_KUBE_BIN={bin_dir!r})")
    _HELM.append(str(exe))
    return str(exe)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False)


def template(tmp_path: Path | None = None, values: dict[str, Any] | None = None, *,
             include_crds: bool = False) -> list[dict[str, Any]]:
    """``helm template``; the CRDs of crds/ only with ``include_crds`` (``helm install`` applies
    them before the templates, ``helm template`` leaves them out unless asked)."""
    argv = ["template", "terway-py", str(CHART), "--namespace", "kube-system"]
    if include_crds:
        argv.append("--include-crds")
    if values is not None:
        assert tmp_path is not None
        f = tmp_path / "values.yaml"
        f.write_text(yaml.safe_dump(values))
        argv += ["--values", str(f)]
    proc = run_helm(*argv)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def template_error(tmp_path: Path, values: dict[str, Any]) -> str:
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(values))
    proc = run_helm("template", "terway-py", str(CHART), "--values", str(f))
    assert proc.returncode != 0, "rendered although the values cannot be honoured"
    return proc.stderr


def eni_conf(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (cm,) = by_kind("ConfigMap", docs)
    conf: dict[str, Any] = json.loads(cm["data"]["eni_conf"])
    return conf


def cni_conf(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (cm,) = by_kind("ConfigMap", docs)
    conf: dict[str, Any] = json.loads(cm["data"]["10-terway.conf"])
    return conf


def _key(d: dict[str, Any]) -> tuple[str, str]:
    return d["kind"], d["metadata"]["name"]


def test_helm_lint_strict_passes() -> None:
    proc = run_helm("lint", "--strict", str(CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_default_render_is_the_kustomize_base() -> None:
    """Every object but eni-config's eni_conf (values vs. the base's placeholders) is equal to
    the kustomize render, the CRDs of crds/ included, so the chart inherits every property
    test_manifests checks."""
    docs, base = template(include_crds=True), rendered()
    assert sorted(map(_key, docs)) == sorted(map(_key, base))
    helm_by, base_by = {_key(d): d for d in docs}, {_key(d): d for d in base}
    for key, obj in base_by.items():
        if key == ("ConfigMap", "eni-config"):
            continue
        assert helm_by[key] == obj, f"{key}: the chart and deploy/kubernetes differ"
    check_daemonset(docs)
    check_rbac(docs)
    (cm,) = by_kind("ConfigMap", docs)
    (base_cm,) = by_kind("ConfigMap", base)
    assert cm["data"]["10-terway.conf"] == base_cm["data"]["10-terway.conf"]
    assert cm["data"]["disable_network_policy"] == base_cm["data"]["disable_network_policy"]
    parsed = parse_eni_conf(eni_conf(docs))
    assert parsed.warnings == ()
    assert (parsed.daemon_mode, parsed.ip_stack, parsed.credential_path) == \
        ("ENIMultiIP", "ipv4", "")       # no credential_path: the instance RAM role


def test_render_validates_against_schema() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    for doc in template(include_crds=True):
        kv.validate(doc, "1.32", strict=True)


def test_crds_come_from_the_crds_directory_only() -> None:
    """The CRDs are crds/ (installed first by ``helm install``, left alone by upgrade and
    uninstall), not templates: without --include-crds no CRD renders, and what Helm reads from
    crds/ is the base's calico-crds.yaml (the file itself: test_manifests checks the bytes)."""
    assert by_kind("CustomResourceDefinition", template()) == []
    proc = run_helm("show", "crds", str(CHART))
    assert proc.returncode == 0, proc.stderr
    shown = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert shown == [d for d in yaml.safe_load_all(CRDS_FILE.read_text()) if d]
    assert by_kind("CustomResourceDefinition", template(include_crds=True)) == shown
    assert set(crd_resources(proc.stdout)) == set(crd_resources())


def test_policy_container_is_the_kustomize_one(tmp_path: Path) -> None:
    """The policy container, its volumes and its ClusterRole/Binding as the base's, field for
    field; retargeting the image moves it with terwayd's, and policyResources only its
    resources."""
    docs, base = template(), rendered()
    assert container("policy", docs) == container("policy", base)
    assert [c["name"] for c in pod_spec(docs)["containers"]] == ["terway", "policy"]
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    base_volumes = {v["name"]: v for v in pod_spec(base)["volumes"]}
    for m in container("policy", base)["volumeMounts"]:
        assert volumes[m["name"]] == base_volumes[m["name"]], m["name"]
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        (mine,) = [d for d in by_kind(kind, docs) if d["metadata"]["name"] == "terway-policy"]
        (theirs,) = [d for d in by_kind(kind, base) if d["metadata"]["name"] == "terway-policy"]
        assert mine == theirs, kind
    check_policy_container(docs)

    image = "registry.example.com/net/terway:v0.2.0"
    docs = template(tmp_path, {"terway": {
        "image": {"repository": image.rpartition(":")[0], "tag": "v0.2.0",
                  "pullPolicy": "Always"},
        "policyResources": {"requests": {"cpu": "100m"}}}})
    policy, terway = container("policy", docs), container("terway", docs)
    assert (policy["image"], policy["imagePullPolicy"]) == (image, "Always")
    assert (terway["image"], terway["imagePullPolicy"]) == (image, "Always")
    assert policy["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                   "limits": {"memory": "512Mi"}}
    check_policy_container(docs)
    expected = container("policy", base)
    for c in (policy, expected):
        for key in ("image", "imagePullPolicy", "resources"):
            c.pop(key)
    assert policy == expected


@pytest.mark.parametrize(("values", "disable", "enforced"), [
    ({}, "true", False),
    ({"enableNetworkPolicy": True}, "false", True),
    ({"enableNetworkPolicy": True, "daemonMode": "ENIOnly"}, "false", False),
    ({"enableNetworkPolicy": True, "enableIPvlan": True}, "false", False),
])
def test_enable_network_policy_reaches_the_policy_container(
        tmp_path: Path, values: dict[str, Any], disable: str, enforced: bool) -> None:
    """terway.enableNetworkPolicy is written as eni-config's disable_network_policy (negated),
    which `terwayd policy` reads from the mounted ConfigMap: Felix runs only when it is "false"
    on a veth node (ENIOnly and IPVlan nodes enforce nothing, as values.yaml says)."""
    docs = template(tmp_path, {"terway": values})
    (cm,) = by_kind("ConfigMap", docs)
    assert cm["data"]["disable_network_policy"] == disable
    mounted = tmp_path / "eni"
    mounted.mkdir()
    for key, text in cm["data"].items():
        (mounted / key).write_text(text)
    conf = load_configmap_dir(mounted)
    assert conf.disable_network_policy is (disable == "true")
    assert (not_enforced_reason(conf) == "") is enforced


def test_image_values_retarget_every_container(tmp_path: Path) -> None:
    docs = template(tmp_path, {"terway": {"image": {
        "repository": "registry.example.com/net/terway", "tag": "v0.2.0"}}})
    check_image(docs, "registry.example.com/net/terway:v0.2.0")
    docs = template(tmp_path, {"terway": {"imagePullSecrets": [{"name": "acr"}]}})
    assert pod_spec(docs)["imagePullSecrets"] == [{"name": "acr"}]
    check_image(template(), IMAGE)            # default tag = the chart's appVersion


def test_network_values_reach_eni_conf_and_parse(tmp_path: Path) -> None:
    docs = template(tmp_path, {"terway": {
        "vSwitchIDs": {"cn-hangzhou-k": ["vsw-a", "vsw-b"]},
        "securityGroupIDs": ["sg-1", "sg-2"], "serviceCIDR": "172.21.0.0/20",
        "daemonMode": "ENIOnly", "maxPoolSize": 9, "minPoolSize": 3,
        "eniConf": {"max_eni": 3, "ip_pool_sync_period": "60s"}}})
    conf = parse_eni_conf(eni_conf(docs))
    assert conf.warnings == ()
    assert dict(conf.vswitches) == {"cn-hangzhou-k": ("vsw-a", "vsw-b")}
    assert tuple(conf.security_groups) == ("sg-1", "sg-2")
    assert conf.service_cidr == "172.21.0.0/20"
    assert (conf.daemon_mode, conf.max_pool_size, conf.min_pool_size) == ("ENIOnly", 9, 3)
    assert (conf.max_eni, conf.ip_pool_sync_period) == (3, 60.0)


def test_enable_ipvlan_sets_the_virtual_type_our_plugin_reads(tmp_path: Path) -> None:
    for enable, expected in ((True, "ipvlan"), (False, "veth")):
        cni = cni_conf(template(tmp_path, {"terway": {"enableIPvlan": enable}}))
        cl = conflist(cni)
        (plugin,) = cl["plugins"]
        net = parse_netconf({**plugin, "name": cl["name"], "cniVersion": cl["cniVersion"]},
                            "ADD")
        assert net.eniip_virtual_type == expected


def test_access_key_goes_to_a_secret_never_to_the_configmap(tmp_path: Path) -> None:
    docs = template(tmp_path, {"terway": {"accessKey": "LTAI-test-id",
                                          "accessSecret": "s3cr3t-value"}})
    (secret,) = by_kind("Secret", docs)
    assert secret["metadata"] == {"name": "terway-credentials", "namespace": "kube-system"}
    cred = parse_token_file(secret["stringData"]["addon.token.config"].encode())
    assert cred.access_key_id == "LTAI-test-id"
    others = json.dumps([d for d in docs if d["kind"] != "Secret"])
    assert "s3cr3t-value" not in others and "LTAI-test-id" not in others
    conf = eni_conf(docs)
    assert conf["credential_path"] == "/var/addon/token-config"
    (vol,) = [v for v in pod_spec(docs)["volumes"] if v["name"] == "addon-token"]
    assert vol["secret"]["secretName"] == "terway-credentials"
    assert vol["secret"]["optional"] is False
    (mount,) = [m for m in container("terway", docs)["volumeMounts"]
                if m["name"] == "addon-token"]
    assert f"{mount['mountPath']}/{vol['secret']['items'][0]['path']}" == conf["credential_path"]


def test_credential_path_uses_the_addon_token_secret(tmp_path: Path) -> None:
    docs = template(tmp_path, {"terway": {"credentialPath": "/var/addon/token-config"}})
    assert eni_conf(docs)["credential_path"] == "/var/addon/token-config"
    assert by_kind("Secret", docs) == []
    (vol,) = [v for v in pod_spec(docs)["volumes"] if v["name"] == "addon-token"]
    assert vol["secret"]["secretName"] == "addon.network.token"
    assert vol["secret"]["optional"] is True


def test_metrics_port_moves_flag_port_and_probes_together(tmp_path: Path) -> None:
    docs = template(tmp_path, {"terway": {"metricsPort": 19100,
                                          "extraArgs": ["--log-level", "debug"]}})
    c = container("terway", docs)
    args = build_parser().parse_args(c["command"][1:] + c["args"])
    assert args.metrics_port == 19100 and args.log_level == "debug"
    check_daemonset(docs)           # the probes still reach the port terwayd serves


def test_rollout_and_pod_values(tmp_path: Path) -> None:
    docs = template(tmp_path, {"terway": {"maxUnavailable": 2,
                                          "podAnnotations": {"prometheus.io/scrape": "true"},
                                          "resources": {"requests": {"cpu": "200m",
                                                                     "memory": "192Mi"}}}})
    (ds,) = by_kind("DaemonSet", docs)
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 2
    assert ds["spec"]["template"]["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    # Helm merges maps: the requests given, the default limit kept
    assert container("terway", docs)["resources"] == {
        "requests": {"cpu": "200m", "memory": "192Mi"}, "limits": {"memory": "320Mi"}}


@pytest.mark.parametrize(("values", "named"), [
    ({"enableDatapathV2": True}, "terway.enableDatapathV2"),
    ({"enableNetworkPolicy": "false"}, "terway.enableNetworkPolicy"),
    ({"daemonMode": "VPC"}, "terway.daemonMode"),
    ({"accessKey": "LTAI-only"}, "terway.accessSecret"),
    ({"accessSecret": "only-secret"}, "terway.accessKey"),
])
def test_values_that_cannot_be_honoured_refuse_to_render(tmp_path: Path, values: dict[str, Any],
                                                         named: str) -> None:
    err = template_error(tmp_path, {"terway": values})
    assert named in err, err
    assert "only-secret" not in err
