"""Migration (issue 10): a node whose pods we have no record of restarts into our daemon with an
empty state directory and gives no live address to a new pod.

Seen before: upstream Terway replaced in place, ``freed=3`` at start, and the next pods got the
addresses of pods still running. The pods here are known only from upstream's state files
(written by the real bbolt library in upstream's schema: tests/go/boltwriter), or only from the
Kubernetes API; then every source at once, to check which one wins (terway/daemon/migrate.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from terway.cloud.api import Eni
from terway.daemon.adopt import ADOPTED, ADOPTED_NAMESPACE
from terway.daemon.k8s import KubeApi
from terway.daemon.migrate import FROM_KUBE, FROM_UPSTREAM, SOURCE, Claim, claimed_records
from terway.daemon.ports import NodePod, NoopKube, PodMeta
from terway.daemon.upstream_state import state_mark
from terway.datapath import host_veth_name
from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import FakeDatapath, World, run, running_daemon, upstream_eni
from tests.daemon.upstream_files import pod_info, relation, upstream_dir


def holders(d: Any) -> dict[str, str]:
    """{ip: pod key} of every address the pool gives a pod."""
    return {r.ip: r.pod_key for r in d.daemon.core.mapping() if r.status == "Normal"}


class ClusterKube(NoopKube):
    """An API server that knows this node's pods (``pods``); GC asks it whether one exists."""

    enabled = True

    def __init__(self, pods: list[NodePod]) -> None:
        self.pods = {f"{p.namespace}/{p.name}": p for p in pods}

    def node_pods(self) -> list[NodePod] | None:
        return list(self.pods.values())

    def pod_exists(self, namespace: str, name: str) -> bool | None:
        return f"{namespace}/{name}" in self.pods

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        return PodMeta()


CONF = {"max_pool_size": 0, "min_pool_size": 0}


def test_pods_known_only_from_upstreams_state_files_keep_their_addresses(
        tmp_path: Path) -> None:
    world = World.build()
    eni_id, mac, ips = upstream_eni(world, 4)
    netns = tmp_path / "netns-up"
    netns.mkdir()
    (netns / "cni-0").touch()
    (netns / "cni-2").touch()
    up = upstream_dir(tmp_path / "upstream", {
        "default/web-0": relation("default", "web-0", ips[0], mac=mac, eni_id=eni_id,
                                  container_id="cid-up-0", netns=str(netns / "cni-0")),
        "default/web-1": relation("default", "web-1", ips[1], mac=mac, legacy=True),
        "default/web-2": relation("default", "web-2", ips[2], mac=mac, eni_id=eni_id,
                                  container_id="cid-up-2", netns=str(netns / "cni-2")),
        "default/far": relation("default", "far", "10.99.0.7", mac="00:16:3e:99:99:99"),
    }, pods={"default/sticky-3": pod_info("default", "sticky-3", ips[3])})
    running = {ips[0]: "default/web-0", ips[1]: "default/web-1", ips[2]: "default/web-2",
               ips[3]: "default/sticky-3"}
    dp = FakeDatapath()
    dp.foreign = {ips[1]: host_veth_name("default", "web-1")}   # the legacy pod's route
    given: set[str] = set()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(**CONF), datapath=dp,
                                  upstream_state_dir=str(up)) as d:
            assert {ip: holders(d).get(ip) for ip in running} == running
            rec = d.daemon.store.get_pod("default/web-0")
            assert rec is not None and rec.extra[ADOPTED] and rec.extra[SOURCE] == FROM_UPSTREAM
            assert (rec.container_id, rec.netns) == ("cid-up-0", str(netns / "cni-0"))
            assert d.daemon.store.get_pod(f"{ADOPTED_NAMESPACE}/"
                                          f"{host_veth_name('default', 'web-1')}") is None
            assert "10.99.0.7" not in holders(d)                  # not ours: left alone
            given.update([(await d.alloc(f"new-{i}")).pod_ip for i in range(4)])
            assert given.isdisjoint(running), "a running pod's address was handed out again"

        # a second restart, on the records the first one wrote: nothing changes hands
        async with running_daemon(tmp_path, world, datapath=dp,
                                  upstream_state_dir=str(up)) as d:
            assert {ip: holders(d).get(ip) for ip in running} == running
            assert not (await d.release("web-0", container_id="cid-old")).released   # stale
            assert holders(d).get(ips[0]) == "default/web-0"
            assert (await d.release("web-0", container_id="cid-up-0")).released
            assert [n.pod_key for n in dp.teardowns if n.net.pod_ip == ips[0]] == ["default/web-0"]
            assert (await d.release("web-1", container_id="any-sandbox")).released
            assert ips[0] not in holders(d) and ips[1] not in holders(d)

            dp.foreign = {ips[3]: host_veth_name("default", "sticky-3")}
            assert await d.daemon.gc() == []        # web-2's netns and sticky-3's route live
            (netns / "cni-2").unlink()
            dp.foreign = {}
            assert sorted(await d.daemon.gc()) == ["default/sticky-3", "default/web-2"]
            assert set(holders(d)) == given

        # upstream's files are never updated once it is gone: read once, so a pod released
        # since does not get its address back at the next start
        async with running_daemon(tmp_path, world, datapath=dp,
                                  upstream_state_dir=str(up)) as d:
            assert set(holders(d)) == given
            assert any("already read at an earlier start" in ln for ln in d.log_lines())

    run(scenario())


