"""One daemon per state directory, whatever socket it is given; a --socket that names something
other than a socket is refused, not deleted (issue 9, items 1 and 6)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from terway.daemon.app import Daemon, DaemonOptions
from terway.daemon.lock import AlreadyRunning
from terway.daemon.node import LoadedConfig
from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import ModelCloud, World, run, running_daemon


def second_daemon(world: World, state: str, socket: str, conf: LoadedConfig) -> Daemon:
    options = DaemonOptions(state_dir=state, socket_path=socket, seed=7)
    return Daemon(options, conf, ModelCloud(world.cloud, world.instance_id), node=world.node())


def test_second_daemon_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        (tmp_path / "a").mkdir()
        async with running_daemon(tmp_path / "a", world) as d:
            other = second_daemon(world, d.state_dir, str(tmp_path / "other" / "eni.socket"),
                                  d.daemon.config)
            with pytest.raises(AlreadyRunning, match=r"state/terwayd\.lock"):
                await other.start()
            assert not (tmp_path / "other" / "eni.socket").exists()   # never served

    run(scenario())


def test_a_regular_file_at_the_socket_path_is_kept(tmp_path: Path) -> None:
    world = World.build()
    precious = tmp_path / "run" / "eni.socket"

    def prepare(tmp: Path) -> None:
        precious.parent.mkdir(parents=True)
        precious.write_text("not a socket\n")

    async def scenario() -> None:
        with pytest.raises(FileExistsError, match="not a socket"):
            async with running_daemon(tmp_path, world, prepare=prepare):
                pass

    run(scenario())
    assert precious.read_text() == "not a socket\n"


@pytest.mark.parametrize(("namespace", "name", "field"), [
    ("n/m", "a", "pod_namespace"),          # with ("n", "m/a") it was one key: "n/m/a"
    ("n", "m/a", "pod_name"),
    ("Default", "web", "pod_namespace"),
    ("default", "web\x1b[2J", "pod_name"),
    ("default", "x" * 254, "pod_name"),
])
def test_pod_names_that_could_collide_are_refused(tmp_path: Path, namespace: str, name: str,
                                                  field: str) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            req = rpc.AllocIPRequest(pod_name=name, pod_namespace=namespace,
                                     container_id="cid-x", netns=d.netns("ns-x"),
                                     ifname="eth0")
            with pytest.raises(rpc.RpcError, match=f"params.{field}") as err:
                await asyncio.to_thread(d.client().alloc_ip, req)
            assert err.value.code == rpc.ERR_INVALID_REQUEST
            assert d.daemon.store.pods() == []

    run(scenario())


def test_container_style_names_still_work(tmp_path: Path) -> None:
    """podman and Docker send container names (upper case, '_') as K8S_POD_NAME."""
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            info = await d.alloc("My_Container.1")
            assert info.pod_ip

    run(scenario())


@pytest.mark.parametrize("line", [
    b'{"v":1,"method":"Admin.Mapping","params":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"v":1,"method":"AllocIP","params":' + b"{\"a\":" * 5000 + b"1" + b"}" * 5001,
])
def test_deeply_nested_requests_get_a_specific_error_and_the_daemon_serves_on(
        tmp_path: Path, line: bytes) -> None:
    """A nested request starting ``"Admin.`` got no reply and a traceback in the log."""
    def exchange(path: str) -> bytes:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(path)
            s.sendall(line + b"\n")
            return s.makefile("rb").readline()

    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build()) as d:
            reply = await asyncio.to_thread(exchange, d.socket)
            assert b'"code":"InvalidRequest"' in reply and b"nested too deeply" in reply
            assert "Traceback" not in d.log.getvalue()
            assert (await asyncio.to_thread(d.client().status)).ready

    run(scenario())
