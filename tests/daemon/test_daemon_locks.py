"""One daemon per state directory, whatever socket it is given; a --socket that names something
other than a socket is refused, not deleted (issue 9, items 1 and 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_harness import ModelCloud, World, run, running_daemon

from terway.daemon.app import Daemon, DaemonOptions
from terway.daemon.lock import AlreadyRunning
from terway.daemon.node import LoadedConfig


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
