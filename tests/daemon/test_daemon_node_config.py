"""Per-node config overlay: ``--node-config-patch FILE`` (the content of upstream's
``terway-config`` node-label ConfigMap) merged over the base eni_conf as an RFC 7396 patch."""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from terway.config import ConfigError
from terway.daemon.k8s import KubeApi
from terway.daemon.main import _loader, build_parser, main as terwayd_main
from terway.daemon.node import load_config
from terway.daemon.ports import NoopKube
from tests.daemon.daemon_harness import ZONE, World, run, running_daemon, until


def test_the_patch_overrides_the_base_and_is_watched(tmp_path: Path) -> None:
    world = World.build(cidrs=("192.168.0.0/24", "192.168.1.0/24"))
    vsw_a, vsw_b = world.vswitch_ids
    patch = tmp_path / "node-patch.json"
    patch.write_text(json.dumps({"vswitches": {ZONE: [vsw_b]}, "max_pool_size": 2}))

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(min_pool_size=1),
                                  node_config_patch=str(patch)) as d:
            s = d.daemon.settings
            assert s.vswitch_ids == (vsw_b,)
            assert d.daemon.config.eni_conf.max_pool_size == 2
            assert d.daemon.config.eni_conf.min_pool_size == 1      # from the base
            info = await d.alloc("p1")
            assert ipaddress.ip_address(info.pod_ip) in ipaddress.ip_network("192.168.1.0/24")
            patch.write_text(json.dumps({"vswitches": {ZONE: [vsw_a, vsw_b]}}))
            await until(lambda: d.daemon.settings.vswitch_ids == (vsw_a, vsw_b),
                        "the changed patch to be applied")
            assert d.daemon.config.eni_conf.max_pool_size == 5      # back to the base's

    run(scenario())


def test_null_deletes_a_key_and_lists_replace(tmp_path: Path) -> None:
    base = tmp_path / "eni.json"
    base.write_text(json.dumps({"min_pool_size": 3, "max_pool_size": 9,
                                "security_groups": ["sg-1", "sg-2"]}))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"min_pool_size": None, "security_groups": ["sg-3"]}))
    conf = load_config(str(base), None, node_patch_file=str(patch)).eni_conf
    assert conf.min_pool_size == 0 and conf.max_pool_size == 9
    assert conf.security_groups == ("sg-3",)
    assert str(patch) in load_config(str(base), None, node_patch_file=str(patch)).files


@pytest.mark.parametrize(("content", "expected"), [
    ("not json", "--node-config-patch: "),
    ("[1, 2]", "must hold a JSON object"),
    ('{"max_pool_size": "many"}', "eni_conf.max_pool_size"),
])
def test_a_bad_patch_exits_2_naming_the_problem(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 content: str, expected: str) -> None:
    base = tmp_path / "eni.json"
    base.write_text("{}")
    patch = tmp_path / "patch.json"
    patch.write_text(content)
    code = terwayd_main(["--config", str(base), "--node-config-patch", str(patch),
                         "--state-dir", str(tmp_path / "state")])
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "state").exists()                      # nothing touched


class _KubeWithPatch(NoopKube):
    enabled = True

    def __init__(self, patch: Mapping[str, Any] | None) -> None:
        self.patch = patch

    def node_config_patch(self) -> Mapping[str, Any] | None:
        return self.patch


def test_kubernetes_patch_is_used_unless_a_file_is_given(tmp_path: Path) -> None:
    base = tmp_path / "eni.json"
    base.write_text(json.dumps({"max_pool_size": 9}))
    kube = _KubeWithPatch({"max_pool_size": 4})
    args: argparse.Namespace = build_parser().parse_args(["--config", str(base)])
    assert _loader(args, kube).eni_conf.max_pool_size == 4
    assert _loader(args, _KubeWithPatch(None)).eni_conf.max_pool_size == 9
    assert _loader(args, NoopKube()).eni_conf.max_pool_size == 9
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"max_pool_size": 7}))
    args = build_parser().parse_args(["--config", str(base), "--node-config-patch", str(patch)])
    assert _loader(args, kube).eni_conf.max_pool_size == 7
    with pytest.raises(ConfigError):
        _loader(build_parser().parse_args(["--config", str(base), "--node-config-patch",
                                           str(tmp_path / "missing.json")]))


class _KubeadmCluster(NoopKube):
    enabled = True

    def kubeadm_service_cidr(self) -> str:
        return "10.96.0.0/12"


def test_an_empty_service_cidr_comes_from_kubeadm_config_as_upstream(tmp_path: Path) -> None:
    base = tmp_path / "eni.json"
    base.write_text(json.dumps({"max_pool_size": 9}))
    args: argparse.Namespace = build_parser().parse_args(["--config", str(base)])
    assert _loader(args, _KubeadmCluster()).eni_conf.service_cidr == "10.96.0.0/12"
    assert _loader(args, NoopKube()).eni_conf.service_cidr == ""     # no cluster: none
    base.write_text(json.dumps({"service_cidr": "172.21.0.0/20"}))
    assert _loader(args, _KubeadmCluster()).eni_conf.service_cidr == "172.21.0.0/20"  # own wins


@pytest.mark.parametrize(("data", "expected"), [
    ({"ClusterConfiguration": "kind: ClusterConfiguration\nnetworking:\n"
                              "  serviceSubnet: 10.96.0.1/12\n  podSubnet: 10.244.0.0/16\n"},
     "10.96.0.0/12"),
    ({"ClusterConfiguration": "networking: {serviceSubnet: not-a-cidr}"}, ""),
    ({"ClusterConfiguration": "networking: ["}, ""),
    ({}, ""),
])
def test_kubeadm_config_is_read_and_checked(data: dict[str, str], expected: str) -> None:
    class Core:
        def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
            assert (name, namespace) == ("kubeadm-config", "kube-system")
            return SimpleNamespace(data=data)

    api = object.__new__(KubeApi)
    api.core = Core()
    assert api.kubeadm_service_cidr() == expected
