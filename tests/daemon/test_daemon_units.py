"""Small pieces of the daemon: store, logfmt, flags, bandwidth, lock, metrics, install-cni."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from terway.config.eniconf import parse_eni_conf
from terway.daemon import logfmt
from terway.daemon.bandwidth import parse_aliyun, parse_quantity, pod_bandwidth
from terway.daemon.install import main as install_main
from terway.daemon.lock import AlreadyRunning, LockFile
from terway.daemon.main import main as terwayd_main
from terway.daemon.metrics import Metrics
from terway.daemon.ports import PodMeta
from terway.daemon.store import Intent, PodRecord, Resource, Store


def _rec(name: str, ip: str = "192.168.0.5") -> PodRecord:
    return PodRecord("default", name, f"cid-{name}", f"/run/netns/{name}", "eth0",
                     (Resource("eniIp", "eni-1", "00:16:3e:00:00:01", ip),),
                     extra={"gateway": "192.168.0.253"})


def test_store_round_trip_and_wal(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s")
    store.put_pod(_rec("a"))
    store.add_intent(Intent("tok-1", "create_eni", {"vswitch_id": "vsw-1"}))
    store.update_intent("tok-1", {"vswitch_id": "vsw-1", "eni_id": "eni-9"})
    store.close()
    again = Store.open(tmp_path / "s")
    (rec,) = again.pods()
    assert rec.key == "default/a" and rec.resources[0].id == "00:16:3e:00:00:01.192.168.0.5"
    assert rec.extra == {"gateway": "192.168.0.253"}
    (intent,) = again.intents()
    assert intent.params["eni_id"] == "eni-9"
    mode = sqlite3.connect(tmp_path / "s" / "terway.db").execute(
        "PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_store_transaction_is_atomic(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        store.put_pod(_rec("a"))
        store.clear_intent("x")
        raise RuntimeError("crash in the middle")
    assert store.pods() == []
    with store.transaction():
        store.put_pod(_rec("b"))
        store.add_intent(Intent("t", "assign_ips", {}))
    assert [p.name for p in store.pods()] == ["b"] and len(store.intents()) == 1


def test_committed_change_survives_a_killed_writer(tmp_path: Path) -> None:
    """A separate process commits and dies with os._exit (no close, no checkpoint)."""
    code = (
        f"import os, sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from terway.daemon.store import Store, PodRecord, Resource\n"
        f"s = Store.open({str(tmp_path)!r})\n"
        "s.put_pod(PodRecord('ns', 'p', 'c', '', 'eth0', "
        "(Resource('eniIp', 'eni-1', 'aa:bb:cc:dd:ee:ff', '10.0.0.1'),)))\n"
        "os._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 9
    assert [p.key for p in Store.open(tmp_path).pods()] == ["ns/p"]


def test_logfmt_matches_logrus_quoting() -> None:
    stream = io.StringIO()
    log = logfmt.setup(logging.DEBUG, stream)
    log.warning('The specified VSwitch "vsw-1" has not enough IpAddress., retrying',
                extra=logfmt.fields(pod="ns/p", access_secret="s3cr3t", note="two words"))
    line = stream.getvalue().strip()
    assert line.startswith('time="') and ' level=warning msg="The specified VSwitch \\"vsw-1\\"' \
        in line
    assert 'pod=ns/p' in line and 'note="two words"' in line
    assert "s3cr3t" not in line and 'access_secret="[redacted]"' in line


@pytest.mark.parametrize(("value", "shown"), [
    ("pod\n", '"pod\\n"'),                    # was written bare: the record split in two
    ("a\rb", '"a\\rb"'),
    ("nul\x00", '"nul\\x00"'),
    ("\x1b[2Jwiped", '"\\x1b[2Jwiped"'),     # an ESC sequence must not reach a terminal
    ("tab\there", '"tab\\there"'),
    ("c1\x85", '"c1\\x85"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("plain-value_1.2:3/4@x", "plain-value_1.2:3/4@x"),
])
def test_logfmt_never_writes_a_control_character(value: str, shown: str) -> None:
    assert logfmt.quote(value) == shown
    stream = io.StringIO()
    log = logfmt.setup(logging.DEBUG, stream)
    log.info(value, extra=logfmt.fields(pod=value))
    line = stream.getvalue()
    assert line.count("\n") == 1 and line.endswith("\n")
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in line[:-1])


def test_bandwidth_annotations() -> None:
    assert parse_quantity("10M") == 10_000_000 and parse_quantity("1Gi") == 2**30
    meta = PodMeta(annotations={"kubernetes.io/ingress-bandwidth": "1M",
                                "kubernetes.io/egress-bandwidth": "lots"})
    assert pod_bandwidth(meta, None, 7) == (1_000_000, 7)  # a bad value is ignored
    with pytest.raises(ValueError, match="lots"):
        parse_quantity("lots")
    upstream = PodMeta(annotations={"k8s.aliyun.com/ingress-bandwidth": "2M",
                                    "k8s.aliyun.com/egress-bandwidth": "3M",
                                    "kubernetes.io/egress-bandwidth": "9M"})
    # upstream's annotation is bytes/s in 1024-based units; the kubernetes.io one wins over it
    assert pod_bandwidth(upstream, None, None) == (2 * 2**20 * 8, 9_000_000)
    assert pod_bandwidth(upstream, 5, None) == (5, 9_000_000)   # the runtime's value wins


@pytest.mark.parametrize(("value", "bits"), [
    ("10M", 10 * 2**20 * 8), ("10mb", 10 * 2**20 * 8), ("10MiB", 10 * 2**20 * 8),
    ("512K", 512 * 2**10 * 8), ("1.5G", int(1.5 * 2**30) * 8), ("100B", 800),
])
def test_aliyun_bandwidth_annotation_is_upstreams_bytes(value: str, bits: int) -> None:
    """Issue 10: read as bits/s, the same annotation limited 8.4x harder than upstream."""
    assert parse_aliyun(value) == bits


@pytest.mark.parametrize("value", ["10", "", "10X", "-5M", "0M", "ten"])
def test_a_bad_aliyun_bandwidth_is_ignored_and_reported(value: str) -> None:
    bad: list[tuple[str, str]] = []
    meta = PodMeta(annotations={"k8s.aliyun.com/ingress-bandwidth": value})
    assert pod_bandwidth(meta, None, None, lambda k, v: bad.append((k, v))) == (0, 0)
    assert bad == [("k8s.aliyun.com/ingress-bandwidth", value)]


def test_lock_file_refuses_a_second_daemon(tmp_path: Path) -> None:
    first = LockFile(tmp_path / "terwayd.lock")
    first.acquire()
    with pytest.raises(AlreadyRunning, match=r"terwayd\.lock"):
        LockFile(tmp_path / "terwayd.lock").acquire()
    first.release()
    LockFile(tmp_path / "terwayd.lock").acquire()


def test_metrics_have_upstream_names() -> None:
    m = Metrics()
    m.set_pool(total=4, idle=3, ips_by_eni={"02:00:00:00:00:01": 4})
    m.observe_openapi("AssignPrivateIpAddresses", 12, "Throttling")
    m.rpc_latency.labels("AllocIP", "false").observe(3)
    m.count_alloc("02:00:00:00:00:01", True)
    names = {s.name for fam in m.registry.collect() for s in fam.samples}
    for name in ("terway_resource_pool_total_count", "terway_resource_pool_idle_count",
                 "terway_resource_pool_disposed_count", "terway_eniip_factory_eni_count",
                 "terway_eniip_factory_ip_count", "aliyun_openapi_latency_count",
                 "terway_rpc_latency_count", "terway_eniip_factory_ip_alloc_count"):
        assert name in names, name
    errors = {s.labels.get("error") for f in m.registry.collect() for s in f.samples
              if s.name == "aliyun_openapi_latency_count"}
    assert errors == {"true"}   # upstream's fmt.Sprint(err != nil), not the code


@pytest.mark.parametrize(("argv", "needle"), [
    (["--gc-period", "0"], "--gc-period: must be > 0"),
    (["--log-level", "loud"], "--log-level"),
    (["--metrics-port", "70000"], "--metrics-port"),
    (["--metrics-address", "localhost:1"], "--metrics-address: 'localhost:1' is not an IP"),
])
def test_bad_flags_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                          needle: str) -> None:
    assert terwayd_main([*argv, "--state-dir", str(tmp_path / "s")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_missing_config_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert terwayd_main(["--config", str(tmp_path / "none.json")]) == 2
    assert "--config: cannot read" in capsys.readouterr().err


def test_install_cni_writes_plugin_and_conflist(tmp_path: Path) -> None:
    cm = tmp_path / "eni"
    cm.mkdir()
    (cm / "10-terway.conf").write_text(json.dumps(
        {"cniVersion": "0.3.0", "name": "terway", "type": "terway", "mtu": 1500}))
    plugin = tmp_path / "terway-bin"
    plugin.write_bytes(b"#!/bin/sh\n")
    code = install_main(["--bin-dir", str(tmp_path / "bin"), "--conf-dir", str(tmp_path / "net"),
                         "--configmap-dir", str(cm), "--plugin", str(plugin)])
    assert code == 0
    assert (tmp_path / "bin" / "terway").read_bytes() == b"#!/bin/sh\n"
    conf = json.loads((tmp_path / "net" / "10-terway.conflist").read_text())
    assert conf == {"cniVersion": "0.3.0", "name": "terway",
                    "plugins": [{"type": "terway", "mtu": 1500}]}


def test_install_cni_bundle_runs_without_the_installing_environment(tmp_path: Path) -> None:
    """The default install is a bundle the node's python runs: VERSION works from a copy of the
    bin dir alone (nothing points back into the image's site-packages)."""
    import shutil
    import subprocess
    import sys

    cm = tmp_path / "eni"
    cm.mkdir()
    (cm / "10-terway.conf").write_text(
        '{"cniVersion": "0.3.0", "name": "terway", "type": "terway"}')
    code = install_main(["--bin-dir", str(tmp_path / "bin"), "--conf-dir", str(tmp_path / "net"),
                         "--configmap-dir", str(cm), "--host-python", sys.executable])
    assert code == 0
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "bin", moved)  # prove it is self-contained: a different path…
    launcher = moved / "terway-python"
    launcher.write_text(launcher.read_text().replace(str(tmp_path / "bin"), str(moved)))
    shutil.rmtree(tmp_path / "bin")           # …and the original gone
    for plugin in ("terway", "terway-python"):  # the native front falls back to the launcher
        out = subprocess.run([str(moved / plugin)], input=b"{}", capture_output=True,
                             check=False, env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "1.0.0" in json.loads(out.stdout)["supportedVersions"]


def test_custom_stateful_workload_kinds_keep_their_address() -> None:
    """Issue 10: upstream's custom_stateful_workload_kinds was warned about and ignored."""
    from terway.daemon.service import _sticky

    kruise = PodMeta(owner_kind="AdvancedStatefulSet")
    assert not _sticky(kruise)
    assert _sticky(kruise, parse_eni_conf(
        {"custom_stateful_workload_kinds": ["AdvancedStatefulSet"]}).custom_stateful_workload_kinds)
    assert _sticky(PodMeta(owner_kind="StatefulSet"))
    assert not _sticky(PodMeta(owner_kind="Deployment"), ("AdvancedStatefulSet",))
    assert _sticky(PodMeta(owner_kind="advancedstatefulset"), (" AdvancedStatefulSet ",))
    for yes in ("1", "t", "T", "true", "TRUE", "True"):    # Go's strconv.ParseBool
        assert _sticky(PodMeta(annotations={"k8s.aliyun.com/pod-ip-reservation": yes})), yes
    for no in ("0", "yes", "tRuE", ""):
        assert not _sticky(PodMeta(annotations={"k8s.aliyun.com/pod-ip-reservation": no})), no


def test_the_kubernetes_client_waits_for_its_rate_limit() -> None:
    """Issue 10: kube_client_qps/burst were ignored; every API call now takes a token."""
    from terway.cloud.ratelimit import TokenBucket
    from terway.daemon.k8s import RateLimited

    class Api:
        calls = 0

        def read_node(self, name: str) -> str:
            Api.calls += 1
            return name

    slept: list[float] = []
    api = RateLimited(Api(), TokenBucket(2.0, 2, now=0.0), sleep=slept.append, now=lambda: 0.0)
    assert [api.read_node("n") for _ in range(4)] == ["n"] * 4 and Api.calls == 4
    assert slept == [0.5, 1.0]      # the burst of 2 is free, then one every 1/qps s
    c = parse_eni_conf({"kube_client_qps": 20, "kube_client_burst": 40})
    assert (c.kube_client_qps, c.kube_client_burst) == (20.0, 40) and c.warnings == ()
