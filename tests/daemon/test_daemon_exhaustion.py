"""IpNotEnough end to end: the seed's log line, the CNI error text, Status, and the remedy
(a vSwitch added to eni_conf, picked up without a restart)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from pathlib import Path

import pytest

from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import World, run, running_daemon, until

ALLOC_TIMEOUT = 600.0          # daemon seconds (30 s of real time at the harness's scale 20)
SEED_LINE = re.compile(
    r'^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=warning '
    r'msg="Assign private ip address failed: Aliyun API Error: RequestId: [0-9A-Za-z-]+ '
    r'Status Code: 403 Code: InvalidVSwitchId\.IpNotEnough '
    r'Message: The specified VSwitch \\"(vsw-[0-9a-z]+)\\" has not enough IpAddress\., '
    r'retrying"$')


def test_ip_not_enough_then_a_new_vswitch_heals_the_node(tmp_path: Path) -> None:
    world = World.build(cidrs=("192.168.0.0/28",))
    (vsw_a,) = world.vswitch_ids

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, alloc_timeout=ALLOC_TIMEOUT) as d:
            await d.alloc("p1")
            world.exhaust(vsw_a)
            asked = d.daemon.clock.now()
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("p2")
            # failed fast: answered long before the alloc timeout, with the cloud's reason
            assert d.daemon.clock.now() - asked < ALLOC_TIMEOUT
            assert err.value.code == "InvalidVSwitchId.IpNotEnough"
            assert err.value.error_class == rpc.CLASS_EXHAUSTED
            assert "Code: InvalidVSwitchId.IpNotEnough" in err.value.message
            assert "default/p2" in err.value.message
            assert "no address can be had now, retry later" in err.value.message
            assert d.daemon.core.pending_keys() == []
            assert any("no address can be had now" in ln for ln in d.log_lines())

            seed_lines = [m for m in map(SEED_LINE.match, d.log_lines()) if m]
            assert seed_lines, "\n".join(d.log_lines())
            assert seed_lines[0].group(1) == vsw_a

            status = await asyncio.to_thread(d.client().status)
            assert status.ready is False
            assert "no IPs can be had" in status.message

            await asyncio.to_thread(d.client().record_event, rpc.RecordEventRequest(
                "p2", "default", "AllocIPFailed", err.value.message))  # as the CNI plugin does
            (event,) = [e for e in d.daemon.service.events.recent if e.name == "p2"]
            assert event.reason == "AllocIPFailed" and event.warning
            assert "InvalidVSwitchId.IpNotEnough" in event.message
            # and on the node, as upstream records cloud failures (once, not per retry)
            node_events = [e for e in d.daemon.service.events.recent if not e.name]
            assert [e.reason for e in node_events] == ["AllocIPFailed"], node_events
            assert "InvalidVSwitchId.IpNotEnough" in node_events[0].message

            vsw_b = world.add_vswitch("192.168.1.0/24")
            d.write_config(world.eni_conf(vswitches={"cn-hangzhou-h": [vsw_a, vsw_b]}))
            await until(lambda: vsw_b in d.daemon.settings.vswitch_ids, "config reload")
            info = await d.alloc("p3")
            assert ipaddress.ip_address(info.pod_ip) in ipaddress.ip_network("192.168.1.0/24")
            status = await asyncio.to_thread(d.client().status)
            assert status.ready is True, status.message

    run(scenario())


def test_without_fail_fast_the_request_waits_for_the_timeout(tmp_path: Path) -> None:
    world = World.build(cidrs=("192.168.0.0/28",))
    (vsw_a,) = world.vswitch_ids

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, alloc_timeout=10.0, fail_fast=False) as d:
            await d.alloc("p1")
            world.exhaust(vsw_a)
            asked = d.daemon.clock.now()
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("p2")
            assert d.daemon.clock.now() - asked >= 10.0
            assert err.value.code == "InvalidVSwitchId.IpNotEnough"
            assert "no address within 10s" in err.value.message

    run(scenario())


def test_invalid_config_change_is_ignored(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world) as d:
            before = d.daemon.settings
            d.config_file.write_text('{"max_pool_size": "lots"}')
            await until(lambda: any("config changed but is invalid" in ln
                                    for ln in d.log_lines()), "the reload to be refused")
            assert d.daemon.settings == before
            assert any("max_pool_size" in ln for ln in d.log_lines())
            assert (await d.alloc("still-works")).pod_ip

    run(scenario())
