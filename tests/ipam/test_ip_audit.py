"""audit_ips: upstream's periodic ENI sync (pkg/eni/local.go) decided by the core.

Addresses that vanished from the node's metadata are never handed out again; addresses the
metadata lists that the pool does not know (orphans) are reported and left alone. Both need two
audits in a row.
"""

from __future__ import annotations

from terway.ipam import AssignIps, EniView, IpamCore, IpAudit, execute, feed
from tests.ipam.fakecloud import FakeCloud
from tests.ipam.helpers import make, settle


def ready_core(pods: int = 0, **over: object) -> tuple[IpamCore, FakeCloud, EniView]:
    """A core with one ready ENI of 4 addresses (primary first), ``pods`` of them held."""
    core, cloud = make(min_pool_size=4, max_pool_size=10, **over)
    settle(core, cloud, 0.0)
    for i in range(pods):
        core.request_ip(f"ns/p{i}", 1.0)
    (eni,) = core.enis()
    return core, cloud, eni


def listing(eni_id: str, ips: list[str]) -> dict[str, list[str]]:
    return {eni_id: ips}


def test_an_idle_address_missing_twice_is_taken_out_of_the_pool() -> None:
    core, _, eni = ready_core()
    gone = next(ip for ip in eni.ips if ip != core_primary(core))
    rest = [ip for ip in eni.ips if ip != gone]
    assert core.audit_ips(listing(eni.eni_id, rest), 10.0, 10.0) == IpAudit()  # once: maybe lag
    assert gone in core.enis()[0].ips
    audit = core.audit_ips(listing(eni.eni_id, rest), 80.0, 80.0)
    assert audit.invalid == ((eni.eni_id, gone, ""),) and audit.orphans == ()
    assert gone not in core.enis()[0].ips and core.stats().idle == len(rest)
    for i in range(len(rest)):                   # every other address goes out, never that one
        core.request_ip(f"ns/q{i}", 81.0)
    assert gone not in {r.ip for r in core.mapping()}
    core.self_check()


def test_a_held_address_that_vanished_stays_with_its_pod_and_is_dropped_at_release() -> None:
    core, _, eni = ready_core(pods=2)
    key = next(k for k in ("ns/p0", "ns/p1") if core_ip(core, k) != core_primary(core))
    held = core.allocation(key)
    assert held is not None
    rest = [ip for ip in eni.ips if ip != held.ip]
    core.audit_ips(listing(eni.eni_id, rest), 10.0, 10.0)
    audit = core.audit_ips(listing(eni.eni_id, rest), 80.0, 80.0)
    assert audit.invalid == ((eni.eni_id, held.ip, key),)
    assert core.allocation(key) == held          # the pod keeps it, as upstream
    for t in (150.0, 220.0):                     # reported once, neither again nor as orphan
        assert core.audit_ips(listing(eni.eni_id, rest), t, t) == IpAudit()
    total = core.stats().total
    core.release_ip(key, 290.0)
    assert core.stats().total == total - 1 and held.ip not in core.enis()[0].ips
    core.request_ip(key, 291.0)                  # the same pod gets another address
    again = core.allocation(key)
    assert again is not None and again.ip != held.ip
    core.self_check()


def test_a_reserved_address_that_vanished_is_not_given_back_to_its_pod() -> None:
    core, _, eni = ready_core()
    for k in ("sts/web-0", "sts/web-1"):
        core.request_ip(k, 1.0, sticky=True)
    key = next(k for k in ("sts/web-0", "sts/web-1") if core_ip(core, k) != core_primary(core))
    held = core.allocation(key)
    assert held is not None
    core.release_ip(key, 2.0)                    # reserved for it for ip_sticky_ttl
    rest = [ip for ip in eni.ips if ip != held.ip]
    core.audit_ips(listing(eni.eni_id, rest), 10.0, 10.0)
    assert core.audit_ips(listing(eni.eni_id, rest), 80.0, 80.0).invalid == \
        ((eni.eni_id, held.ip, ""),)
    core.request_ip(key, 81.0, sticky=True)
    again = core.allocation(key)
    assert again is not None and again.ip != held.ip
    core.self_check()


