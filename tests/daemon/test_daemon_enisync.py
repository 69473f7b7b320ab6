"""Upstream's per-ENI loops in the daemon: the metadata sync (ResourceInvalid node events, an
address that vanished never handed out again, an orphan left alone) and the per-ENI limiters
(AssignPrivateIpAddresses: 10 a minute, bursts of 2)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from terway.cloud.metadata import MetadataError
from terway.daemon.enisync import RESOURCE_INVALID, EniSync, metadata_source
from terway.daemon.events import EventRecorder
from terway.daemon.ports import NoopKube
from terway.ipam import IpAudit
from tests.daemon.daemon_harness import Running, World, run, running_daemon, until


def cloud_ips(world: World) -> set[str]:
    return {ip for e in world.enis() for ip in e.private_ips}


def node_events(d: Running) -> list[str]:
    return [e.message for e in d.daemon.service.events.recent
            if not e.name and e.reason == RESOURCE_INVALID]


def test_vanished_and_orphan_addresses_are_flagged_and_never_handed_out(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        conf = world.eni_conf(min_pool_size=3, max_pool_size=6)
        async with running_daemon(tmp_path, world, conf=conf, scale=100.0,
                                  alloc_timeout=3600.0) as d:
            assert d.daemon.eni_sync is not None           # on by default, as upstream
            await d.alloc("p1")
            await until(lambda: d.daemon.core.stats().idle >= 3, "the pool's top-up")
            (eni,) = world.enis()
            idle = [r.ip for r in d.daemon.core.mapping()
                    if r.status == "Idle" and r.ip != eni.primary_ip]
            gone = idle[0]
            (orphan,) = d.cloud.assign_private_ips(eni.eni_id, 1)  # behind the daemon's back
            d.cloud.unassign_private_ips(eni.eni_id, [gone])
            want = {f"Mark as invalid, ip: {gone}",
                    f"orphan ip found on ecs metadata, ip: {orphan}"}
            await until(lambda: want <= set(node_events(d)), "ResourceInvalid events",
                        timeout=60.0)
            pool = {r.ip for r in d.daemon.core.mapping()}
            assert orphan not in pool
            assert gone not in pool or gone in cloud_ips(world)   # assigned again by the cloud
            given = {(await d.alloc(f"q{i}")).pod_ip for i in range(6)}
            assert len(given) == 6 and orphan not in given and given <= cloud_ips(world)
            assert orphan in cloud_ips(world)                     # left alone
            lines = d.log_lines()
            assert any("remote ip gone, mark as invalid" in ln and gone in ln for ln in lines)
            assert any("orphan ip found on ecs metadata" in ln and orphan in ln for ln in lines)

    run(scenario())


def test_assigns_on_one_eni_wait_for_its_limiter(tmp_path: Path) -> None:
    """Each pod needs its own AssignPrivateIpAddresses (no pool): the third on the ENI cannot
    be made before six seconds (daemon time) after the first; unlimited, they take ~1 s."""
    world = World.build()

    async def scenario() -> None:
        conf = world.eni_conf(min_pool_size=0, max_pool_size=0)
        async with running_daemon(tmp_path, world, conf=conf) as d:
            await d.alloc("p1")                      # CreateNetworkInterface
            asked = d.daemon.clock.now()
            for name in ("p2", "p3", "p4"):         # three assigns on that ENI
                await d.alloc(name)
            assert d.daemon.clock.now() - asked >= 6.0
            assert len(world.enis()) == 1

    run(scenario())


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds

    def sleep_blocking(self, seconds: float) -> None:
        self.t += seconds


class Core:
    """audit_ips answers as told; enis() lists one ready ENI."""

    def __init__(self, audits: list[IpAudit]) -> None:
        self.audits = audits
        self.observed: list[dict[str, list[str]]] = []

    def enis(self) -> list[object]:
        from terway.ipam.views import EniView
        return [EniView("eni-1", "00:16:3e:00:00:01", "vsw-a", "ready", (), 0, None)]

    def audit_ips(self, observed: dict[str, list[str]], read_at: float, now: float) -> IpAudit:
        self.observed.append(observed)
        return self.audits.pop(0)


def test_events_are_upstreams_messages_at_most_once_a_minute_per_kind() -> None:
    clock = Clock()
    events = EventRecorder(NoopKube(), clock=clock.now)
    twice = IpAudit(invalid=(("eni-1", "10.0.0.5", ""), ("eni-1", "10.0.0.6", "ns/p")),
                    orphans=(("eni-1", "10.0.0.9"),))
    core = Core([twice, twice, twice])
    pumped: list[float] = []
    sync = EniSync(core, lambda enis: {"eni-1": ["10.0.0.1"]}, events, clock,  # type: ignore[arg-type]
                   rng=random.Random(1), after=lambda: pumped.append(clock.t))

    async def rounds() -> None:
        await sync.once()
        clock.t = 30.0
        await sync.once()            # within the minute: no second event of either kind
        clock.t = 61.0
        await sync.once()

    asyncio.run(rounds())
    msgs = [e.message for e in events.recent]
    assert msgs == ["Mark as invalid, ip: 10.0.0.5, 10.0.0.6",
                    "orphan ip found on ecs metadata, ip: 10.0.0.9"] * 2
    assert all(e.reason == RESOURCE_INVALID and e.warning for e in events.recent)
    assert core.observed == [{"eni-1": ["10.0.0.1"]}] * 3 and pumped == [0.0, 30.0, 61.0]


def test_rounds_are_a_minute_stretched_by_up_to_a_minute_from_a_seeded_rng() -> None:
    sync = EniSync(Core([]), lambda enis: {}, EventRecorder(NoopKube()), Clock(),  # type: ignore[arg-type]
                   rng=random.Random(4))
    draws = random.Random(4)
    assert [sync.interval() for _ in range(5)] == [60.0 * (1 + draws.random()) for _ in range(5)]


def test_metadata_source_skips_an_eni_it_cannot_read() -> None:
    class Md:
        def private_ipv4s(self, mac: str) -> list[str]:
            if mac == "bad":
                raise MetadataError("network/interfaces/macs/bad/private-ipv4s", "HTTP 404")
            return ["10.0.0.1", "10.0.0.2"]

    read = metadata_source(Md())  # type: ignore[arg-type]
    assert read([("eni-1", "good"), ("eni-2", "bad")]) == {"eni-1": ["10.0.0.1", "10.0.0.2"]}
