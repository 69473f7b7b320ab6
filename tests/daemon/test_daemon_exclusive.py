"""Exclusive-ENI mode (eni_conf ``daemon_mode: ENIOnly``) through the daemon: a pod owns a whole
ENI (its address is the ENI's primary IP), the node's capacity is its ENIs minus the primary one,
and a released ENI goes back to the cloud (detached, deleted) once the pool is above its max."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import World, run, running_daemon, until


def test_a_pod_owns_a_whole_eni_and_gives_it_back(tmp_path: Path) -> None:
    world = World.build(instance_type="ecs.g6.xlarge")      # 3 ENIs: the primary + 2
    conf = world.eni_conf(daemon_mode="ENIOnly", min_pool_size=0, max_pool_size=0,
                          ip_pool_sync_period="10s")

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf, alloc_timeout=5.0) as d:
            assert d.daemon.capacity.capacity == 2
            infos = [await d.alloc("p1"), await d.alloc("p2")]
            enis = {e.eni_id: e for e in world.enis()}
            assert len(enis) == 2
            for info in infos:
                assert info.ip_type == rpc.IP_TYPE_ENI
                assert info.datapath == rpc.DATAPATH_EXCLUSIVE
                (eni,) = [e for e in enis.values() if e.mac == info.eni_mac]
                assert info.pod_ip == eni.primary_ip and eni.private_ips == (eni.primary_ip,)
            assert {n.mode for n in d.datapath.setups} == {"exclusive"}
            rec = d.daemon.store.get_pod("default/p1")
            assert rec is not None and rec.ip_type == "eni"

            # capacity reached (ENIs - 1): the next pod waits for a release, then times out
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("p3")
            assert err.value.code == "AllocIPTimeout"
            assert "capacity" in err.value.message

            p1_eni = next(e.eni_id for e in enis.values() if e.mac == infos[0].eni_mac)
            assert (await d.release("p1")).released is True
            await until(lambda: p1_eni not in {e.eni_id for e in world.all_secondary_enis()},
                        "the released ENI to be detached and deleted")
            assert [e.mac for e in world.enis()] == [infos[1].eni_mac]
            again = await d.alloc("p3")                         # a fresh ENI for the next pod
            assert again.ip_type == rpc.IP_TYPE_ENI and again.eni_mac != infos[1].eni_mac
            rows = await asyncio.to_thread(lambda: d.daemon.core.mapping())
            assert sorted(r.pod_key for r in rows) == ["default/p2", "default/p3"]

    run(scenario())


def test_host_stack_cidrs_reach_the_datapath_and_survive_a_restart(tmp_path: Path) -> None:
    """The netconf's ``host_stack_cidrs`` (upstream: routed through the host peer in exclusive
    mode) go with the ADD to the datapath and into the pod's record, so GC's re-sync and a
    restarted daemon wire the same routes; a bad one is refused before anything is allocated."""
    world = World.build(instance_type="ecs.g6.xlarge")
    conf = world.eni_conf(daemon_mode="ENIOnly", min_pool_size=0, max_pool_size=0)
    cidrs = ("169.254.20.10/32", "100.100.0.0/16")

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf, alloc_timeout=5.0) as d:
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("bad", host_stack_cidrs=("10.0.0.0/8", "nope"))
            assert err.value.code == rpc.ERR_INVALID_REQUEST
            assert "params.host_stack_cidrs[1]" in err.value.message
            assert d.daemon.store.get_pod("default/bad") is None
            await d.alloc("p1", host_stack_cidrs=cidrs)
            assert d.datapath.setups[-1].net.host_stack_cidrs == cidrs
            assert await d.daemon.resync() == ["default/p1"]
            assert d.datapath.setups[-1].net.host_stack_cidrs == cidrs

    run(scenario())
