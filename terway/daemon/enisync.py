"""The periodic ENI sync: each ENI's addresses re-read and checked against the pool.

Upstream (pkg/eni/local.go) runs ``wait.JitterUntil(sync, 1*time.Minute, 1.0, true)`` for every
ENI: at once, then every 60 s stretched by up to 60 s more, it reads the ENI's addresses from
instance metadata (``network/interfaces/macs/<mac>/private-ipv4s``) and compares them with its
pool. Here one loop reads every ready ENI per round on the same schedule, and the core decides
(``IpamCore.audit_ips``: two audits in a row, then an address that vanished is never handed out
again, an orphan is reported). Each verdict is logged per address, as upstream, and becomes a
Warning event ``ResourceInvalid`` on the node, at most once a minute per kind (upstream's
messages, the addresses of one round joined).

Without instance metadata (tests, the emulator's in-process nodes) the addresses come from
DescribeNetworkInterfaces instead.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from terway.cloud.api import CloudAPI
from terway.cloud.errors import CloudError
from terway.cloud.metadata import MetadataClient, MetadataError
from terway.daemon import logfmt
from terway.daemon.clock import Clock
from terway.daemon.events import EventRecorder
from terway.ipam import IpamCore, IpAudit

log = logfmt.get("enisync")
RESOURCE_INVALID = "ResourceInvalid"   # upstream's types.ErrResourceInvalid
SYNC_PERIOD = 60.0                     # upstream's defaultSyncPeriod, fixed
SYNC_JITTER = 1.0                      # and its JitterUntil factor

# [(ENI id, MAC)] -> {ENI id: addresses}; an ENI left out of the answer is not judged
IpSource = Callable[[Sequence[tuple[str, str]]], dict[str, list[str]]]


def metadata_source(md: MetadataClient) -> IpSource:
    """Upstream's source: each ENI's ``private-ipv4s`` in instance metadata."""

    def read(enis: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for eni_id, mac in enis:
            try:
                out[eni_id] = md.private_ipv4s(mac)
            except MetadataError as err:   # upstream: "failed to sync eni", next round
                log.warning("failed to sync eni", extra=logfmt.fields(eni=eni_id, mac=mac,
                                                                       error=str(err)))
        return out

    return read


def cloud_source(cloud: CloudAPI, instance_id: str) -> IpSource:
    """Without metadata: the node's ENIs from DescribeNetworkInterfaces."""

    def read(enis: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
        wanted = {eni_id for eni_id, _ in enis}
        return {e.eni_id: list(e.private_ips)
                for e in cloud.describe_network_interfaces(instance_id=instance_id)
                if e.eni_id in wanted}

    return read


class EniSync:
    """Rounds of read → ``core.audit_ips`` → logs and events; ``after`` runs after each audit
    (the driver's pump: the pool may have lost an idle address)."""

    def __init__(self, core: IpamCore, source: IpSource, events: EventRecorder, clock: Clock,
                 *, rng: random.Random, after: Callable[[], None] = lambda: None,
                 period: float = SYNC_PERIOD, jitter: float = SYNC_JITTER) -> None:
        self.core = core
        self.source = source
        self.events = events
        self.clock = clock
        self.rng = rng
        self.after = after
        self.period = period
        self.jitter = jitter

    async def once(self) -> IpAudit:
        """One round over every ready ENI."""
        enis = [(e.eni_id, e.mac) for e in self.core.enis() if e.state == "ready"]
        if not enis:
            return IpAudit()
        read_at = self.clock.now()
        try:
            observed = await asyncio.to_thread(self.source, enis)
        except CloudError as err:
            log.warning("failed to sync enis", extra=logfmt.fields(error=err.describe()))
            return IpAudit()
        audit = self.core.audit_ips(observed, read_at, self.clock.now())
        self.report(audit)
        self.after()
        return audit

    def report(self, audit: IpAudit) -> None:
        for eni_id, ip, pod in audit.invalid:
            log.warning("remote ip gone, mark as invalid", extra=logfmt.fields(
                ip=ip, eni=eni_id, pod=pod))
        for eni_id, ip in audit.orphans:
            log.warning("orphan ip found on ecs metadata", extra=logfmt.fields(ip=ip, eni=eni_id))
        if audit.invalid:
            ips = ", ".join(ip for _, ip, _ in audit.invalid)
            self.events.record_node(RESOURCE_INVALID, f"Mark as invalid, ip: {ips}",
                                    same_as="invalid")
        if audit.orphans:
            ips = ", ".join(ip for _, ip in audit.orphans)
            self.events.record_node(RESOURCE_INVALID,
                                    f"orphan ip found on ecs metadata, ip: {ips}",
                                    same_as="orphan")

    def interval(self) -> float:
        """``period * (1 + U[0, jitter))`` from the seeded RNG (``wait.Jitter``)."""
        return self.period * (1.0 + self.jitter * self.rng.random())

    async def run(self) -> None:
        """At once, then after every jittered interval, measured from the round's end
        (JitterUntil's ``sliding``)."""
        while True:
            try:
                await self.once()
            except Exception:   # a bug must not end the loop: the next round tries again
                log.error("ENI sync failed", exc_info=True)
            await self.clock.sleep(self.interval())

