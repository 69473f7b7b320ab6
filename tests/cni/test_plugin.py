"""The plugin executable against a fake daemon: results, errors, idempotence, cost.

Every test runs twice: with the Python plugin, and with the native front (which hands the
command to the daemon's ExecCNI, or falls back to the Python plugin): the answers must match.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from terway.cni.launcher import write_launcher
from terway.rpc import messages as rpc
from tests.cni.fakedaemon import DEFAULT_INFO, FakeDaemon
from tests.cni.plugin import PYTHON_PLUGIN, ROOT, cni_env, misbehaving_daemon, netconf, run, use


@pytest.fixture(autouse=True, params=["python", "native"])
def plugin_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "native":
        use([request.getfixturevalue("native_plugin")])
    yield request.param
    use(PYTHON_PLUGIN)


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    with FakeDaemon() as d:
        yield d


def test_add_returns_a_cni_1_0_result(daemon: FakeDaemon) -> None:
    code, out, _ = run(cni_env("ADD"), netconf(daemon.socket))
    assert code == 0, out
    assert out == {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "cali0123456789a", "mac": "0a:00:00:00:00:02"},
            {"name": "eth0", "mac": "0a:00:00:00:00:01", "sandbox": "/var/run/netns/x"},
        ],
        "ips": [{"address": "10.9.0.11/32", "gateway": "169.254.1.1", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}],
        "dns": {},
    }
    method, req = daemon.calls[0]
    assert method == "AllocIP"
    assert (req.pod_name, req.pod_namespace, req.container_id) == ("web-0", "default", "c0ffee")
    assert (req.netns, req.ifname) == ("/var/run/netns/x", "eth0")


def test_add_passes_config_hints_and_bandwidth(daemon: FakeDaemon) -> None:
    conf = netconf(
        daemon.socket,
        eniip_virtual_type="IPVlan",
        mtu=1450,
        capabilities={"bandwidth": True},
        runtimeConfig={"bandwidth": {"ingressRate": 1_000_000, "egressRate": 2_000_000}},
    )
    code, out, _ = run(cni_env("ADD"), conf)
    assert code == 0, out
    req = daemon.calls[0][1]
    assert (req.eniip_virtual_type, req.mtu, req.ingress_bps, req.egress_bps) == (
        "ipvlan",
        1450,
        1_000_000,
        2_000_000,
    )


def test_add_old_result_version_has_ip_version(daemon: FakeDaemon) -> None:
    daemon.responses["AllocIP"] = DEFAULT_INFO._replace(datapath="exclusive", host_ifname="")
    code, out, _ = run(cni_env("ADD"), netconf(daemon.socket, version="0.3.1"))
    assert code == 0
    assert out["cniVersion"] == "0.3.1"
    assert out["ips"] == [
        {"address": "10.9.0.11/32", "gateway": "10.9.0.253", "interface": 0, "version": "4"}
    ]


@pytest.mark.parametrize(
    ("error", "code", "needle"),
    [
        (
            rpc.RpcError(
                "InvalidVSwitchId.IpNotEnough",
                "exhausted",
                "Aliyun API Error: Code: InvalidVSwitchId.IpNotEnough Message: no ip",
            ),
            11,
            "InvalidVSwitchId.IpNotEnough",
        ),
        (rpc.RpcError("Throttling.User", "throttled", "slow down"), 11, "Throttling.User"),
        (rpc.RpcError("InternalError", "transient", "oops"), 11, "InternalError"),
        (rpc.RpcError(rpc.ERR_IN_FLIGHT, rpc.CLASS_BUSY, "request in flight"), 11, "in flight"),
        (rpc.RpcError("Forbidden.RAM", "auth", "denied"), 103, "Forbidden.RAM"),
        (rpc.RpcError(rpc.ERR_UNKNOWN_CONTAINER, "not_found", "who?"), 3, "who?"),
    ],
)
def test_add_maps_daemon_errors(
    daemon: FakeDaemon, error: rpc.RpcError, code: int, needle: str
) -> None:
    daemon.responses["AllocIP"] = error
    rc, out, err = run(cni_env("ADD"), netconf(daemon.socket))
    assert rc != 0
    assert out["code"] == code and needle in out["msg"], out
    assert set(out) == {"cniVersion", "code", "msg", "details"}
    assert "Traceback" not in err
    events = [req for m, req in daemon.calls if m == "RecordEvent"]
    assert events and events[0].reason == "AllocIPFailed" and needle in events[0].message


def test_daemon_unreachable() -> None:
    rc, out, err = run(cni_env("ADD"), netconf("/nonexistent/eni.socket"))
    assert rc == 1 and out["code"] == 100
    assert "unreachable at /nonexistent/eni.socket" in out["msg"]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("env_over", "stdin", "code", "needle"),
    [
        ({"CNI_COMMAND": None}, None, 4, "CNI_COMMAND is not set"),
        ({"CNI_COMMAND": "FROB"}, None, 4, "CNI_COMMAND='FROB'"),
        ({"CNI_CONTAINERID": None}, None, 4, "CNI_CONTAINERID"),
        ({"CNI_NETNS": None}, None, 4, "CNI_NETNS"),
        ({"CNI_IFNAME": None}, None, 4, "CNI_IFNAME"),
        ({"CNI_ARGS": "K8S_POD_NAMESPACE=a;garbage"}, None, 4, "CNI_ARGS: malformed item"),
        ({"CNI_ARGS": "K8S_POD_NAMESPACE=a"}, None, 4, "K8S_POD_NAME"),
        ({}, b'{"cniVersion": "1.0.0", "name": ', 6, "line 1 column"),
        ({}, b"\xff\xfe", 6, "not"),
        ({}, b'{"cniVersion": "1.0.0", "name": "a\x01"}', 6, "Invalid control character"),
        ({}, b"[1]", 6, "JSON object"),
        ({}, {"cniVersion": "9.9.9", "name": "x"}, 1, "incompatible CNI version '9.9.9'"),
        ({}, {"name": "x"}, 7, "cniVersion"),
        ({}, {"cniVersion": "1.0.0"}, 7, "name"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "mtu": "big"}, 7, "mtu"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "mtu": 20}, 7, "mtu"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "eniip_virtual_type": "vxlan"}, 7,
         "eniip_virtual_type"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "eniip_virtual_type": "datapathv2"}, 7,
         "not implemented by terway-py; use IPVlan"),
        ({}, {"cniVersion": "1.0.0", "name": "x",
              "runtimeConfig": {"bandwidth": {"egressRate": -1}}}, 7,
         "runtimeConfig.bandwidth.egressRate"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "daemon_socket": 5}, 7, "daemon_socket"),
        # found by fuzzing (issue 9): each was a plugin bug (199), a 103, or went through
        ({"CNI_CONTAINERID": "c0/ffee"}, None, 4, "CNI_CONTAINERID"),
        ({"CNI_CONTAINERID": "-c0ffee"}, None, 4, "CNI_CONTAINERID"),
        ({"CNI_IFNAME": "eth0:1"}, None, 4, "CNI_IFNAME"),
        ({"CNI_IFNAME": "e" * 16}, None, 4, "CNI_IFNAME"),
        ({"CNI_IFNAME": ".."}, None, 4, "CNI_IFNAME"),
        ({"CNI_ARGS": "K8S_POD_NAMESPACE=n;K8S_POD_NAME=m/a/b"}, None, 4, "K8S_POD_NAME="),
        ({"CNI_ARGS": "K8S_POD_NAMESPACE=n/m;K8S_POD_NAME=a"}, None, 4, "K8S_POD_NAMESPACE="),
        ({"CNI_ARGS": "K8S_POD_NAMESPACE=Default;K8S_POD_NAME=a"}, None, 4, "K8S_POD_NAMESPACE="),
        ({"CNI_ARGS": "K8S_POD_NAMESPACE=n;K8S_POD_NAME=" + "a" * 254}, None, 4, "K8S_POD_NAME="),
        ({}, b'{"cniVersion": "1.0.0", "name": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
         6, "nested too deeply"),
        ({}, b"[" * 100000, 6, "not valid JSON"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "rpc_timeout": -1}, 7, "rpc_timeout: -1"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "rpc_timeout": 0}, 7, "rpc_timeout: 0"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "rpc_timeout": 10**12}, 7, "rpc_timeout"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "rpc_timeout": 1.5}, 7, "rpc_timeout"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "rpc_timeout": 1e12}, 7, "rpc_timeout"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "host_stack_cidrs": "10.0.0.0/8"}, 7,
         "host_stack_cidrs: expected list"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "host_stack_cidrs": ["10.0.0.0/8", "x/1"]}, 7,
         "host_stack_cidrs[1]: 'x/1' is not a CIDR"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "host_stack_cidrs": [8]}, 7,
         "host_stack_cidrs[0]: expected a string"),
        ({}, {"cniVersion": "1.0.0", "name": "x", "host_stack_cidrs": ["fd00::/64"]}, 7,
         "IPv6 is not available"),
    ],
)
def test_bad_input_is_a_spec_error(
    daemon: FakeDaemon, env_over: dict[str, str], stdin: object, code: int, needle: str
) -> None:
    conf = netconf(daemon.socket) if stdin is None else stdin
    rc, out, err = run(cni_env("ADD", **env_over), conf)  # type: ignore[arg-type]
    assert rc == 1
    assert out["code"] == code and needle in out["msg"], out
    assert "Traceback" not in err
    assert daemon.calls == []  # nothing reached the daemon


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_a_non_utf8_pod_name_is_invalid_env_on_every_command(daemon: FakeDaemon,
                                                             command: str) -> None:
    env: dict[str, Any] = cni_env(command)
    env["CNI_ARGS"] = b"K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-\xff"
    rc, out, err = run(env, netconf(daemon.socket))
    assert rc == 1 and out["code"] == 4 and "K8S_POD_NAME='web-\\udcff'" in out["msg"], out
    assert daemon.calls == [] and "Traceback" not in err


def test_version(daemon: FakeDaemon) -> None:
    rc, out, _ = run(cni_env("VERSION"), {"cniVersion": "0.4.0"})
    assert rc == 0
    assert out == {
        "cniVersion": "0.4.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }
    rc, out, _ = run(cni_env("VERSION"), b"")
    assert rc == 0 and out["cniVersion"] == "1.1.0"


def test_status(daemon: FakeDaemon) -> None:
    conf = netconf(daemon.socket, version="1.1.0")
    rc, out, _ = run(cni_env("STATUS"), conf)
    assert rc == 0 and out is None
    daemon.responses["Status"] = rpc.StatusReply(ready=False, message="no vSwitch has free IPs")
    rc, out, _ = run(cni_env("STATUS"), conf)
    assert rc == 1 and out["code"] == 50 and "no vSwitch has free IPs" in out["msg"]
    rc, out, _ = run(cni_env("STATUS"), netconf("/nonexistent.sock", version="1.1.0"))
    assert rc == 1 and out["code"] == 50 and "unreachable" in out["msg"]


def test_del_is_idempotent_and_works_without_netns(daemon: FakeDaemon) -> None:
    rc, out, _ = run(cni_env("DEL"), netconf(daemon.socket))
    assert rc == 0 and out is None
    daemon.responses["ReleaseIP"] = rpc.RpcError(rpc.ERR_UNKNOWN_CONTAINER, "not_found", "gone")
    rc, out, _ = run(cni_env("DEL", CNI_NETNS=""), netconf(daemon.socket))
    assert rc == 0, out
    assert daemon.calls[-1][1].netns == ""
    daemon.responses["ReleaseIP"] = rpc.RpcError("Throttling", "throttled", "later")
    rc, out, _ = run(cni_env("DEL"), netconf(daemon.socket))
    assert rc == 1 and out["code"] == 11


def test_check_compares_prev_result(daemon: FakeDaemon) -> None:
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/x"}],
        "ips": [{"address": "10.9.0.11/32", "interface": 0}],
    }
    rc, out, _ = run(cni_env("CHECK"), netconf(daemon.socket, prevResult=prev))
    assert rc == 0, out
    prev["ips"] = [{"address": "10.9.0.99/32", "interface": 0}]
    rc, out, _ = run(cni_env("CHECK"), netconf(daemon.socket, prevResult=prev))
    assert rc == 1 and out["code"] == 104 and "10.9.0.11/32" in out["msg"]
    daemon.responses["GetIPInfo"] = DEFAULT_INFO._replace(problems=("host veth missing",))
    prev["ips"] = [{"address": "10.9.0.11/32", "interface": 0}]
    rc, out, _ = run(cni_env("CHECK"), netconf(daemon.socket, prevResult=prev))
    assert rc == 1 and "host veth missing" in out["msg"]
    rc, out, _ = run(cni_env("CHECK"), netconf(daemon.socket))
    assert rc == 1 and out["code"] == 7 and "prevResult" in out["msg"]


def test_gc_sends_valid_attachments(daemon: FakeDaemon) -> None:
    conf = netconf(
        daemon.socket,
        version="1.1.0",
        **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]},
    )
    rc, out, _ = run(cni_env("GC"), conf)
    assert rc == 0, out
    assert daemon.calls[-1] == ("GC", rpc.GCRequest((rpc.Attachment("a", "eth0"),)))


def test_daemon_garbage_reply_is_a_protocol_error(tmp_path: os.PathLike[str]) -> None:
    def html(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"<html>\n")

    with misbehaving_daemon(os.path.join(str(tmp_path), "bad.sock"), html) as path:
        rc, out, err = run(cni_env("ADD"), netconf(path))
    assert rc == 1 and out["code"] == 102 and "bad reply" in out["msg"]
    assert "Traceback" not in err


HEAVY = ("pyroute2", "yaml", "kubernetes", "alibabacloud", "asyncio", "dataclasses", "requests")
# Standard library modules that cost milliseconds per plugin run (docs/performance.md).
SLOW_STDLIB = ("json", "re", "socket", "typing", "enum", "selectors", "collections", "os")


def test_plugin_imports_only_the_standard_library() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import terway.cni.main; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, ROOT], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [m for m in out if m.split(".")[0] in HEAVY + SLOW_STDLIB]
    assert heavy == []
    ours = {m for m in out if m.startswith("terway")}
    assert ours == {
        "terway", "terway.cni", "terway.cni.main", "terway.cni.config",
        "terway.datapath", "terway.datapath.modes", "terway.rpc", "terway.rpc.cnicodec",
    }


def test_an_add_imports_no_slow_stdlib_module(daemon: FakeDaemon) -> None:
    """The whole ADD (not only the import) stays off json/re/socket/typing/os."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from terway.cni.main import main; "
        "rc = main(); sys.stderr.write(' '.join(sorted(sys.modules))); sys.exit(rc)"
    )
    env = {"PATH": os.environ.get("PATH", ""), **cni_env("ADD")}
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, ROOT],
        input=json.dumps(netconf(daemon.socket)).encode(),
        env=env,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    loaded = proc.stderr.decode().split()
    assert [m for m in loaded if m.split(".")[0] in SLOW_STDLIB] == []
    assert json.loads(proc.stdout)["ips"][0]["address"] == "10.9.0.11/32"


