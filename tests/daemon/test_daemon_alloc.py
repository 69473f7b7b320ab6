"""AllocIP / ReleaseIP over the real unix socket, against the emulator's model."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import stat
from pathlib import Path

import pytest

from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import GatedCloud, World, run, running_daemon, until


def test_alloc_and_release_over_the_socket(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            info = await d.alloc("web-1")
            assert ipaddress.ip_address(info.pod_ip) in ipaddress.ip_network("192.168.0.0/24")
            assert info.gateway == "192.168.0.253"
            assert info.vswitch_cidr == "192.168.0.0/24"
            assert info.service_cidr == "172.21.0.0/20"
            assert info.ip_type == rpc.IP_TYPE_ENIIP and info.prefix_len == 32
            (eni,) = world.enis()
            assert info.eni_mac == eni.mac and info.pod_ip in eni.private_ips
            rec = d.daemon.store.get_pod("default/web-1")
            assert rec is not None and rec.resources[0].id == f"{eni.mac}.{info.pod_ip}"
            assert d.datapath.setups[-1].net.pod_ip == info.pod_ip

            assert (await d.release("web-1")).released is True
            assert d.daemon.store.get_pod("default/web-1") is None
            assert d.datapath.teardowns[-1].net.pod_ip == info.pod_ip
            assert (await d.release("web-1")).released is False  # DEL is idempotent

    run(scenario())


def test_socket_and_state_permissions(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(Path(d.socket).parent).st_mode) == 0o700
            assert stat.S_IMODE(os.stat(d.state_dir).st_mode) == 0o700
            assert stat.S_IMODE(os.stat(Path(d.state_dir) / "terway.db").st_mode) == 0o600

    run(scenario())


def test_warm_pool_hit_needs_no_cloud_call(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, scale=1.0) as d:
            first = await d.alloc("a")
            await d.release("a")
            await d.daemon.driver.drain()
            calls = d.cloud.calls
            second = await d.alloc("b")
            assert second.pod_ip == first.pod_ip  # the idle address, handed out at once
            assert d.cloud.calls == calls

    run(scenario())


def test_repeated_add_for_same_sandbox_returns_same_address(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            first = await d.alloc("a")
            again = await d.alloc("a")
            assert again.pod_ip == first.pod_ip
            new_sandbox = await d.alloc("a", container_id="cid-a-2")
            assert new_sandbox.pod_ip == first.pod_ip  # the pod keeps its address
            stale = await d.release("a", container_id="cid-a")  # the old sandbox's DEL
            assert stale.released is False
            assert d.daemon.store.get_pod("default/a") is not None

    run(scenario())


def test_concurrent_request_for_pod_in_flight_is_refused(tmp_path: Path) -> None:
    world = World.build()
    gated = GatedCloud(world.cloud, world.instance_id)

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, cloud=gated) as d:
            gated.gate.clear()
            first = asyncio.ensure_future(d.alloc("slow"))
            await until(lambda: d.daemon.service.busy("default/slow"), "the request in flight")
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("slow")
            assert err.value.code == rpc.ERR_IN_FLIGHT
            assert err.value.error_class == rpc.CLASS_BUSY
            assert "default/slow" in err.value.message
            gated.gate.set()
            info = await first
            assert info.pod_ip

    run(scenario())


def test_datapath_failure_gives_the_address_back(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            d.datapath.fail_setup = "boom"
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("p")
            assert "boom" in err.value.message
            assert d.daemon.store.get_pod("default/p") is None
            assert d.daemon.core.allocation("default/p") is None
            d.datapath.fail_setup = None
            assert (await d.alloc("p")).pod_ip

    run(scenario())


def test_bad_request_names_the_field(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("")
            assert err.value.code == rpc.ERR_INVALID_REQUEST
            assert "pod_name" in err.value.message

    run(scenario())


def test_get_ip_info_and_gc_rpc(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            a = await d.alloc("a")
            await d.alloc("b")
            client = d.client()
            info = await asyncio.to_thread(client.get_ip_info, rpc.GetIPInfoRequest(
                "a", "default", "cid-a", "eth0"))
            assert info.pod_ip == a.pod_ip and info.problems == ()
            with pytest.raises(rpc.RpcError) as err:
                await asyncio.to_thread(client.get_ip_info, rpc.GetIPInfoRequest(
                    "a", "default", "cid-stale", "eth0"))
            assert err.value.code == rpc.ERR_UNKNOWN_CONTAINER
            reply = await asyncio.to_thread(client.gc, (rpc.Attachment("cid-a", "eth0"),))
            assert reply.released == ("cid-b",)
            assert [p.key for p in d.daemon.store.pods()] == ["default/a"]

    run(scenario())


def test_release_answers_before_unwiring_and_the_same_pod_waits_for_it(tmp_path: Path) -> None:
    """The answer comes first; the address stays taken until the interface is gone; a new
    sandbox of the same pod waits for that instead of being refused as in flight."""
    import threading

    from terway.daemon.ports import PodAttachment
    from terway.daemon.service import RELEASING
    from tests.daemon.daemon_harness import FakeDatapath

    gate = threading.Event()

    class SlowTeardown(FakeDatapath):
        def teardown(self, net: PodAttachment) -> None:
            gate.wait(30)  # a veth delete, slowed down
            super().teardown(net)

    world = World.build()
    datapath = SlowTeardown()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, datapath=datapath) as d:
            await d.alloc("web-0")
            req = rpc.ReleaseIPRequest("web-0", "default", "cid-web-0", "eth0")
            reply = await asyncio.to_thread(d.client().release_ip, req)
            assert reply.released is True and datapath.teardowns == []
            rec = d.daemon.store.get_pod("default/web-0")
            assert rec is not None and rec.extra.get(RELEASING) == "1"
            assert d.daemon.core.allocation("default/web-0") is not None  # not reusable yet
            again = asyncio.ensure_future(d.alloc("web-0", container_id="cid-web-0-b"))
            await asyncio.sleep(0.2)
            assert not again.done()                  # waiting, not refused
            gate.set()
            info = await again
            assert [n.pod_key for n in datapath.teardowns] == ["default/web-0"]
            rec = d.daemon.store.get_pod("default/web-0")
            assert rec is not None and rec.container_id == "cid-web-0-b"
            assert RELEASING not in rec.extra and info.pod_ip

    run(scenario())
