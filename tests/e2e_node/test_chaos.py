"""Chaos: seeded ADD/DEL churn against a real terwayd on a fabric node while the cloud fails ~5% of
mutating calls (ServiceUnavailable/InternalError), throttles some (Throttling), and terwayd is
``kill -9``-ed at seeded random moments.

Checked against the three places state lives:

- kernel (the node's host namespace): after every operation, once no DEL is outstanding, exactly
  the live pods' host veths (``cali`` + sha1 of namespace.name), ``/32`` routes to them and
  ``ip rule``s (512 ``to ip lookup main``, 2048 ``from ip lookup <ENI's table>``) exist, and none
  at all once every pod is deleted;
- store (the daemon's mapping after a final ``kill -9`` and restart): exactly the live pods, with
  the addresses ADD gave them, no address twice;
- cloud: every live pod's address on one of the node's ENIs; once the pods are gone and the pool
  settles, at most ``max_pool_size`` secondary IPs and no loose ENI.

The storm (faults and kills) runs during the churn only; the final checks run against the state
it left. The seed fixes the schedule of operations, kills and fault draws, but not their timing
against the daemon's background work, so two runs can differ in detail.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.fabric.netns import ip
from emulator.fabric.testbed import NodeBed
from terway.datapath.naming import (
    HOST_VETH_PREFIX,
    PRIO_FROM_POD,
    PRIO_TO_POD,
    eni_table,
    host_veth_name,
)
from tests.e2e_node.churn import Churn, held_twice, live_pod_problems, wait_pool_settled

pytestmark = [pytest.mark.privileged, pytest.mark.e2e, pytest.mark.slow]

SEED = int(os.environ.get("TERWAY_CHAOS_SEED", "20240909"))   # CI: the fixed one
OPS = 300
KILL_P = 0.05           # share of operations with a kill -9 in their first KILL_WINDOW seconds
KILL_WINDOW = 0.02      # a warm ADD takes ~15 ms, a DEL ~8 ms (and its unwiring follows)
MAX_LIVE = 14           # beyond one ENI's addresses: ENIs come and go too
ENI_CONF = {"min_pool_size": 0, "max_pool_size": 2}   # a small pool: ADD/DEL move it
MAX_POOL = 2
FAULT_P = 0.05          # per mutating call, split between the two error codes
MUTATING = ("AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "CreateNetworkInterface",
            "AttachNetworkInterface", "DetachNetworkInterface", "DeleteNetworkInterface")
THROTTLED = ("DescribeNetworkInterfaces",)   # (on Assign it would only add ADD stalls)


def fault_rules() -> list[dict[str, Any]]:
    """Retryable errors on mutating calls, Throttling on some, flow control on Unassign (its
    calls come in bursts when the pool shrinks)."""
    rules: list[dict[str, Any]] = []
    for action in MUTATING:
        for code in ("ServiceUnavailable", "InternalError"):
            rules.append({"kind": "error", "action": action, "code": code,
                          "probability": FAULT_P / 2})
    for action in THROTTLED:
        rules.append({"kind": "error", "action": action, "code": "Throttling",
                      "message": "Request was denied due to request throttling.",
                      "probability": 0.05})
    rules.append({"kind": "throttle", "action": "UnassignPrivateIpAddresses", "rate": 0.2,
                  "burst": 2})
    return rules


class FaultTally:
    """Counts the calls the emulator's fault engine saw and the errors it answered, per action:
    wraps the in-process engine's ``decide`` (every API call of the daemon goes through it)."""

    def __init__(self, engine: Any) -> None:
        self._decide = engine.decide
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        engine.decide = self.decide

    def decide(self, action: str, params: Mapping[str, str], now: float,
               product: str = "") -> Any:
        decision = self._decide(action, params, now, product)
        with self._lock:
            self.calls[action] += 1
            if decision.error is not None:
                self.errors[f"{action}:{decision.error.code}"] += 1
        return decision

    @property
    def injected(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class HostState:
    """What the datapath leaves in the node's namespace per pod, as sets of comparable tuples."""

    veths: frozenset[str]
    routes: frozenset[tuple[str, str, str]]        # (pod address, dev, table) host routes
    to_rules: frozenset[tuple[str, str]]           # (address, table) at priority 512
    from_rules: frozenset[tuple[str, str]]         # (address, table) at priority 2048

    def entries(self) -> set[str]:
        return ({f"veth {v}" for v in self.veths}
                | {f"route {a}/32 dev {d} table {t}" for a, d, t in self.routes}
                | {f"rule {PRIO_TO_POD}: to {a} lookup {t}" for a, t in self.to_rules}
                | {f"rule {PRIO_FROM_POD}: from {a} lookup {t}" for a, t in self.from_rules})


def host_state(bed: NodeBed) -> HostState:
    """The node namespace's pod veths, host routes (any table, any ``cali`` device) and rules."""
    links = json.loads(ip("-j", "link", "show", ns=bed.node))
    veths = frozenset(x["ifname"] for x in links if x["ifname"].startswith(HOST_VETH_PREFIX))
    routes = set()
    for r in json.loads(ip("-j", "-4", "route", "show", "table", "all", ns=bed.node)):
        dst, dev = str(r.get("dst", "")), str(r.get("dev", ""))
        host_route = r.get("type", "unicast") == "unicast" and (
            "/" not in dst or dst.endswith("/32")) and dst != "default"
        if host_route or dev.startswith(HOST_VETH_PREFIX):
            routes.add((dst.removesuffix("/32"), dev, str(r.get("table", "main"))))
    to_rules, from_rules = set(), set()
    for rule in json.loads(ip("-j", "-4", "rule", "show", ns=bed.node)):
        if rule.get("priority") == PRIO_TO_POD:
            to_rules.add((str(rule.get("dst")), str(rule.get("table"))))
        elif rule.get("priority") == PRIO_FROM_POD:
            from_rules.add((str(rule.get("src")), str(rule.get("table"))))
    return HostState(veths, frozenset(routes), frozenset(to_rules), frozenset(from_rules))


def expected_state(bed: NodeBed, live: dict[str, str]) -> HostState:
    """What the live pods need: their veths, routes and rules, the 2048 rule using the table of
    the ENI the cloud has their address on (1000 + that ENI's ifindex in the node)."""
    index_by_mac = {x["address"]: x["ifindex"]
                    for x in json.loads(ip("-j", "link", "show", ns=bed.node))}
    table_of = {a: str(eni_table(index_by_mac[e.mac])) for e in bed.node_enis()
                if e.mac in index_by_mac for a in e.private_ips}
    veth = {pod: host_veth_name("default", pod) for pod in live}
    return HostState(
        frozenset(veth.values()),
        frozenset((a, veth[p], "main") for p, a in live.items()),
        frozenset((a, "main") for a in live.values()),
        frozenset((a, table_of.get(a, "<address on no attached ENI>")) for a in live.values()))


@dataclass
class KernelAudit:
    """Compares the kernel with the runtime's view after each operation; remembers each wrong
    entry once, with the operation after which it was first seen and whether it went away.

    terwayd answers DEL once the release is durable and unwires right after (terway/daemon/
    service.py); until then its mapping still shows the gone pod. So an extra entry is waited
    for while the daemon holds its address (or veth) for a pod that is gone, and recorded at once
    when it holds nothing for it (nobody will clean it up). ``hang_guard`` only bounds the wait;
    entries already recorded are not waited for again (one leak must not slow every step).
    """

    bed: NodeBed
    grace: float = 1.0          # kernel-only polling before the daemon is asked
    hang_guard: float = 30.0
    stale: dict[str, str] = field(default_factory=dict)     # entry → first sighting
    missing: dict[str, str] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)      # stale entry → when it disappeared
    while_down: dict[str, str] = field(default_factory=dict)   # extra while terwayd was dead

    def check(self, live: dict[str, str], outstanding: set[str], when: str) -> None:
        """Missing entries always count. Stale ones count when no DEL is outstanding (a pod
        whose DEL failed keeps its wiring until the retried DEL succeeds) and terwayd runs: a
        kill right after DEL answered leaves the unwiring to the next start, which is checked
        at the next step; what is extra while it is dead is only noted (``while_down``)."""
        judge = not outstanding and self.bed.daemon_alive()
        start = time.monotonic()
        while True:
            missing, extra = self._diff(live)
            new = (missing - self.missing.keys()) | (extra - self.stale.keys() if judge else set())
            waited = time.monotonic() - start
            if not new or waited > self.hang_guard or (
                    waited > self.grace and not self._held_for_gone(new, live)):
                break
            time.sleep(0.02)
        for entry in sorted(missing):
            self.missing.setdefault(entry, when)
        if not judge:
            if not outstanding:
                for entry in sorted(extra):
                    self.while_down.setdefault(entry, when)
            return
        fresh = sorted(extra - self.stale.keys())
        held = self._held_for_gone(set(fresh), live) if fresh else {}
        for entry in fresh:
            view = held.get(entry, "the daemon maps nothing to it")
            self.stale[entry] = f"{when}; {view}"
        for entry in self.stale.keys() - extra - self.gone.keys():
            self.gone[entry] = when

    def _diff(self, live: dict[str, str]) -> tuple[set[str], set[str]]:
        """(entries the live pods need but lack, entries no live pod accounts for)."""
        have, want = host_state(self.bed).entries(), expected_state(self.bed, live).entries()
        return want - have, have - want

    def _held_for_gone(self, entries: set[str], live: dict[str, str]) -> dict[str, str]:
        """The entries whose address or veth the daemon's mapping still gives a pod the runtime
        no longer has (a release under way), each with that mapping row."""
        rows = [r for r in self.bed.mapping()
                if r.status == "Normal" and r.pod.rsplit("/", 1)[-1] not in live]
        out = {}
        for r in rows:
            namespace, _, name = r.pod.rpartition("/")
            keys = {r.ip, f"{r.ip}/32", host_veth_name(namespace or "default", name)}
            for entry in entries:
                if keys & set(entry.split()):
                    out[entry] = f"the daemon still maps {r.ip} to {r.pod} ({r.status})"
        return out

    def noted(self) -> list[str]:
        return [f"extra while terwayd was dead: {e} (after {w})"
                for e, w in self.while_down.items()]

    def report(self) -> list[str]:
        lines = [f"stale {e} (first after {w}; {self._fate(e)})" for e, w in self.stale.items()]
        lines += [f"missing {e} (first after {w})" for e, w in self.missing.items()]
        return lines

    def _fate(self, entry: str) -> str:
        return f"gone after {self.gone[entry]}" if entry in self.gone else "never went away"


