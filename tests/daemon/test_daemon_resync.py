"""Routes of live pods are re-synced every GC period (idempotent datapath set-up), like
upstream's GC; pods whose netns is gone are released instead, pods in flight are left alone."""

from __future__ import annotations

import os
from pathlib import Path

from tests.daemon.daemon_harness import World, run, running_daemon, until


def test_gc_period_re_runs_the_datapath_of_live_pods(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, gc_period=30.0) as d:
            live = await d.alloc("live")
            await d.alloc("gone")
            os.unlink(d.netns("ns-gone"))          # its sandbox is gone: GC's job, not resync's

            def setups_of(pod: str) -> int:
                return sum(1 for n in d.datapath.setups if n.pod_key == f"default/{pod}")

            await until(lambda: setups_of("live") >= 3, "two periodic re-syncs of the live pod")
            assert setups_of("gone") == 1               # set up once, at AllocIP
            assert d.daemon.store.get_pod("default/gone") is None
            again = [n for n in d.datapath.setups if n.pod_key == "default/live"]
            assert {n.net.pod_ip for n in again} == {live.pod_ip}   # the same wiring each time
            assert {n.pod.netns for n in again} == {d.netns("ns-live")}

    run(scenario())


def test_resync_skips_pods_with_a_request_in_flight(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            await d.alloc("a")
            await d.alloc("b")
            with d.daemon.service.exclusive("default/b"):
                assert await d.daemon.resync() == ["default/a"]
            assert sorted(await d.daemon.resync()) == ["default/a", "default/b"]

    run(scenario())
