"""Single-node acceptance: terwayd in an emulated ECS node, pods set up by the real CNI plugin.

The seeds' story end to end on real namespaces: pods get VPC addresses and real connectivity,
``terway-cli mapping`` shows them, the vSwitch runs out (IpNotEnough, the log line users grep
for, CNI STATUS 50), deleting a pod lets the next one start, and the documented remedy (a new
vSwitch in the same zone, added to eni_conf) works with and without a daemon restart.
"""

from __future__ import annotations

import ipaddress
import json
import re
import signal
from pathlib import Path

import pytest

from emulator.fabric import probe
from emulator.fabric.netns import ip
from emulator.fabric.testbed import CniOutcome, MappingRow, NodeBed
from tests.e2e_node.conftest import wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]

MAX_FILL = 40
REMEDY_CIDR = "10.88.32.0/19"


def pod_address(bed: NodeBed, pod: str) -> str | None:
    """The IPv4 address on ``eth0`` inside the pod's netns, as the pod itself sees it."""
    links = json.loads(ip("-j", "addr", "show", "dev", "eth0", ns=bed.pods[pod]))
    addrs = [a["local"] for a in links[0]["addr_info"] if a["family"] == "inet"]
    return addrs[0] if addrs else None


def owner_eni(bed: NodeBed, address: str) -> object:
    enis = [e for e in bed.cloud.describe_network_interfaces(vpc_id=bed.vpc_id)
            if address in e.private_ips]
    assert len(enis) == 1, f"{address} is held by {len(enis)} ENIs"
    return enis[0]


def fill(bed: NodeBed, prefix: str = "fill") -> tuple[list[str], CniOutcome]:
    """Add pods until an ADD fails; return the pods that started and the failure."""
    started: list[str] = []
    for n in range(MAX_FILL):
        pod = f"{prefix}-{n}"
        outcome = bed.add_pod(pod)
        if not outcome.ok:
            return started, outcome
        started.append(pod)
    pytest.fail(f"{MAX_FILL} pods started on a /28 vSwitch: exhaustion never happened")


def rows_by_status(rows: list[MappingRow], status: str) -> list[MappingRow]:
    return [r for r in rows if r.status == status]


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def test_pods_get_vswitch_addresses_and_reach_their_gateway_the_node_and_each_other(
        bed: NodeBed) -> None:
    """With the Python fallback removed: the native front and terwayd's ExecCNI alone."""
    Path(f"{bed.plugin}-python").unlink()
    vsw = bed.cloud.get_vswitch(bed.vswitch_id)
    node_ip = bed.cloud.get_instance(bed.node).primary_ip
    addresses = {}
    for pod in ("web-0", "web-1", "web-2"):
        outcome = bed.add_pod(pod)
        assert outcome.ok, f"ADD {pod}: {outcome.msg}\n{bed.log_tail()}"
        assert outcome.ip is not None
        assert ipaddress.ip_address(outcome.ip) in ipaddress.ip_network(vsw.cidr_block)
        assert pod_address(bed, pod) == outcome.ip
        assert probe.ping(bed.pods[pod], vsw.gateway), f"{pod} cannot reach {vsw.gateway}"
        assert probe.ping(bed.pods[pod], node_ip), f"{pod} cannot reach node {node_ip}"
        addresses[pod] = outcome.ip
    assert len(set(addresses.values())) == 3
    assert probe.ping(bed.pods["web-0"], addresses["web-2"])
    attached = {a for e in bed.node_enis() for a in e.private_ips}
    assert set(addresses.values()) <= attached   # each pod IP is an IP of one of the node's ENIs
    outcome = bed.del_pod("web-1")
    assert outcome.ok, outcome.msg
    assert probe.ping(bed.pods["web-0"], addresses["web-2"])


def test_mapping_shows_a_normal_row_per_pod_and_the_pool_settles_between_min_and_max(
        bed: NodeBed) -> None:
    pods = {}
    for pod in ("api-0", "api-1", "api-2"):
        outcome = bed.add_pod(pod)
        assert outcome.ok, outcome.msg
        pods[pod] = outcome.ip
    macs = {e.mac for e in bed.node_enis()}

    def settled() -> list[MappingRow] | None:
        rows = bed.mapping()
        idle = rows_by_status(rows, "Idle")
        normal = {short(r.pod): r for r in rows_by_status(rows, "Normal")}
        ok = (set(normal) == set(pods) and 2 <= len(idle) <= 5
              and len(rows) == len(normal) + len(idle))
        return rows if ok else None

    rows = wait_for("mapping: 3 Normal rows and 2-5 Idle rows", settled)
    for row in rows_by_status(rows, "Normal"):
        mac, _, address = row.res_id.partition(".")
        assert address == pods[short(row.pod)]
        assert mac in macs, f"{row.res_id}: MAC is not one of the node's ENIs"
        assert row.factory_res_id == row.res_id
    assert all(r.pod == "" for r in rows_by_status(rows, "Idle"))
    assert len({r.ip for r in rows}) == len(rows), "an address listed twice"


