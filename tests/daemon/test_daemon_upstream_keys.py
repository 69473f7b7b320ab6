"""Two upstream eni_conf keys that change what every node does (issue 10), through the real
daemon: ``resource_group_id`` on every ENI it creates (and replays), ``enable_patch_pod_ips``
writing ``k8s.aliyun.com/pod-ips`` after each ADD, off the ADD's path."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from emulator.inprocess import ModelCloud
from terway.daemon.driver import INTENT_CREATE
from terway.daemon.k8s import POD_IPS, KubeApi, RateLimited
from terway.daemon.ports import PodMeta
from terway.daemon.reconcile import _recreate
from terway.daemon.store import Intent
from tests.daemon.daemon_harness import World, run, running_daemon, until

GROUP = "rg-acfm2example7q"


def test_every_eni_the_daemon_creates_is_in_the_configured_group(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        conf = world.eni_conf(resource_group_id=GROUP, max_pool_size=20)
        async with running_daemon(tmp_path, world, conf=conf) as d:
            for i in range(12):                  # more than one ENI's 10 addresses
                await d.alloc(f"p{i}")
            assert d.daemon.config.eni_conf.warnings == ()
        enis = world.enis()
        assert len(enis) == 2
        assert {world.cloud.get_network_interface(e.eni_id).resource_group_id
                for e in enis} == {GROUP}

    run(scenario())


def test_a_replayed_creation_asks_for_the_same_group(tmp_path: Path) -> None:
    """After a crash the daemon asks again with the create's ClientToken: with another
    ResourceGroupId the cloud would answer IdempotentParameterMismatch and the ENI leak."""
    world = World.build()
    mc = ModelCloud(world.cloud, world.instance_id)
    params: dict[str, Any] = {"vswitch_id": world.vswitch_ids[0],
                              "security_group_ids": [world.sg_id], "secondary_ip_count": 1,
                              "tags": {"creator": "terway"}}
    made = mc.create_network_interface(client_token="tok-rg", resource_group_id=GROUP, **params)
    intent = Intent("tok-rg", INTENT_CREATE,
                    {**params, "client_token": "tok-rg", "resource_group_id": GROUP})
    assert _recreate(intent, mc) == made.eni_id
    assert len(world.all_secondary_enis()) == 1


# -- enable_patch_pod_ips -------------------------------------------------------------------


class FakeKube:
    """A cluster with pods: ``pod`` answers their annotations, ``patch_pod_ips`` writes them
    (as the API server would) and can be held on ``gate`` or made to fail."""

    enabled = True

    def __init__(self) -> None:
        self.annotations: dict[tuple[str, str], dict[str, str]] = {}
        self.patches: list[tuple[str, str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.patching = threading.Event()
        self.fail = False
        self.node_annotations: dict[str, str] = {}

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        return PodMeta(annotations=dict(self.annotations.get((namespace, name), {})))

    def pod_exists(self, namespace: str, name: str) -> bool | None:
        return True

    def record_event(self, *args: Any) -> None:
        return None

    def record_node_event(self, *args: Any) -> None:
        return None

    def set_node_condition(self, *args: Any) -> None:
        return None

    def annotate_node(self, key: str, value: str) -> None:
        return None

    def node_config_patch(self) -> Mapping[str, Any] | None:
        return None

    def node_annotation(self, key: str) -> str | None:
        return self.node_annotations.get(key)

    def node_pods(self) -> list[Any] | None:
        return []                                  # a node with no pods yet

    def kubeadm_service_cidr(self) -> str:
        return ""

    def patch_pod_ips(self, namespace: str, name: str, ips: str) -> None:
        self.patching.set()
        assert self.gate.wait(30)
        if self.fail:
            raise RuntimeError("apiserver says no")
        self.patches.append((namespace, name, ips))
        self.annotations.setdefault((namespace, name), {})[POD_IPS] = ips


def test_the_pod_gets_its_ip_annotation_after_add(tmp_path: Path) -> None:
    world = World.build()
    kube = FakeKube()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, kube=kube) as d:
            info = await d.alloc("web-1")
            await until(lambda: kube.patches != [], "the pod-ips patch")
            assert kube.patches == [("default", "web-1", info.pod_ip)]
            # the same sandbox again: the annotation is already right, no second patch
            again = await d.alloc("web-1")
            assert again.pod_ip == info.pod_ip and d.daemon.service.pod_ips.idle()
            assert len(kube.patches) == 1
            # a stale value (another address) is replaced
            kube.annotations[("default", "web-1")][POD_IPS] = "192.168.9.9"
            await d.alloc("web-1")
            await until(lambda: len(kube.patches) == 2, "the corrected patch")
            assert kube.patches[-1] == ("default", "web-1", info.pod_ip)

    run(scenario())


def test_the_add_never_waits_for_the_api_server(tmp_path: Path) -> None:
    """The patch is held until after the ADD answered: an ADD that waited for it would never
    answer (the client's timeout would fail the test)."""
    world = World.build()
    kube = FakeKube()
    kube.gate.clear()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, kube=kube) as d:
            client = d.client(timeout=20)
            info = await asyncio.to_thread(client.alloc_ip, d.alloc_req("slow"))
            second = await asyncio.to_thread(client.alloc_ip, d.alloc_req("slow-2"))
            await until(kube.patching.is_set, "the patch to start")
            assert kube.patches == [] and not d.daemon.service.pod_ips.idle()
            kube.gate.set()
            await until(lambda: len(kube.patches) == 2, "both patches")
            assert sorted(kube.patches) == [("default", "slow", info.pod_ip),
                                            ("default", "slow-2", second.pod_ip)]

    run(scenario())