def test_pods_known_only_from_the_kubernetes_api_keep_their_addresses(tmp_path: Path) -> None:
    world = World.build()
    _, _, ips = upstream_eni(world, 4)
    kube = ClusterKube([NodePod("default", "web-0", (ips[0],)),
                        NodePod("shop", "cart-1", (ips[1], "fd00::5")),
                        NodePod("default", "pending", ()),
                        NodePod("other", "elsewhere", ("10.99.0.5",))])
    running = {ips[0]: "default/web-0", ips[1]: "shop/cart-1"}

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(**CONF),
                                  kube=kube) as d:
            assert {ip: holders(d).get(ip) for ip in running} == running
            assert {r.key: r.extra[SOURCE] for r in d.daemon.store.pods()} == {
                "default/web-0": FROM_KUBE, "shop/cart-1": FROM_KUBE}
            for i in range(4):
                new = await d.alloc(f"new-{i}")
                kube.pods[f"default/new-{i}"] = NodePod("default", f"new-{i}", (new.pod_ip,))
                assert new.pod_ip not in running, "a running pod's address went to a new pod"
            # the runtime's CNI GC cannot name a sandbox we never knew: it frees none of them
            valid = tuple(rpc.Attachment(f"cid-new-{i}", "eth0") for i in range(4))
            assert (await d.daemon.service.gc(rpc.GCRequest(valid))).released == ()
            assert {ip: holders(d).get(ip) for ip in running} == running

            assert (await d.release("web-0", container_id="whatever-sandbox")).released
            assert ips[0] not in holders(d)
            assert await d.daemon.gc() == []                  # cart-1 still exists
            del kube.pods["shop/cart-1"]
            assert await d.daemon.gc() == ["shop/cart-1"]
            assert ips[1] not in holders(d)

    run(scenario())


def test_sources_combine_records_first_then_upstream_then_the_api_then_routes(
        tmp_path: Path) -> None:
    world = World.build()
    _, mac, ips = upstream_eni(world, 6)
    dp = FakeDatapath()

    async def first_run() -> str:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(max_pool_size=10),
                                  datapath=dp) as d:    # keeps the idle addresses
            return (await d.alloc("ours-0")).pod_ip

    ours = run(first_run())
    a, b, c, d_, e = [ip for ip in ips if ip != ours][:5]
    up = upstream_dir(tmp_path / "upstream", {
        "default/up-a": relation("default", "up-a", ours, mac=mac),   # our record wins
        "default/up-b": relation("default", "up-b", b, mac=mac),
    })
    kube = ClusterKube([NodePod("default", "ours-0", (ours,)),
                        NodePod("default", "k-b", (b,)),               # upstream's file wins
                        NodePod("default", "k-c", (c,)),
                        NodePod("default", "up-b", (d_,))])            # up-b holds b already
    dp.foreign = {c: host_veth_name("default", "k-c"),                 # the API named it
                  e: host_veth_name("default", "r-e")}                 # only its route knows
    want = {ours: "default/ours-0", b: "default/up-b", c: "default/k-c",
            e: f"{ADOPTED_NAMESPACE}/{host_veth_name('default', 'r-e')}"}

    async def second_run() -> None:
        async with running_daemon(tmp_path, world, datapath=dp, kube=kube,
                                  upstream_state_dir=str(up)) as d:
            assert holders(d) == want
            lines = "\n".join(d.log_lines())
            assert f"{b} (kubernetes: default/k-b) is held by default/up-b" in lines
            assert f"{d_} (kubernetes): default/up-b already holds another address" in lines
            assert a not in holders(d) and d_ not in holders(d)

    run(second_run())


