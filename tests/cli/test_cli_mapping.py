"""terway-cli: the seed's mapping table, and the other verbs against a running daemon."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import pytest

from terway.cli import main, render
from terway.daemon.store import PodRecord, Resource
from terway.rpc import admin
from tests.daemon.daemon_harness import World, run, running_daemon

SEED_ROWS = [
    "Normal | node-problem-detector-l5h52 | 00:16:10:48:3e:37.10.244.18.167 | "
    "00:16:10:48:3e:37.10.244.18.167",
    "Idle   |                             | 00:16:10:48:3e:37.10.244.18.132 | "
    "00:16:10:48:3e:37.10.244.18.132",
]


def test_mapping_table_matches_the_seed() -> None:
    entries = [
        admin.MappingEntry("Normal", "node-problem-detector-l5h52", "kube-system",
                           "00:16:10:48:3e:37.10.244.18.167", "00:16:10:48:3e:37.10.244.18.167"),
        admin.MappingEntry("Idle", "", "", "00:16:10:48:3e:37.10.244.18.132",
                           "00:16:10:48:3e:37.10.244.18.132"),
    ]
    lines = render.mapping(entries).splitlines()
    assert lines[1:] == SEED_ROWS
    assert lines[0] == ("Status | Pod Name                    | "
                        "Res ID                          | Factory Res ID")
    # every " | " of the header lines up with the rows'
    assert [i for i, c in enumerate(lines[0]) if c == "|"] == \
        [i for i, c in enumerate(lines[1]) if c == "|"]


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_against_a_running_daemon(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(
                min_pool_size=3, access_key="AK", access_secret="very-secret")) as d:
            a = await d.alloc("web-0")
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "mapping")
            assert code == 0
            lines = out.splitlines()
            assert lines[0].startswith("Status | Pod Name | Res ID")
            normal = [ln for ln in lines if ln.startswith("Normal")]
            assert normal == [f"Normal | web-0    | {a.eni_mac}.{a.pod_ip} | "
                              f"{a.eni_mac}.{a.pod_ip}"]
            assert all(ln.startswith(("Normal", "Idle")) for ln in lines[1:])

            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "show",
                                                   "web-0")
            assert code == 0 and f"{a.eni_mac}.{a.pod_ip}" in out and "cid-web-0" in out
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "pool")
            assert code == 0 and "status: ready" in out and "used: 1" in out
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "config")
            assert code == 0 and "very-secret" not in out and "******" in out
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "metadata")
            assert code == 0 and f"instance-id: {world.instance_id}" in out

            # upstream's newer verbs and -o json (issue 10)
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "list")
            assert code == 0 and out.splitlines()[0].startswith("Pod")
            assert [ln.split(" | ")[:3] for ln in out.splitlines()[1:]] == [
                ["default/web-0", a.eni_mac, a.pod_ip]]
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "eni")
            (eni,) = world.enis()
            assert code == 0 and eni.eni_id in out and eni.mac in out
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "-o", "json",
                                                   "list")
            assert code == 0
            (pod,) = json.loads(out)
            assert (pod["pod_name"], pod["res_id"]) == ("web-0", f"{a.eni_mac}.{a.pod_ip}")
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "-o", "json",
                                                   "pool")
            assert code == 0 and json.loads(out)["used"] == 1
            code, out, _ = await asyncio.to_thread(_cli, "--socket", d.socket, "-o", "json",
                                                   "config")
            assert code == 0 and "very-secret" not in out

            # a record the pool does not know about is an Error row and exit 1
            d.daemon.store.put_pod(PodRecord("default", "ghost", "cid-g", "", "eth0", (
                Resource("eniIp", "eni-x", "00:16:3e:00:00:99", "10.9.9.9"),)))
            code, out, err = await asyncio.to_thread(_cli, "--socket", d.socket, "mapping")
            assert code == 1
            assert "error exists in mapping" in err
            assert any(ln.startswith("Error  | ghost") for ln in out.splitlines())

    run(scenario())


def test_cli_without_daemon_says_so(tmp_path: Path) -> None:
    code, _, err = _cli("--socket", str(tmp_path / "nope.socket"), "mapping")
    assert code == 1
    assert "unreachable" in err and "nope.socket" in err


@pytest.mark.parametrize("argv", [["show"], ["bogus"]])
def test_cli_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli(*argv)
    assert exc.value.code == 2
