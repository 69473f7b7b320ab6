"""`terway-emulator` as users run it: a real `serve` subprocess driven by the SDK and the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from emulator.cli import main
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tests.emulator.serve_harness import command, free_port, wait_healthy
from tests.emulator.test_sdk_harness import REGION, ZONE, call_action

AK, SECRET = "LTAIcliTestKey", "cli-test-secret"
WORLD = f"""
seed: 11
vpcs:
  - name: main
    cidr: 192.168.0.0/16
    vswitches:
      - {{name: pods, zone: {ZONE}, cidr: 192.168.1.0/24}}
    security_groups:
      - {{name: default}}
instances:
  - {{name: node, type: ecs.g6.large, vswitch: pods}}
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    world = tmp_path / "world.yaml"
    world.write_text(WORLD)
    port = free_port()
    proc = subprocess.Popen(
        [*command(), "serve", "--port", str(port), "--world", str(world),
         "--access-key-id", AK, "--access-key-secret", SECRET],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command(), *args], capture_output=True, text=True, timeout=60)


def test_serve_subprocess_with_sdk_cli_and_clean_logs(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, proc = served
    endpoint = url.removeprefix("http://")

    def describe(ak: str, secret: str) -> dict[str, object]:
        client = VpcClient(Config(endpoint=endpoint, protocol="http", region_id=REGION,
                                  access_key_id=ak, access_key_secret=secret))
        return call_action(client, vpc_models, "DescribeVSwitches", {})

    vsws = describe(AK, SECRET)["VSwitches"]["VSwitch"]  # type: ignore[index]
    assert [v["CidrBlock"] for v in vsws] == ["192.168.1.0/24"]
    assert vsws[0]["AvailableIpAddressCount"] == 251
    with pytest.raises(ClientException) as info:
        describe(AK, "wrong")
    assert info.value.code == "SignatureDoesNotMatch"
    with pytest.raises(ClientException) as info:  # the default key is not accepted here
        describe(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
    assert info.value.code == "InvalidAccessKeyId.NotFound"

    snap = _cli("snapshot", "--endpoint", url)
    assert snap.returncode == 0, snap.stderr
    assert json.loads(snap.stdout)["seed"] == 11
    rule = json.dumps({"kind": "error", "action": "CreateVpc", "code": "InternalError",
                       "count": 1, "id": "once"})
    added = _cli("fault", "add", rule, "--endpoint", url)
    assert added.returncode == 0 and json.loads(added.stdout) == {"ids": ["once"]}
    listed = json.loads(_cli("fault", "list", "--endpoint", url).stdout)
    assert [r["id"] for r in listed["rules"]] == ["once"]
    assert _cli("fault", "clear", "--endpoint", url).returncode == 0
    assert json.loads(_cli("fault", "list", "--endpoint", url).stdout) == {"rules": []}

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    logs = proc.stderr.read() if proc.stderr else ""
    assert SECRET not in logs
    lines = [line for line in logs.splitlines() if line]
    assert lines and all(line.startswith("time=") and " level=" in line for line in lines)
    assert any('msg="api call"' in line and "code=SignatureDoesNotMatch" in line
               for line in lines)


def test_cli_against_a_dead_endpoint_is_one_line_exit_2() -> None:
    result = _cli("snapshot", "--endpoint", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.startswith("terway-emulator: error: cannot reach emulator")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("world", "needle"),
    [
        ("vpcs: [{name: v, cidr: 10.0.0.0/33}]", "cidr"),
        ("vpcs: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("instances: [{name: n, type: ecs.nope, vswitch: s}]", "instances"),
    ],
)
def test_bad_world_file_is_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], world: str, needle: str,
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(world)
    assert main(["world", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("terway-emulator: error: world ") and needle in err
    assert "Traceback" not in err
    assert main(["serve", "--port", "0", "--world", str(path)]) == 2


def test_world_validate_ok_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WORLD)
    assert main(["world", "validate", str(path)]) == 0
    assert "ok (1 vpcs, 1 vswitches, 1 instances)" in capsys.readouterr().out
    assert main(["world", "validate", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["serve", "--port", "99999"], ["serve", "--port", "x"], ["serve", "--fabric", "vm"],
     ["fault"], ["nope"]],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_empty_secret_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--access-key-secret", ""]) == 2
    assert "--access-key-secret" in capsys.readouterr().err


def test_port_in_use_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_endpoint_env_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from emulator.cli import build_parser

    monkeypatch.setenv("TERWAY_EMULATOR_ENDPOINT", "http://10.0.0.1:1")
    assert build_parser().parse_args(["snapshot"]).endpoint == "http://10.0.0.1:1"
    assert os.environ["TERWAY_EMULATOR_ENDPOINT"] == "http://10.0.0.1:1"


def test_fabric_failure_or_absence_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import emulator.fabric as fabric

    started: list[int] = []

    def refuse(cloud: object, port: int, http_host: str = "") -> None:
        started.append(port)
        raise RuntimeError("needs root")

    monkeypatch.setattr(fabric, "start", refuse)
    assert main(["serve", "--port", "0", "--fabric", "netns"]) == 2
    assert "--fabric netns: needs root" in capsys.readouterr().err
    with socket.socket() as s:  # the server that was listening was stopped again
        assert s.connect_ex(("127.0.0.1", started[0])) != 0
    monkeypatch.delattr(fabric, "start")
    assert main(["serve", "--port", "0", "--fabric", "netns"]) == 2
    assert "fabric not available yet" in capsys.readouterr().err