def test_a_corrupt_upstream_file_is_logged_and_the_other_sources_still_apply(
        tmp_path: Path) -> None:
    world = World.build()
    _, _, ips = upstream_eni(world, 3)
    up = upstream_dir(tmp_path / "upstream", {}, pods={
        "default/sticky-0": pod_info("default", "sticky-0", ips[0])})
    (up / "ResRelation.db").write_bytes(b"upstream crashed mid-write" * 200)
    kube = ClusterKube([NodePod("default", "web-1", (ips[1],))])

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(**CONF), kube=kube,
                                  upstream_state_dir=str(up)) as d:
            assert {ip: holders(d).get(ip) for ip in ips[:2]} == {
                ips[0]: "default/sticky-0", ips[1]: "default/web-1"}
            errors = [ln for ln in d.log_lines() if "level=error" in ln]
            assert any(str(up / "ResRelation.db") in ln and "bbolt" in ln for ln in errors), \
                errors
            assert d.daemon.service.ready

    run(scenario())


def test_upstream_files_are_read_again_only_when_they_change(tmp_path: Path) -> None:
    assert state_mark(str(tmp_path)) == ""                       # none: nothing to read
    (tmp_path / "pod.db").write_bytes(b"x" * 10)
    first = state_mark(str(tmp_path))
    assert first.startswith("pod.db:10:")
    os.utime(tmp_path / "pod.db", ns=(1, 1))
    assert state_mark(str(tmp_path)) not in ("", first)


def test_claims_one_address_one_holder_one_pod_one_address() -> None:
    eni = Eni(eni_id="eni-1", mac="00:16:3E:00:00:01", vswitch_id="vsw-1", zone_id="z",
              status="InUse",
              primary_ip="10.0.0.2", private_ips=("10.0.0.2", "10.0.0.3", "10.0.0.4",
                                                  "10.0.0.5"), eni_type="Secondary")
    claims = [Claim("a", "p1", "10.0.0.3", FROM_UPSTREAM, "cid", "/ns", "00:16:3e:00:00:01"),
              Claim("a", "p2", "10.0.0.3", FROM_KUBE),        # address taken
              Claim("a", "p1", "10.0.0.4", FROM_KUBE),        # pod has one
              Claim("a", "p3", "10.0.0.9", FROM_KUBE),        # not on our ENI
              Claim("a", "p4", "10.0.0.5", FROM_KUBE),        # our record has it
              Claim("a", "p5", "10.0.0.2", FROM_KUBE)]        # the primary: in the pool too
    got = claimed_records([eni], {"10.0.0.5": "a/ours"}, claims, exclusive=False,
                          datapath="veth")
    assert [(r.key, r.resources[0].ip) for r in got.records] == [("a/p1", "10.0.0.3"),
                                                                  ("a/p5", "10.0.0.2")]
    first = got.records[0]
    assert (first.container_id, first.netns, first.resources[0].eni_id) == ("cid", "/ns",
                                                                             "eni-1")
    assert first.extra["host_ifname"] == host_veth_name("a", "p1")
    assert len(got.dropped) == 3
    exclusive = claimed_records([eni], {}, claims, exclusive=True, datapath="exclusive")
    assert [(r.key, r.ip_type) for r in exclusive.records] == [("a/p5", "eni")]


def test_kube_api_lists_this_nodes_pods_as_upstream() -> None:
    from kubernetes import client as c

    class Core:
        def __init__(self) -> None:
            self.asked: list[dict[str, Any]] = []

        def list_pod_for_all_namespaces(self, **kw: Any) -> Any:
            self.asked.append(kw)
            return c.V1PodList(items=[
                c.V1Pod(metadata=c.V1ObjectMeta(namespace="default", name="web-0"),
                        spec=c.V1PodSpec(containers=[]),
                        status=c.V1PodStatus(pod_ip="10.0.0.3",
                                             pod_ips=[c.V1PodIP(ip="10.0.0.3")])),
                c.V1Pod(metadata=c.V1ObjectMeta(namespace="kube-system", name="proxy"),
                        spec=c.V1PodSpec(containers=[], host_network=True),
                        status=c.V1PodStatus(pod_ip="192.168.200.1")),
                c.V1Pod(metadata=c.V1ObjectMeta(namespace="default", name="new"),
                        spec=c.V1PodSpec(containers=[]), status=c.V1PodStatus()),
            ])

    api = object.__new__(KubeApi)
    api.core, api.node_name = Core(), "node-1"
    assert api.node_pods() == [NodePod("default", "web-0", ("10.0.0.3",)),
                               NodePod("default", "new", ())]
    assert api.core.asked == [{
        "field_selector": "spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed",
        "resource_version": "0"}]

    class Broken:
        def list_pod_for_all_namespaces(self, **kw: Any) -> Any:
            raise RuntimeError("(403) Forbidden")

    api.core = Broken()
    assert api.node_pods() is None                       # logged: the start goes on
