"""Restart and reconcile: the store keeps owners, the cloud says what exists, intents left by a
crash are finished or undone, and nothing leaks."""

from __future__ import annotations

import os
from pathlib import Path

from emulator.inprocess import ModelCloud
from terway.daemon.driver import INTENT_CREATE, INTENT_RELEASE, release_token
from terway.daemon.store import Intent, Store
from tests.daemon.daemon_harness import World, run, running_daemon


def test_restart_keeps_every_pod_and_frees_the_rest(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            ips = {n: (await d.alloc(n)).pod_ip for n in ("a", "b", "c")}
            await d.release("b")
            await d.daemon.driver.drain()
        async with running_daemon(tmp_path, world) as d:
            for name in ("a", "c"):
                alloc = d.daemon.core.allocation(f"default/{name}")
                assert alloc is not None and alloc.ip == ips[name]
            assert d.daemon.core.allocation("default/b") is None
            rows = d.daemon.core.mapping()
            on_node = {ip for e in world.enis() for ip in e.private_ips}
            assert {r.ip for r in rows} == on_node          # every address accounted for
            assert {r.ip for r in rows if r.status == "Normal"} == {ips["a"], ips["c"]}
            assert d.daemon.store.intents() == []

    run(scenario())


def test_record_on_an_eni_gone_while_down_is_dropped(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            await d.alloc("a")
            await d.daemon.driver.drain()
        (eni,) = world.enis()
        world.cloud.detach_network_interface(eni.eni_id, world.instance_id)
        world.cloud.describe_network_interfaces()  # let the model settle the detach
        async with running_daemon(tmp_path, world) as d:
            assert d.daemon.store.get_pod("default/a") is None
            assert d.daemon.core.allocation("default/a") is None
            assert any("dropping record" in ln for ln in d.log_lines())

    run(scenario())


def test_eni_created_but_never_attached_is_deleted(tmp_path: Path) -> None:
    world = World.build()
    mc = ModelCloud(world.cloud, world.instance_id)
    params = {"vswitch_id": world.vswitch_ids[0], "security_group_ids": [world.sg_id],
              "secondary_ip_count": 2, "tags": {"creator": "terway"}}
    known = mc.create_network_interface(client_token="tok-known",
                                        **params)  # type: ignore[arg-type]
    unknown = mc.create_network_interface(client_token="tok-unknown",
                                          **params)  # type: ignore[arg-type]

    def prepare(tmp: Path) -> None:
        store = Store.open(tmp / "state")
        store.add_intent(Intent("tok-known", INTENT_CREATE,
                                {**params, "client_token": "tok-known", "eni_id": known.eni_id}))
        store.add_intent(Intent("tok-unknown", INTENT_CREATE,
                                {**params, "client_token": "tok-unknown"}))
        store.close()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, prepare=prepare) as d:
            existing = {e.eni_id for e in world.all_secondary_enis()}
            assert known.eni_id not in existing
            assert unknown.eni_id not in existing
            assert d.daemon.store.intents() == []

    run(scenario())


def test_half_released_eni_is_deleted(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            await d.alloc("a")
            await d.release("a")
            await d.daemon.driver.drain()
        (eni,) = world.enis()
        world.cloud.detach_network_interface(eni.eni_id, world.instance_id)  # crash mid-release

        def prepare(tmp: Path) -> None:
            store = Store.open(tmp / "state")
            store.add_intent(Intent(release_token(eni.eni_id), INTENT_RELEASE,
                                    {"eni_id": eni.eni_id}))
            store.close()

        async with running_daemon(tmp_path, world, prepare=prepare) as d:
            assert eni.eni_id not in {e.eni_id for e in world.all_secondary_enis()}
            assert d.daemon.store.intents() == []

    run(scenario())


def test_gc_releases_pods_whose_netns_is_gone(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            await d.alloc("live")
            await d.alloc("dead")
            os.unlink(d.netns("ns-dead"))
            assert await d.daemon.gc() == ["default/dead"]
            assert [p.key for p in d.daemon.store.pods()] == ["default/live"]
            assert d.daemon.core.allocation("default/dead") is None

    run(scenario())


def test_live_pods_get_their_datapath_again_on_restart(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            ip = (await d.alloc("a")).pod_ip
        async with running_daemon(tmp_path, world) as d:
            assert [n.net.pod_ip for n in d.datapath.setups] == [ip]

    run(scenario())


def test_a_release_answered_before_a_crash_is_finished_at_start(tmp_path: Path) -> None:
    """DEL answers once the record is marked releasing; a crash before the unwiring is done
    leaves the mark, and the next start tears the pod down and frees the address."""
    from dataclasses import replace

    from terway.daemon.service import RELEASING
    from tests.daemon.daemon_harness import FakeDatapath

    world = World.build()
    datapath = FakeDatapath()

    def crash_after_answer(tmp: Path) -> None:  # the store as the crash left it
        store = Store.open(tmp / "state")
        rec = store.get_pod("default/a")
        assert rec is not None
        store.put_pod(replace(rec, extra={**rec.extra, RELEASING: "1"}))
        store.close()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            ip = (await d.alloc("a")).pod_ip
            await d.alloc("b")
        async with running_daemon(tmp_path, world, prepare=crash_after_answer,
                                  datapath=datapath) as d:
            assert d.daemon.store.get_pod("default/a") is None
            assert d.daemon.core.allocation("default/a") is None
            assert [n.pod_key for n in datapath.teardowns] == ["default/a"]
            assert {r.ip for r in d.daemon.core.mapping() if r.status == "Idle"} >= {ip}
            assert d.daemon.store.get_pod("default/b") is not None
            assert any("finished interrupted releases" in ln for ln in d.log_lines())

    run(scenario())


def _attached_eni(world: World, tags: dict[str, str] | None, ips: int = 3) -> str:
    eni = world.cloud.create_network_interface(world.vswitch_ids[0], [world.sg_id],
                                               secondary_ip_count=ips, tags=tags)
    world.cloud.attach_network_interface(eni.eni_id, world.instance_id)
    world.cloud.describe_network_interfaces()   # let the model settle the attach
    return eni.eni_id


def test_enis_terway_does_not_manage_are_never_touched(tmp_path: Path) -> None:
    """Issue 10: an ENI attached by someone else (3 addresses) was detached and deleted within
    20 s of start with max_pool_size 0. Foreign (no creator=terway), blocked (upstream's default
    block list, ours) and filtered-out ENIs stay as they are; upstream's own (creator=terway,
    e.g. after a migration) are managed."""
    world = World.build(instance_type="ecs.g6.8xlarge")   # 7 secondary ENI slots
    foreign = _attached_eni(world, None)
    erdma = _attached_eni(world, {"creator": "alibabacloud-erdma-controller"})
    excluded = _attached_eni(world, {"creator": "terway",
                                     "terway.alibabacloud.com/excluded": "true"})
    blocked = _attached_eni(world, {"creator": "terway", "team": "db"})
    upstream = _attached_eni(world, {"creator": "terway"})
    left_alone = {e: world.cloud.get_network_interface(e).private_ips
                  for e in (foreign, erdma, excluded, blocked)}
    conf = world.eni_conf(max_pool_size=0, min_pool_size=0,
                          eni_tag_block_list=[{"key": "team", "value": "db"}])

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf, scale=200.0) as d:
            pods = {(await d.alloc(n)).pod_ip for n in ("a", "b")}
            await d.release("a")
            await d.daemon.driver.drain()
            managed = {e.eni_id for e in d.daemon.core.enis()}
            assert managed.isdisjoint(left_alone), managed
            for eni_id, ips in left_alone.items():
                view = world.cloud.get_network_interface(eni_id)
                assert (view.status, view.instance_id) == ("InUse", world.instance_id), eni_id
                assert view.private_ips == ips, eni_id
                assert pods.isdisjoint(ips)
            assert d.daemon.settings.max_enis == d.daemon.capacity.max_enis - len(left_alone)
        assert upstream in managed or world.cloud.get_network_interface(upstream).status != \
            "InUse", "upstream's own ENI was neither managed nor released"

    run(scenario())
