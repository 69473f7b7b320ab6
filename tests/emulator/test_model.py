"""The cloud model: address accounting, quotas, state machines, idempotence, determinism."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from emulator.model import ApiError, Cloud, CloudEvent, EventKind, ManualClock


@dataclass
class World:
    cloud: Cloud
    clock: ManualClock
    vpc: str
    vsw: str
    sg: str
    node: str


def make_world(cidr: str = "192.168.0.0/28", itype: str = "ecs.g6.2xlarge", seed: int = 0,
               **opts: object) -> World:
    clock = ManualClock()
    cloud = Cloud(seed=seed, clock=clock, **opts)  # type: ignore[arg-type]
    vpc = cloud.create_vpc("192.168.0.0/16").vpc_id
    vsw = cloud.create_vswitch(vpc, "cn-hangzhou-h", cidr).vswitch_id
    sg = cloud.create_security_group(vpc).security_group_id
    [node] = cloud.run_instances(itype, vsw, [sg])
    return World(cloud, clock, vpc, vsw, sg, node)


def refused(code: str, fn: object, *args: object, **kwargs: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == code, info.value
    return info.value


def test_vswitch_reserves_first_and_last_three() -> None:
    w = make_world("192.168.1.0/24")
    view = w.cloud.get_vswitch(w.vsw)
    assert view.gateway == "192.168.1.253"
    assert view.available_ip_count == 252 - 1          # the node's primary IP
    w2 = make_world("192.168.0.0/29")
    assert w2.cloud.get_vswitch(w2.vsw).available_ip_count == 3


def test_exhausting_a_slash28_gives_exactly_its_usable_addresses() -> None:
    w = make_world()
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=9)   # 10 addresses
    got = set(eni.private_ips)
    second = c.create_network_interface(w.vsw, [w.sg])                      # 11th
    got |= set(second.private_ips)
    node_ip = c.get_instance(w.node).primary_ip
    assert len(got) == 11 and node_ip not in got
    usable = {f"192.168.0.{i}" for i in range(1, 13)}
    assert got | {node_ip} == usable
    assert c.get_vswitch(w.vsw).available_ip_count == 0
    err = refused("InvalidVSwitchId.IpNotEnough", c.assign_private_ips, second.eni_id, 1)
    assert err.http_status == 403
    assert err.message == f'The specified VSwitch "{w.vsw}" has not enough IpAddress.'
    refused("InvalidVSwitchId.IpNotEnough", c.create_network_interface, w.vsw, [w.sg])


def test_available_count_tracks_every_change() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud

    def avail() -> int:
        return c.get_vswitch(w.vsw).available_ip_count

    start = avail()
    eni = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=2)
    assert avail() == start - 3
    new = c.assign_private_ips(eni.eni_id, 4)
    assert avail() == start - 7
    c.unassign_private_ips(eni.eni_id, new[:2])
    assert avail() == start - 5
    c.delete_network_interface(eni.eni_id)
    assert avail() == start
    # freed addresses are reused
    again = c.create_network_interface(w.vsw, [w.sg])
    assert again.primary_ip in set(eni.private_ips) | set(new)


def test_fourth_secondary_eni_on_g6_2xlarge_refused_at_attach() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    for _ in range(3):
        eni = c.create_network_interface(w.vsw, [w.sg])
        c.attach_network_interface(eni.eni_id, w.node)
    fourth = c.create_network_interface(w.vsw, [w.sg])
    before = c.snapshot()
    err = refused("EniPerInstanceLimitExceeded", c.attach_network_interface, fourth.eni_id,
                  w.node)
    assert err.http_status == 403
    assert c.snapshot() == before
    assert c.get_network_interface(fourth.eni_id).status == "Available"


def test_ip_quota_per_eni_counts_the_primary() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=4)
    c.attach_network_interface(eni.eni_id, w.node)
    c.assign_private_ips(eni.eni_id, 5)                     # 10 = EniPrivateIpAddressQuantity
    before = c.snapshot()
    err = refused("InvalidOperation.Ipv4CountExceeded", c.assign_private_ips, eni.eni_id, 1)
    assert err.http_status == 403
    assert c.snapshot() == before


@pytest.mark.parametrize("count", [0, 11])
def test_count_out_of_range_refused(count: int) -> None:
    w = make_world("192.168.0.0/24")
    eni = w.cloud.create_network_interface(w.vsw, [w.sg])
    before = w.cloud.snapshot()
    code = "MissingParameter" if count == 0 else "InvalidParameter"
    err = refused(code, w.cloud.assign_private_ips, eni.eni_id, count)
    assert err.http_status == 400
    assert w.cloud.snapshot() == before


def test_eleven_named_addresses_refused() -> None:
    w = make_world("192.168.0.0/24")
    eni = w.cloud.create_network_interface(w.vsw, [w.sg])
    ips = [f"192.168.0.{i}" for i in range(100, 111)]
    refused("InvalidParameter", w.cloud.assign_private_ips, eni.eni_id, 0, ips)


def test_named_addresses_assigned_and_duplicates_refused() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg], primary_ip="192.168.0.50")
    assert eni.primary_ip == "192.168.0.50"
    assert c.assign_private_ips(eni.eni_id, 0, ["192.168.0.60"]) == ["192.168.0.60"]
    refused("InvalidPrivateIpAddress.Duplicated", c.assign_private_ips, eni.eni_id, 0,
            ["192.168.0.60"])
    refused("InvalidVSwitchId.IpInvalid", c.assign_private_ips, eni.eni_id, 0,
            ["192.168.0.253"])


def test_unassign_rules() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=1)
    refused("InvalidIp.IpUnassigned", c.unassign_private_ips, eni.eni_id, ["192.168.0.200"])
    refused("InvalidIp.IpUnassigned", c.unassign_private_ips, eni.eni_id, [eni.primary_ip])
    c.unassign_private_ips(eni.eni_id, [eni.private_ips[1]])
    assert c.get_network_interface(eni.eni_id).private_ips == (eni.primary_ip,)


def test_client_token_is_idempotent() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    a = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=2, client_token="t-1")
    avail = c.get_vswitch(w.vsw).available_ip_count
    b = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=2, client_token="t-1")
    assert a == b
    assert c.get_vswitch(w.vsw).available_ip_count == avail
    assert len(c.describe_network_interfaces(eni_type="Secondary")) == 1
    refused("IdempotentParameterMismatch", c.create_network_interface, w.vsw, [w.sg],
            secondary_ip_count=3, client_token="t-1")
    other = c.create_network_interface(w.vsw, [w.sg], secondary_ip_count=2, client_token="t-2")
    assert other.eni_id != a.eni_id


def test_attach_detach_state_machine_follows_the_clock() -> None:
    w = make_world("192.168.0.0/24", attach_delay=2.0, detach_delay=1.0)
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg]).eni_id
    c.attach_network_interface(eni, w.node)
    assert c.get_network_interface(eni).status == "Attaching"
    refused("InvalidOperation.InvalidEniState", c.delete_network_interface, eni)
    refused("InvalidOperation.InvalidEniState", c.detach_network_interface, eni, w.node)
    w.clock.advance(1.999)
    assert c.get_network_interface(eni).status == "Attaching"
    w.clock.advance(0.001)
    view = c.get_network_interface(eni)
    assert (view.status, view.instance_id, view.device_index) == ("InUse", w.node, 1)
    refused("InvalidOperation.InvalidEniState", c.delete_network_interface, eni)
    c.detach_network_interface(eni, w.node)
    assert c.get_network_interface(eni).status == "Detaching"
    w.clock.advance(1.0)
    view = c.get_network_interface(eni)
    assert (view.status, view.instance_id) == ("Available", "")
    c.delete_network_interface(eni)
    refused("InvalidEniId.NotFound", c.get_network_interface, eni)


def test_not_found_codes_are_404() -> None:
    w = make_world()
    c = w.cloud
    assert refused("InvalidEniId.NotFound", c.assign_private_ips, "eni-x", 1).http_status == 404
    assert refused("InvalidVSwitchId.NotFound", c.create_network_interface, "vsw-x",
                   [w.sg]).http_status == 404
    eni = c.create_network_interface(w.vsw, [w.sg]).eni_id
    assert refused("InvalidEcsId.NotFound", c.attach_network_interface, eni,
                   "i-x").http_status == 404


def test_primary_eni_cannot_be_detached_or_deleted() -> None:
    w = make_world()
    primary = w.cloud.get_instance(w.node).primary_eni_id
    refused("InvalidOperation.DetachPrimaryEniNotAllowed", w.cloud.detach_network_interface,
            primary)
    refused("InvalidOperation.InvalidEniType", w.cloud.delete_network_interface, primary)


def test_vswitch_rules() -> None:
    w = make_world()
    c = w.cloud
    refused("InvalidCidrBlock.Overlapped", c.create_vswitch, w.vpc, "cn-hangzhou-i",
            "192.168.0.8/29")
    refused("InvalidParameter", c.create_vswitch, w.vpc, "cn-hangzhou-i",
            "10.0.0.0/24")
    refused("InvalidCidrBlock.Malformed", c.create_vswitch, w.vpc, "cn-hangzhou-i",
            "192.168.9.0/30")
    refused("InvalidZoneId.NotFound", c.create_vswitch, w.vpc, "cn-beijing-g", "192.168.9.0/24")
    refused("DependencyViolation", c.delete_vswitch, w.vsw)
    spare = c.create_vswitch(w.vpc, "cn-hangzhou-i", "192.168.9.0/24").vswitch_id
    c.delete_vswitch(spare)
    assert [v.vswitch_id for v in c.describe_vswitches(vpc_id=w.vpc)] == [w.vsw]


def test_describe_filters() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    a = c.create_network_interface(w.vsw, [w.sg], tags={"creator": "terway"}).eni_id
    b = c.create_network_interface(w.vsw, [w.sg], tags={"creator": "other"}).eni_id
    c.attach_network_interface(a, w.node)
    primary = c.get_instance(w.node).primary_eni_id
    assert [e.eni_id for e in c.describe_network_interfaces(instance_id=w.node)] == [primary, a]
    assert [e.eni_id for e in c.describe_network_interfaces(tags={"creator": "terway"})] == [a]
    assert [e.eni_id for e in c.describe_network_interfaces(status="Available")] == [b]
    assert [e.eni_id for e in c.describe_network_interfaces([b, "eni-none"])] == [b]
    assert [e.eni_id for e in c.describe_network_interfaces(eni_type="Primary")] == [primary]


def test_same_seed_same_ids_macs_addresses() -> None:
    def run(seed: int) -> list[object]:
        w = make_world("192.168.0.0/24", seed=seed, attach_delay=(0.5, 2.0))
        eni = w.cloud.create_network_interface(w.vsw, [w.sg], secondary_ip_count=2)
        w.cloud.attach_network_interface(eni.eni_id, w.node)
        snap = w.cloud.snapshot()
        return [w.vpc, w.vsw, w.sg, w.node, eni, snap]

    assert run(7) == run(7)
    assert run(7)[:5] != run(8)[:5]
    eni = run(3)[4]
    assert eni.mac.startswith("00:16:3e:")  # type: ignore[attr-defined]
    assert eni.eni_id.startswith("eni-")  # type: ignore[attr-defined]


def test_reset_and_reseed() -> None:
    w = make_world(seed=5)
    first = w.vpc
    w.cloud.reset()
    assert w.cloud.snapshot()["vpcs"] == []
    assert w.cloud.create_vpc("192.168.0.0/16").vpc_id == first
    w.cloud.reseed(5)                       # restart generators: never repeats an issued id
    assert w.cloud.create_vpc("10.0.0.0/16").vpc_id != first


def test_events_are_typed_and_ordered() -> None:
    w = make_world("192.168.0.0/24", attach_delay=1.0)
    seen: list[CloudEvent] = []
    unsubscribe = w.cloud.subscribe(seen.append)
    eni = w.cloud.create_network_interface(w.vsw, [w.sg])
    w.cloud.attach_network_interface(eni.eni_id, w.node)
    w.clock.advance(5)
    w.cloud.settle()
    new = w.cloud.assign_private_ips(eni.eni_id, 2)
    unsubscribe()
    w.cloud.assign_private_ips(eni.eni_id, 1)
    kinds = [e.kind for e in seen]
    assert kinds == [EventKind.ENI_CREATED, EventKind.ENI_ATTACHING, EventKind.ENI_ATTACHED,
                     EventKind.IPS_ASSIGNED]
    assert seen[2].time == 1.0 and seen[2].instance_id == w.node and seen[2].mac == eni.mac
    assert seen[3].ips == tuple(new)


def test_metadata_paths() -> None:
    w = make_world("192.168.1.0/24")
    c = w.cloud
    inst = c.get_instance(w.node)
    mac = c.metadata_get(w.node, "mac")
    assert c.metadata_get(w.node, "/latest/meta-data/instance-id") == w.node
    assert c.metadata_get(w.node, "region-id") == "cn-hangzhou"
    assert c.metadata_get(w.node, "zone-id") == "cn-hangzhou-h"
    assert c.metadata_get(w.node, "instance/instance-type") == "ecs.g6.2xlarge"
    assert c.metadata_get(w.node, "network/interfaces/macs/") == f"{mac}/"
    base = f"network/interfaces/macs/{mac}/"
    assert c.metadata_get(w.node, base + "network-interface-id") == inst.primary_eni_id
    assert c.metadata_get(w.node, base + "gateway") == "192.168.1.253"
    assert c.metadata_get(w.node, base + "vswitch-cidr-block") == "192.168.1.0/24"
    assert c.metadata_get(w.node, base + "private-ipv4s") == f'["{inst.primary_ip}"]'
    assert c.metadata_get(w.node, base + "nope") is None
    assert c.metadata_get("i-missing", "instance-id") is None
    assert "network/" in (c.metadata_get(w.node, "") or "").split("\n")


def test_metadata_lags_behind_changes() -> None:
    w = make_world("192.168.0.0/24", metadata_lag=2.0)
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg])
    c.attach_network_interface(eni.eni_id, w.node)
    macs = "network/interfaces/macs/"
    assert eni.mac not in (c.metadata_get(w.node, macs) or "")
    w.clock.advance(1.9)
    assert eni.mac not in (c.metadata_get(w.node, macs) or "")
    w.clock.advance(0.1)
    assert f"{eni.mac}/" in (c.metadata_get(w.node, macs) or "").split("\n")
    new = c.assign_private_ips(eni.eni_id, 1)
    path = f"{macs}{eni.mac}/private-ipv4s"
    assert new[0] not in (c.metadata_get(w.node, path) or "")
    w.clock.advance(2.0)
    assert new[0] in (c.metadata_get(w.node, path) or "")


def test_delete_instance_releases_primary_and_frees_secondaries() -> None:
    w = make_world("192.168.0.0/24")
    c = w.cloud
    eni = c.create_network_interface(w.vsw, [w.sg]).eni_id
    c.attach_network_interface(eni, w.node)
    avail = c.get_vswitch(w.vsw).available_ip_count
    c.delete_instance(w.node)
    assert c.get_network_interface(eni).status == "Available"
    assert c.get_vswitch(w.vsw).available_ip_count == avail + 1
    assert c.describe_instances() == []


def test_run_instances_is_all_or_nothing() -> None:
    w = make_world("192.168.0.0/29")                       # 4 usable, the node took 1
    before = w.cloud.snapshot()
    refused("QuotaExceeded.PrivateIpAddress", w.cloud.run_instances, "ecs.g6.large", w.vsw,
            [w.sg], 4)
    assert w.cloud.snapshot() == before
    assert len(w.cloud.run_instances("ecs.g6.large", w.vsw, [w.sg], 3)) == 3