def test_a_failed_patch_is_logged_and_the_add_succeeds(tmp_path: Path) -> None:
    world = World.build()
    kube = FakeKube()
    kube.fail = True

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, kube=kube) as d:
            info = await d.alloc("web-1")
            assert d.daemon.store.get_pod("default/web-1") is not None and info.pod_ip
            await until(lambda: any("annotating pod with its IPs failed" in ln
                                    for ln in d.log_lines()), "the failure in the log")
            assert kube.patches == []

    run(scenario())


def test_false_turns_it_off(tmp_path: Path) -> None:
    world = World.build()
    kube = FakeKube()

    async def scenario() -> None:
        conf = world.eni_conf(enable_patch_pod_ips=False)
        async with running_daemon(tmp_path, world, kube=kube, conf=conf) as d:
            assert d.daemon.config.eni_conf.warnings == ()
            await d.alloc("web-1")
            assert d.daemon.service.pod_ips.idle() and not kube.patching.is_set()
            d.write_config(world.eni_conf())        # back on (default true) at the next reload
            await until(lambda: d.daemon.config.eni_conf.enable_patch_pod_ips, "the reload")
            await d.alloc("web-2")
            await until(lambda: kube.patches != [], "the patch once turned on")
            assert [p[1] for p in kube.patches] == ["web-2"]

    run(scenario())


def test_kubeapi_patches_the_annotation_by_merge_and_through_the_rate_limit() -> None:
    from terway.cloud.ratelimit import TokenBucket

    class Core:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, Any]] = []

        def patch_namespaced_pod(self, name: str, namespace: str, body: Any) -> None:
            if name == "gone":
                raise RuntimeError("(404) Not Found")
            self.calls.append((name, namespace, body))

    core = Core()
    slept: list[float] = []
    api = object.__new__(KubeApi)
    api.core = RateLimited(core, TokenBucket(1.0, 1, now=0.0), sleep=slept.append,
                           now=lambda: 0.0)
    api.patch_pod_ips("ns1", "web-1", "192.168.0.7")
    assert core.calls == [("web-1", "ns1", {"metadata": {"annotations": {
        "k8s.aliyun.com/pod-ips": "192.168.0.7"}}})]
    api.patch_pod_ips("ns1", "gone", "192.168.0.8")      # logged, not raised
    assert slept == [1.0]                                # the second call waited for a token


# -- alibabacloud.com/instance-type-info ------------------------------------------------------


def _type_info(instance_type: str, enis: int, ips: int) -> str:
    return json.dumps({"InstanceTypeId": instance_type, "EniQuantity": enis,
                       "EniPrivateIpAddressQuantity": ips, "EniTotalQuantity": enis,
                       "InstanceTypeFamily": "ecs.g6", "EniTrunkSupported": False})


@pytest.mark.parametrize(("annotation", "expected"), [
    (_type_info("ecs.g6.xlarge", 2, 4), 4),      # this node's type: used (1 secondary x 4)
    (_type_info("ecs.g6.large", 2, 4), None),    # another type: DescribeInstanceTypes
    ("{not json", None),                         # does not parse: logged, DescribeInstanceTypes
])
def test_the_node_annotation_instance_type_info_gives_the_limits_as_upstream(
        tmp_path: Path, annotation: str, expected: int | None) -> None:
    world = World.build(instance_type="ecs.g6.xlarge")
    kube = FakeKube()
    kube.node_annotations["alibabacloud.com/instance-type-info"] = annotation

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, kube=kube) as d:
            described = ModelCloud(world.cloud, world.instance_id).describe_instance_type(
                "ecs.g6.xlarge")
            from_cloud = (described.eni_quantity - 1) * described.ips_per_eni
            assert d.daemon.capacity.capacity == (expected if expected is not None
                                                  else from_cloud)
            assert from_cloud != 4                     # the two sources really differ

    run(scenario())