def test_an_orphan_is_reported_from_its_second_audit_and_never_handed_out() -> None:
    core, _, eni = ready_core()
    listed = [*eni.ips, "10.1.9.9"]
    assert core.audit_ips(listing(eni.eni_id, listed), 10.0, 10.0).orphans == ()
    for t in (80.0, 200.0):                      # reported at every audit while it stays
        assert core.audit_ips(listing(eni.eni_id, listed), t, t).orphans == \
            ((eni.eni_id, "10.1.9.9"),)
    assert "10.1.9.9" not in {r.ip for r in core.mapping()}
    assert core.stats().total == len(eni.ips)
    core.audit_ips(listing(eni.eni_id, list(eni.ips)), 300.0, 300.0)   # gone: streak ends
    assert core.audit_ips(listing(eni.eni_id, listed), 400.0, 400.0).orphans == ()


def test_a_streak_needs_consecutive_audits() -> None:
    core, _, eni = ready_core()
    gone = next(ip for ip in eni.ips if ip != core_primary(core))
    rest = [ip for ip in eni.ips if ip != gone]
    core.audit_ips(listing(eni.eni_id, rest), 10.0, 10.0)
    core.audit_ips(listing(eni.eni_id, list(eni.ips)), 80.0, 80.0)      # back: lag, not loss
    assert core.audit_ips(listing(eni.eni_id, rest), 150.0, 150.0) == IpAudit()
    assert gone in core.enis()[0].ips


def test_enis_changing_or_unreliable_answers_are_not_judged() -> None:
    core, cloud, eni = ready_core()
    gone = next(ip for ip in eni.ips if ip != core_primary(core))
    rest = [ip for ip in eni.ips if ip != gone]
    no_primary = [ip for ip in eni.ips if ip != core_primary(core)]
    for t in (10.0, 80.0, 150.0):               # the ENI's own address missing: not trusted
        assert core.audit_ips(listing(eni.eni_id, no_primary), t, t) == IpAudit()
    assert core.audit_ips({"eni-unknown": ["10.9.9.9"]}, 151.0, 151.0) == IpAudit()
    core.audit_ips(listing(eni.eni_id, rest), 152.0, 152.0)            # strike one
    for i in range(4):
        core.request_ip(f"ns/p{i}", 160.0)
    (cmd,) = [c for c in core.tick(160.3) if isinstance(c, AssignIps)]
    # read while the AssignIps is in flight: not judged
    assert core.audit_ips(listing(eni.eni_id, rest), 161.0, 161.0) == IpAudit()
    feed(core, cmd, execute(cmd, cloud), 170.0)
    # read before the addresses changed (at 165), answered after: not judged either
    assert core.audit_ips(listing(eni.eni_id, rest), 165.0, 171.0) == IpAudit()
    assert gone in core.enis()[0].ips


def test_exclusive_mode_has_no_audit() -> None:
    core, cloud = make(exclusive=True, max_enis=2)
    core.request_ip("ns/a", 0.0)
    settle(core, cloud, 0.3)
    (eni,) = core.enis()
    for t in (10.0, 80.0):
        assert core.audit_ips({eni.eni_id: [eni.ips[0], "10.9.9.9"]}, t, t) == IpAudit()


def core_ip(core: IpamCore, key: str) -> str:
    alloc = core.allocation(key)
    assert alloc is not None
    return alloc.ip


def core_primary(core: IpamCore) -> str:
    """The primary address of the core's only ENI (its slot knows it)."""
    eni = core.enis()[0]
    return core._enis[eni.eni_id].primary_ip


def test_an_address_the_cloud_assigns_again_is_valid_again() -> None:
    core, _, eni = ready_core(pods=2)
    key = next(k for k in ("ns/p0", "ns/p1") if core_ip(core, k) != core_primary(core))
    ip = core_ip(core, key)
    rest = [a for a in eni.ips if a != ip]
    core.audit_ips(listing(eni.eni_id, rest), 10.0, 10.0)
    assert core.audit_ips(listing(eni.eni_id, rest), 80.0, 80.0).invalid
    for i in range(2, 6):                            # the pool runs short: an assign follows
        core.request_ip(f"ns/p{i}", 81.0)
    (cmd,) = [c for c in core.tick(81.3) if isinstance(c, AssignIps)]
    core.on_ips_assigned(cmd.cmd_id, [ip], 82.0)     # the cloud hands that address out again
    core.release_ip(key, 83.0)
    assert ip in core.enis()[0].ips                  # kept: back to the pool, not dropped
    core.self_check()