def test_exhaustion_fails_the_pod_with_ip_not_enough_logs_it_reports_status_50_and_recovers(
        bed: NodeBed) -> None:
    # Another workload holds 5 of the /28's 11 usable addresses (the node's primary takes one),
    # so the vSwitch runs dry while the node's ENI still has room: the daemon's
    # AssignPrivateIpAddresses meets IpNotEnough, as in the seeds' story.
    bed.cloud.create_network_interface(bed.vswitch_id, [bed.sg_id], secondary_ip_count=4)
    started, failure = fill(bed)
    assert started, "not a single pod started"
    # (The vSwitch may still show 1-2 free addresses: Assign is all-or-nothing and the daemon
    # asks for a batch; see docs/fabric.md "Findings".)
    assert bed.cloud.get_vswitch(bed.vswitch_id).available_ip_count < 3
    assert "InvalidVSwitchId.IpNotEnough" in failure.msg, failure.out
    seed_line = re.compile(
        r'level=warning msg="Assign private ip address failed: Aliyun API Error: RequestId: '
        r'[0-9A-F-]+ Status Code: 403 Code: InvalidVSwitchId\.IpNotEnough Message: The specified '
        r'VSwitch \\"' + re.escape(bed.vswitch_id) + r'\\" has not enough IpAddress\., retrying"')
    wait_for("the seeds' IpNotEnough line in the daemon log",
             lambda: seed_line.search(bed.log_text()), timeout=10)
    # The batch is halved until a single address is refused (then the ENI is blocked), each
    # retry after the ENI's limiter (upstream's 10 assigns a minute, bursts of 2): the failed
    # pod may have given up before the last address came, which then waits idle in the pool.
    # Once the pool's top-up has met the refusal too, more pods take what is idle and fail.
    rounds = iter(range(100))

    def dry() -> CniOutcome | None:
        fill(bed, prefix=f"more{next(rounds)}")      # takes what is idle, then fails
        status = bed.status()
        return status if status.rc != 0 and status.out.get("code") == 50 else None

    wait_for("STATUS code 50 (no IPs can be had)", dry, timeout=60, every=1)
    bed.del_pod(started[0])
    after = bed.add_pod("after-delete")
    assert after.ok, f"a freed address did not let the next pod start: {after.msg}"


def _remedy(bed: NodeBed, restart: bool) -> None:
    _, failure = fill(bed)
    assert "InvalidVSwitchId.IpNotEnough" in failure.msg
    old_enis = {e.eni_id for e in bed.node_enis()}
    new_vsw = bed.create_vswitch_with_sdk(REMEDY_CIDR)
    bed.write_conf([bed.vswitch_id, new_vsw])
    if restart:
        bed.kill_daemon(signal.SIGTERM)
        bed.start_daemon()
    attempts = iter(range(1000))

    def next_pod_starts() -> CniOutcome | None:
        outcome = bed.add_pod(f"remedy-{next(attempts)}")
        return outcome if outcome.ok else None

    first = wait_for("a new pod to start after adding a vSwitch", next_pod_starts, timeout=30,
                     every=0.5)
    second = bed.add_pod("remedy-second")
    assert second.ok, second.msg
    net = ipaddress.ip_network(REMEDY_CIDR)
    gateway = bed.cloud.get_vswitch(new_vsw).gateway
    for outcome in (first, second):
        assert outcome.ip is not None and ipaddress.ip_address(outcome.ip) in net, outcome.out
        eni = owner_eni(bed, outcome.ip)
        assert eni.vswitch_id == new_vsw and eni.eni_id not in old_enis   # type: ignore[attr-defined]
        assert eni.instance_id == bed.node                                # type: ignore[attr-defined]
    pod = next(p for p in bed.pods if p.startswith("remedy-") and p != "remedy-second")
    assert probe.ping(bed.pods[pod], gateway)


def test_remedy_new_vswitch_in_the_zone_without_daemon_restart(bed: NodeBed) -> None:
    _remedy(bed, restart=False)


def test_remedy_new_vswitch_in_the_zone_with_daemon_restart(bed: NodeBed) -> None:
    _remedy(bed, restart=True)


def test_bed_paths_are_per_node(bed: NodeBed) -> None:
    """Several nodes can share a host: socket, state and config are the bed's own."""
    assert Path(bed.socket).is_socket()
    assert bed.socket.parent == bed.workdir and bed.state_dir.parent == bed.workdir
