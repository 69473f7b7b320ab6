"""The metrics endpoint: upstream's metric names, scraped over HTTP from a running daemon, with
OpenAPI latency recorded for the in-process cloud too (the daemon times every CloudAPI call)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import pytest

from terway.cloud.errors import CloudError
from terway.daemon.timedcloud import TimedCloud
from tests.daemon.daemon_harness import World, run, running_daemon, until

UPSTREAM_NAMES = ("terway_rpc_latency", "aliyun_openapi_latency",
                  "terway_resource_pool_total_count", "terway_resource_pool_idle_count",
                  "terway_resource_pool_disposed_count", "terway_eniip_factory_eni_count",
                  "terway_eniip_factory_ip_count", "terway_eniip_factory_ip_alloc_count",
                  "aliyun_metadata_latency")
POOL = '{ipStack="ipv4",type="LocalIP"}'   # upstream's labels: its dashboard selects on them


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        body: bytes = resp.read()
    return body.decode()


def _value(text: str, sample: str) -> float:
    m = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert m, f"{sample} not in the scrape"
    return float(m.group(1))


def test_metrics_endpoint_serves_upstream_names(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, metrics_port=0) as d:
            info = await d.alloc("p1")
            port = d.daemon.metrics.port
            assert port
            text = await asyncio.to_thread(_scrape, port)
            for name in UPSTREAM_NAMES:
                assert re.search(rf"^# TYPE {name} ", text, re.M), name
            assert _value(text, 'terway_rpc_latency_count{error="false",rpc_api="AllocIP"}') == 1
            for api in ("DescribeInstanceTypes", "DescribeVSwitches", "CreateNetworkInterface",
                        "AttachNetworkInterface"):
                assert _value(
                    text, f'aliyun_openapi_latency_count{{api="{api}",error="false"}}') >= 1
            cap = d.daemon.capacity
            assert _value(text, f'terway_eniip_factory_eni_count{{max_eni="{cap.max_enis}",'
                                'name="eniip"}') == 1
            total = _value(text, "terway_resource_pool_total_count" + POOL)
            idle = _value(text, "terway_resource_pool_idle_count" + POOL)
            assert total >= 1 and idle == total - 1, (total, idle)   # one address in use
            (eni,) = world.enis()
            assert _value(text, f'terway_eniip_factory_ip_count{{eni="{eni.mac}",'
                                f'max_ip="{cap.ips_per_eni}",name="eniip"}}') == total
            assert _value(text, f'terway_eniip_factory_ip_alloc_count{{eni="{info.eni_mac}",'
                                'status="succeed"}') == 1
            assert any(f"port={port}" in ln for ln in d.log_lines())
            assert info.pod_ip
        # the endpoint is closed with the daemon
        try:
            await asyncio.to_thread(_scrape, port)
        except OSError:
            pass
        else:
            raise AssertionError("metrics still served after stop")

    run(scenario())


class _Failing:
    def delete_network_interface(self, eni_id: str) -> None:
        raise CloudError("InvalidEniId.NotFound", f"{eni_id} is gone")


def test_metadata_latency_is_observed_per_url(tmp_path: Path) -> None:
    from terway.cloud.metadata import MetadataClient, MetadataError
    from terway.daemon.metrics import Metrics

    m = Metrics()
    client = MetadataClient("http://127.0.0.1:9", attempts=1, timeout=0.5,
                            observe=m.observe_metadata)
    with pytest.raises(MetadataError):
        client.region_id()
    names = {(s.name, s.labels.get("error")) for f in m.registry.collect() for s in f.samples}
    assert ("aliyun_metadata_latency_count", "true") in names


def test_timed_cloud_labels_errors_with_their_code() -> None:
    seen: list[tuple[str, float, str]] = []
    ticks = iter([1.0, 1.25])
    cloud = TimedCloud(_Failing(), lambda api, ms, err: seen.append((api, ms, err)),  # type: ignore[arg-type]
                       clock=lambda: next(ticks))
    with pytest.raises(CloudError):
        cloud.delete_network_interface("eni-1")
    assert seen == [("DeleteNetworkInterface", 250.0, "InvalidEniId.NotFound")]


def test_disposed_count_is_upstreams_running_count_of_released_addresses(tmp_path: Path) -> None:
    """Upstream's terway_resource_pool_disposed_count only grows: every address the pool gives
    back (unassigned, or with its ENI) adds one; it does not fall when the release is done."""
    world = World.build()
    conf = world.eni_conf(min_pool_size=0, max_pool_size=0, ip_pool_sync_period="1s",
                          ip_pool_sync_jitter_factor=0)

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf, metrics_port=0) as d:
            port = d.daemon.metrics.port
            assert port
            sample = "terway_resource_pool_disposed_count" + POOL
            assert _value(await asyncio.to_thread(_scrape, port), sample) == 0
            await d.alloc("p1")
            await d.alloc("p2")
            await d.release("p1")
            await d.release("p2")
            await until(lambda: not world.enis() or not any(
                e.private_ips[1:] for e in world.enis()), "the addresses to go back")
            await until(lambda: d.daemon.core.stats().disposed == 0, "the releases to finish")
            assert _value(await asyncio.to_thread(_scrape, port), sample) >= 2

    run(scenario())