def summary(churn: Churn, tally: FaultTally, duplicates: int, stale: int) -> str:
    return (f"chaos: ops={churn.steps} kills={churn.kills} restarts={churn.restarts} "
            f"api_faults={tally.injected} add_failures={churn.add_failures} "
            f"del_failures={churn.del_failures} duplicates={duplicates} stale={stale}")


def test_chaos_churn_with_cloud_faults_and_kill_9_leaves_consistent_state(
        churn_bed: NodeBed, capsys: pytest.CaptureFixture[str]) -> None:
    bed = churn_bed
    tally = FaultTally(bed.emulator.faults)
    bed.emulator.faults.reseed(SEED)
    for rule in fault_rules():
        bed.emulator.add_fault(rule)
    audit = KernelAudit(bed)

    churn = Churn(bed, random.Random(SEED), kill_p=KILL_P, max_live=MAX_LIVE,
                  kill_window=KILL_WINDOW, waves=True,
                  after_op=lambda what: audit.check(churn.live, churn.to_delete, what))
    store: list[str] = []
    twice: list[str] = []
    try:
        for _ in range(OPS):
            churn.step()
        bed.emulator.clear_faults()      # the storm is over; what it left must reconcile
        bed.kill_daemon()
        bed.start_daemon()
        churn.restarts += 1
        churn.retry_deletes()
        assert not churn.to_delete, f"DEL keeps failing for {sorted(churn.to_delete)}"
        twice += held_twice(bed, churn.live)
        store += live_pod_problems(bed, churn.live)
        audit.check(churn.live, churn.to_delete, f"the final restart ({len(churn.live)} live)")

        for pod in sorted(churn.live):
            outcome = bed.del_pod(pod)
            assert outcome.ok, f"DEL {pod} after the storm: rc={outcome.rc} {outcome.msg}"
        churn.live.clear()
        audit.check(churn.live, churn.to_delete, "deleting every pod")
        store += [f"after deleting every pod the daemon still maps {r.pod} {r.ip}"
                  for r in bed.mapping() if r.status == "Normal"]
        ips, loose = wait_pool_settled(bed, MAX_POOL)
        print(f"settled: {ips} secondary IPs, {loose} loose ENIs; API calls "
              f"{dict(sorted(tally.calls.items()))}; faults {dict(sorted(tally.errors.items()))}"
              f"; failures {dict(churn.errors.most_common())}")
        print("\n".join(audit.noted()))
    finally:
        dups = len(churn.duplicates) + len(twice)
        with capsys.disabled():  # the figures show in nox -s tests output, past the capture
            print("\n" + summary(churn, tally, dups, len(audit.stale)))
    assert tally.injected > 0 and churn.kills > 0, "the seeded storm injected nothing"
    problems = churn.duplicates + twice + store + audit.report()
    assert not problems, "\n".join(problems)