def test_launcher_runs_the_plugin(daemon: FakeDaemon, tmp_path: os.PathLike[str]) -> None:
    path = write_launcher(os.path.join(str(tmp_path), "terway"))
    with open(path) as fh:
        assert fh.readline().rstrip().endswith(" -IS")
    cache = os.path.join(ROOT, "terway", "rpc", "__pycache__")
    assert any(name.startswith("cnicodec.") for name in os.listdir(cache))
    rc, out, _ = run(cni_env("ADD"), netconf(daemon.socket), argv=[path])
    assert rc == 0 and out["ips"][0]["address"] == "10.9.0.11/32"


def test_netconf_is_json_on_stdout_even_for_unexpected_failures(daemon: FakeDaemon) -> None:
    daemon.responses["AllocIP"] = rpc.IPInfo  # not an instance: the server fails internally
    rc, out, err = run(cni_env("ADD"), netconf(daemon.socket))
    assert rc == 1 and out["code"] == 103 and "DaemonInternalError" in out["msg"]
    assert json.dumps(out) and "Traceback" not in err


def test_podman_cni_args_without_a_namespace_mean_the_default_namespace() -> None:
    """podman 4 sends ``IgnoreUnknown=1;K8S_POD_NAME=<container>`` and nothing else."""
    from terway.cni.config import parse_env

    env = parse_env({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x",
                     "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web"})
    assert (env.pod_namespace, env.pod_name) == ("default", "web")


def test_an_unreadable_stdin_is_an_io_failure(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """CNI code 5, as upstream's skel answers (it was 199, a plugin bug)."""
    from terway.cni import main as plugin

    class Unreadable:
        class buffer:  # sys.stdin.buffer's shape
            @staticmethod
            def read() -> bytes:
                raise OSError(5, "Input/output error")

    monkeypatch.setattr(sys, "stdin", Unreadable)
    assert plugin.main() == 1
    out = json.loads(capsys.readouterr().out)
    assert out["code"] == 5 and "reading stdin" in out["msg"]
