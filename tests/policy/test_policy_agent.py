"""``terwayd policy`` without a cluster: which mode a node's eni-config selects, Felix's
environment, the two Calico objects, removing an earlier Felix's rules, the idle probes.
(On a real cluster: tests/kube/test_policy.py.)"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from terway.config.configmap import load_configmap_dir
from terway.policy import cleanup, datastore, felix, idle, lint, main as policy_main, reporter

ENI_CONF = {"version": "1", "vswitches": {"cn-hangzhou-h": ["vsw-1"]},
            "security_group": "sg-1", "service_cidr": "172.21.0.0/20"}


def configmap(tmp_path: Path, *, disable: str | None, eni: dict[str, Any] | None = None,
              virtual: str = "Veth") -> Path:
    (tmp_path / "eni_conf").write_text(json.dumps({**ENI_CONF, **(eni or {})}))
    (tmp_path / "10-terway.conf").write_text(json.dumps(
        {"cniVersion": "0.4.0", "name": "terway", "type": "terway",
         "eniip_virtual_type": virtual}))
    if disable is not None:
        (tmp_path / "disable_network_policy").write_text(disable)
    return tmp_path


# -- which mode ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("disable", "eni", "virtual", "reason"), [
    ("false", {}, "Veth", ""),
    (None, {}, "Veth", ""),                       # absent key: enforced, as upstream reads it
    ("true", {}, "Veth", "disable_network_policy"),
    ("TRUE", {}, "Veth", "disable_network_policy"),
    ("false", {"daemon_mode": "ENIOnly"}, "Veth", "ENIOnly"),
    ("false", {}, "IPVlan", "IPVlan"),
])
def test_mode_follows_eni_config(tmp_path: Path, disable: str | None, eni: dict[str, Any],
                                 virtual: str, reason: str) -> None:
    conf = load_configmap_dir(configmap(tmp_path, disable=disable, eni=eni, virtual=virtual))
    got = policy_main.not_enforced_reason(conf)
    assert (reason in got) if reason else got == ""


class Calls:
    def __init__(self) -> None:
        self.idle: list[str] = []
        self.execs: list[tuple[str, list[str], dict[str, str]]] = []
        self.ensured = 0
        self.events: list[str] = []


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    c = Calls()
    monkeypatch.setattr(policy_main.idle, "serve_idle", lambda reason, h, p: c.idle.append(reason))
    monkeypatch.setattr(policy_main.cleanup, "remove_felix_state", lambda: 3)
    monkeypatch.setattr(policy_main, "_ensure_datastore", lambda k: setattr(
        c, "ensured", c.ensured + 1))
    monkeypatch.setattr(policy_main, "_node_event", lambda args, reason: c.events.append(reason))

    class FakeFelix:
        def __init__(self, argv: list[str], env: dict[str, str]) -> None:
            c.execs.append((argv[0], argv, env))

        def wait(self) -> int:
            return -15                              # ended by SIGTERM

        def send_signal(self, sig: int) -> None:
            pass
    monkeypatch.setattr(policy_main.subprocess, "Popen", FakeFelix)
    monkeypatch.setattr(policy_main.reporter, "watch_forever", lambda node, stop: None)
    monkeypatch.setattr(policy_main.signal, "signal", lambda sig, handler: None)
    return c


def run(tmp_path: Path, *extra: str) -> int:
    return policy_main.main(["--configmap-dir", str(tmp_path), "--node-name", "node-1", *extra])


def test_enabled_runs_felix_after_the_datastore(tmp_path: Path, calls: Calls) -> None:
    configmap(tmp_path, disable="false")
    assert run(tmp_path, "--felix", "/opt/felix") == 128 + 15    # Felix's end is the container's
    assert calls.ensured == 1 and not calls.idle
    (binary, argv, env), = calls.execs
    assert binary == "/opt/felix" and argv == ["/opt/felix"]
    assert env["FELIX_FELIXHOSTNAME"] == "node-1" and env["FELIX_DATASTORETYPE"] == "kubernetes"


def test_disabled_idles_after_removing_felix_state(tmp_path: Path, calls: Calls) -> None:
    configmap(tmp_path, disable="true")
    assert run(tmp_path) == 0
    assert calls.idle == ['disable_network_policy is "true"']
    assert not calls.execs and not calls.ensured and not calls.events   # off by choice: no event


def test_a_node_felix_cannot_see_idles_with_a_node_event(tmp_path: Path, calls: Calls) -> None:
    configmap(tmp_path, disable="false", virtual="IPVlan")
    assert run(tmp_path) == 0
    assert not calls.execs and len(calls.idle) == 1
    assert calls.events and "IPVlan" in calls.events[0]


@pytest.mark.parametrize(("setup", "message"), [
    ({"disable": "maybe"}, 'disable_network_policy: must be "true" or "false", got "maybe"'),
    ({"eni": {"max_pool_size": -1}}, "max_pool_size"),
])
def test_bad_config_exits_2_naming_it_and_starts_nothing(
        tmp_path: Path, calls: Calls, capsys: pytest.CaptureFixture[str],
        setup: dict[str, Any], message: str) -> None:
    configmap(tmp_path, disable=setup.get("disable", "false"), eni=setup.get("eni"))
    assert run(tmp_path) == policy_main.EXIT_CONFIG
    assert message in capsys.readouterr().err
    assert not calls.execs and not calls.idle and not calls.ensured


def test_no_node_name_exits_2(tmp_path: Path, calls: Calls, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    configmap(tmp_path, disable="false")
    assert policy_main.main(["--configmap-dir", str(tmp_path), "--node-name", ""]) == 2
    assert "no node name" in capsys.readouterr().err and not calls.execs


# -- Felix's environment ---------------------------------------------------------------------------
def test_felix_env_keeps_the_container_env_and_owns_no_routes() -> None:
    env = felix.felix_env(felix.FelixSettings("n1", health_port=9999),
                          {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "FELIX_HEALTHPORT": "1"})
    assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.1"
    assert env["FELIX_HEALTHPORT"] == "9999"            # ours win over an inherited value
    assert env["FELIX_ROUTESYNCDISABLED"] == "true"     # routes are the datapath's
    assert env["FELIX_INTERFACEPREFIX"] == "cali"
    assert env["FELIX_HEALTHHOST"] == env["FELIX_PROMETHEUSMETRICSHOST"] == "127.0.0.1"


# -- the Calico objects ----------------------------------------------------------------------------
class FakeCustomObjects:
    def __init__(self, existing: set[str], create_status: int = 0, get_status: int = 0) -> None:
        self.existing, self.created = existing, []
        self.create_status, self.get_status = create_status, get_status

    def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str) -> Any:
        if self.get_status:
            raise ApiException(status=self.get_status)
        if plural not in self.existing:
            raise ApiException(status=404)
        return {}

    def create_cluster_custom_object(self, group: str, version: str, plural: str,
                                     body: dict[str, Any]) -> Any:
        if self.create_status:
            raise ApiException(status=self.create_status)
        assert group == "crd.projectcalico.org" and body["metadata"]["name"] == "default"
        self.created.append(body)
        return body


def test_missing_objects_are_created_existing_ones_left_alone() -> None:
    api = FakeCustomObjects({"tiers"})
    assert datastore.ensure_objects(api) == ["ClusterInformation"]
    (body,) = api.created
    assert body["spec"] == {"datastoreReady": True}
    assert datastore.ensure_objects(FakeCustomObjects({"tiers", "clusterinformations"})) == []


def test_another_node_creating_first_is_fine_other_errors_are_not() -> None:
    assert datastore.ensure_objects(FakeCustomObjects(set(), create_status=409)) == [
        "ClusterInformation", "Tier"]
    with pytest.raises(ApiException):
        datastore.ensure_objects(FakeCustomObjects(set(), get_status=403))


# -- removing an earlier Felix ---------------------------------------------------------------------
FILTER_SAVE = """# Generated by iptables-nft-save v1.8.9 (nf_tables) on Fri Dec  4 21:00:00 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:cali-FORWARD - [0:0]
:cali-INPUT - [0:0]
:cali-fw-cali1234567890a - [0:0]
-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A FORWARD -m comment --comment "not ours, mentions cali-FORWARD" -j ACCEPT
-A cali-FORWARD -j cali-fw-cali1234567890a
-A cali-fw-cali1234567890a -j DROP
COMMIT
"""


def test_plan_removes_only_felix_chains_and_the_jumps_into_them() -> None:
    plan = cleanup.plan_table("filter", FILTER_SAVE)
    assert plan.chains == ("cali-FORWARD", "cali-INPUT", "cali-fw-cali1234567890a")
    assert plan.jumps == (
        ("INPUT", "-m", "comment", "--comment", "cali:Cz_u1IQiXIMmKD4c", "-j", "cali-INPUT"),
        ("FORWARD", "-m", "comment", "--comment", "cali:wUHhoiAYhphO9Mso", "-j", "cali-FORWARD"))


def test_remove_runs_jumps_then_flush_then_delete_and_only_cali_ipsets() -> None:
    ran: list[list[str]] = []

    def fake(argv: Sequence[str]) -> str:
        ran.append(list(argv))
        if argv[0].endswith("-save"):
            return FILTER_SAVE if argv[-1] == "filter" else ""
        if argv[:2] == ["ipset", "list"]:
            return "cali40all-ipam-pools\nKUBE-something\ncali40this-host\n"
        return ""
    assert cleanup.remove_felix_state(fake) == 5
    filter_ops = [a[4:6] for a in ran if a[:4] == ["iptables-nft", "-w", "-t", "filter"]]
    assert [op for op, _ in filter_ops] == ["-D", "-D", "-F", "-F", "-F", "-X", "-X", "-X"]
    assert [a for a in ran if a[0] == "ipset" and a[1] == "destroy"] == [
        ["ipset", "destroy", "cali40all-ipam-pools"], ["ipset", "destroy", "cali40this-host"]]


def test_nothing_left_nothing_done() -> None:
    ran: list[list[str]] = []

    def fake(argv: Sequence[str]) -> str:
        ran.append(list(argv))
        return ""
    assert cleanup.remove_felix_state(fake) == 0
    assert all(a[0].endswith("-save") or a[:2] == ["ipset", "list"] for a in ran)


# -- idle probes -----------------------------------------------------------------------------------
def test_idle_answers_the_probes_with_its_reason() -> None:
    server = idle.make_server("policy is off", "127.0.0.1", 0)
    Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for path in idle.PATHS:
            with urllib.request.urlopen(base + path, timeout=5) as r:
                assert r.status == 200 and b"policy is off" in r.read()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/other", timeout=5)
        assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


# -- what is not enforced, reported on the policy --------------------------------------------------
V6_POLICY = {"metadata": {"name": "mixed", "namespace": "x", "uid": "u-1", "generation": 2},
             "spec": {"podSelector": {}, "ingress": [
                 {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                           {"ipBlock": {"cidr": "2001:db8::/32"}}]}],
                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                 "except": ["fd00::/8"]}}]}]}}


def test_lint_names_each_ipv6_block_and_nothing_else() -> None:
    assert lint.problems(V6_POLICY["spec"]) == [
        "ingress[0].from[1].ipBlock: IPv6 2001:db8::/32 is not enforced (this cluster's policy "
        "is IPv4-only); the rest of the policy is",
        "egress[0].to[0].ipBlock: IPv6 fd00::/8 is not enforced (this cluster's policy is "
        "IPv4-only); the rest of the policy is"]
    assert lint.problems({"podSelector": {}, "ingress": [{"from": [
        {"podSelector": {}}, {"ipBlock": {"cidr": "192.168.0.0/16"}}]}, {}]}) == []
    assert lint.problems({}) == []


class FakeCore:
    def __init__(self, status: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = status

    def create_namespaced_event(self, namespace: str, body: dict[str, Any]) -> None:
        if self.status:
            raise ApiException(status=self.status)
        assert namespace == body["metadata"]["namespace"]
        self.events.append(body)


def test_one_event_per_policy_version_whichever_node_reports() -> None:
    core, seen = FakeCore(), set[str]()
    assert len(reporter.report(core, V6_POLICY, "node-1", seen)) == 2
    assert reporter.report(core, V6_POLICY, "node-1", seen)     # re-list: not sent again
    (event,) = core.events
    assert event["reason"] == reporter.REASON and event["type"] == "Warning"
    assert event["involvedObject"] == {"apiVersion": "networking.k8s.io/v1",
                                       "kind": "NetworkPolicy", "name": "mixed",
                                       "namespace": "x", "uid": "u-1"}
    other = FakeCore()
    reporter.report(other, V6_POLICY, "node-2")
    assert other.events[0]["metadata"]["name"] == event["metadata"]["name"]  # same name: 409
    assert reporter.report(FakeCore(status=409), V6_POLICY, "node-3")         # 409 is fine
    edited = {**V6_POLICY, "metadata": {**V6_POLICY["metadata"], "generation": 3}}
    assert reporter.event_name(edited["metadata"], "m") != reporter.event_name(
        V6_POLICY["metadata"], "m")


def test_a_clean_policy_sends_nothing() -> None:
    core = FakeCore()
    assert reporter.report(core, {"metadata": {"name": "p", "namespace": "x"},
                                  "spec": {"podSelector": {}}}, "node-1") == []
    assert core.events == []
