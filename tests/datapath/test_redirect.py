"""The IPVLAN host-stack redirect's tc part (clsact + u32 + mirred), on a veth pair: no ipvlan
needed, so it runs on the host too. The packets themselves are tested in the qemu guest
(tests/vm/test_ipvlan_guest.py)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from ipaddress import IPv4Network

import pytest

from terway.datapath import redirect
from terway.datapath.netns import iproute
from terway.datapath.types import DatapathError, PodNetwork
from tests.datapath.topology import new_tag, sh

SERVICE = IPv4Network("10.96.0.0/12")
HOST_STACK = IPv4Network("169.254.20.10/32")


def net(service: str = "", host_stack: tuple[str, ...] = ()) -> PodNetwork:
    return PodNetwork("10.9.0.41", "10.9.0.253", "02:00:00:00:01:01", service_cidr=service,
                      host_stack_cidrs=host_stack)


def test_cidrs_service_first_then_host_stack_ipv4_only() -> None:
    assert redirect.cidrs(net()) == []
    got = redirect.cidrs(net("10.96.0.10/12", ("169.254.20.10/32", "10.96.0.0/12")))
    assert got == [SERVICE, HOST_STACK]  # host bits masked, as upstream; duplicates once
    assert redirect.cidrs(net("fd00::/108", ("169.254.20.10/32",))) == [HOST_STACK]


@pytest.mark.parametrize(("service", "host_stack", "field"), [
    ("10.96.0.0/33", (), "service_cidr"),
    ("", ("169.254.20.10/32", "fd00::/64"), "host_stack_cidrs[1]"),
    ("", ("nonsense",), "host_stack_cidrs[0]"),
])
def test_cidrs_bad_value_names_its_field(service: str, host_stack: tuple[str, ...],
                                         field: str) -> None:
    with pytest.raises(DatapathError, match="^" + re.escape(f"{field}: ")):
        redirect.cidrs(net(service, host_stack))


@pytest.fixture
def veth() -> Iterator[tuple[str, int, int]]:
    """A netns with a veth pair: ``xa`` plays the ENI, ``xb`` the host slave."""
    ns = f"tw{new_tag()}-redir"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "name", "xa", "type", "veth", "peer", "name", "xb")
        with iproute(ns) as ipr:
            yield ns, ipr.link_lookup(ifname="xa")[0], ipr.link_lookup(ifname="xb")[0]
    finally:
        sh("ip", "netns", "del", ns, check=False)



def handles(ns: str, eni: int) -> list[tuple[int, IPv4Network | None]]:
    with iproute(ns) as ipr:
        target = ipr.link_lookup(ifname="xb")[0]
        return [(f.handle, f.redirects(target)) for f in redirect.egress_filters(ipr, eni)]


@pytest.mark.privileged
def test_ensure_adds_one_filter_per_cidr_and_a_rerun_keeps_them(
    veth: tuple[str, int, int],
) -> None:
    ns, eni, slave = veth
    with iproute(ns) as ipr:
        redirect.ensure(ipr, eni, slave, [SERVICE, HOST_STACK])
        assert redirect.missing(ipr, eni, slave, [SERVICE, HOST_STACK]) == []
    assert "clsact" in sh("tc", "-n", ns, "qdisc", "show", "dev", "xa")
    shown = sh("tc", "-n", ns, "filter", "show", "dev", "xa", "egress")
    assert "match 0a600000/fff00000 at 16" in shown and "match a9fe140a/ffffffff at 16" in shown
    assert shown.count("mirred (Ingress Redirect to device xb) stolen") == 2
    assert shown.count("filter protocol ip pref 40000 u32") >= 2
    before = handles(ns, eni)
    assert [c for _, c in before] == [SERVICE, HOST_STACK]
    send_udp(ns, "10.96.0.10")
    counters = sent(ns)
    assert counters[0] != "Sent 0 bytes 0 pkt"  # the packet hit the service filter
    with iproute(ns) as ipr:
        redirect.ensure(ipr, eni, slave, [SERVICE, HOST_STACK])
    assert handles(ns, eni) == before  # untouched: same entries, nothing added
    assert sent(ns) == counters  # not re-made (a new filter starts from zero)


def send_udp(ns: str, dst: str) -> None:
    """One UDP packet out of ``xa`` (a permanent neighbour: no ARP, which u32 would not see)."""
    sh("ip", "-n", ns, "link", "set", "xa", "up")
    sh("ip", "-n", ns, "link", "set", "xb", "up")
    sh("ip", "-n", ns, "route", "replace", f"{dst}/32", "dev", "xa")
    sh("ip", "-n", ns, "neigh", "replace", dst, "lladdr", "02:00:00:00:0f:fd", "dev", "xa",
       "nud", "permanent")
    code = f"import socket; socket.socket(2, 2).sendto(b'x', ({dst!r}, 53))"  # AF_INET, DGRAM
    sh("ip", "netns", "exec", ns, sys.executable, "-c", code)


def sent(ns: str) -> list[str]:
    """Each egress filter action's byte/packet counters, in order."""
    shown = sh("tc", "-s", "-n", ns, "filter", "show", "dev", "xa", "egress")
    return [" ".join(ln.split()[:5]) for ln in shown.splitlines() if ln.strip().startswith("Sent")]


@pytest.mark.privileged
def test_ensure_drops_stale_duplicate_and_foreign_target_filters(
    veth: tuple[str, int, int],
) -> None:
    ns, eni, slave = veth
    other = IPv4Network("192.168.0.0/16")
    with iproute(ns) as ipr:
        redirect.ensure(ipr, eni, slave, [SERVICE, other])
        redirect._add(ipr, eni, slave, SERVICE)  # a duplicate (two set-ups racing)
        redirect._add(ipr, eni, 1, HOST_STACK)  # to a host slave that was re-created
        assert redirect.missing(ipr, eni, slave, [SERVICE, HOST_STACK]) == [HOST_STACK]
        redirect.ensure(ipr, eni, slave, [SERVICE, HOST_STACK])
    assert [c for _, c in handles(ns, eni)] == [SERVICE, HOST_STACK]


@pytest.mark.privileged
def test_remove_takes_filters_and_clsact_but_leaves_other_filters(
    veth: tuple[str, int, int],
) -> None:
    ns, eni, slave = veth
    with iproute(ns) as ipr:
        redirect.ensure(ipr, eni, slave, [SERVICE])
        sh("tc", "-n", ns, "filter", "add", "dev", "xa", "egress", "prio", "10", "protocol", "ip",
           "u32", "match", "ip", "dst", "1.2.3.4/32", "action", "mirred", "egress", "mirror",
           "dev", "xb")
        redirect.remove(ipr, eni)
        shown = sh("tc", "-n", ns, "filter", "show", "dev", "xa", "egress")
        assert "pref 40000" not in shown and "01020304/ffffffff" in shown  # someone else's
        assert redirect.has_clsact(ipr, eni)
        assert redirect.missing(ipr, eni, slave, [SERVICE]) == [SERVICE]
        sh("tc", "-n", ns, "filter", "del", "dev", "xa", "egress", "prio", "10")
        redirect.remove(ipr, eni)
        assert not redirect.has_clsact(ipr, eni)
        redirect.remove(ipr, eni)  # idempotent
    assert "clsact" not in sh("tc", "-n", ns, "qdisc", "show", "dev", "xa")
