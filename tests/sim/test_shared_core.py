"""The proof that the core is shared: the simulator's driver and a minimal asyncio driver run
the same scenario and the cloud sees the same calls, in the same order, with the same arguments."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from emulator.sim.engine import Run
from emulator.sim.scenario import parse_scenario
from terway.ipam import IpamCore
from tests.sim.asyncio_driver import AsyncNode, VirtualLoop

PODS = [(f"default/p-{i}", 5.0 + 7.0 * i, 40.0 + 13.0 * (i % 5)) for i in range(24)]


def _doc() -> dict[str, Any]:
    return {
        "name": "shared-core", "seed": 5, "duration": "10m",
        "cluster": {"zone": "cn-hangzhou-k", "nodes": 1, "instance_type": "ecs.g6.xlarge",
                    "vswitches": [{"id": "vsw-a", "cidr": "10.0.0.0/26"}],
                    "attach_delay": 1.5, "detach_delay": 1.5},
        "eni_conf": {"min_pool_size": 2, "max_pool_size": 4, "ip_pool_sync_period": "30s",
                     "vswitches": {"cn-hangzhou-k": ["vsw-a"]}},
        "latency": {"default": 0.2},
        "kubelet": {"setup_time": 0.05},
        "expectations": ["invariant_violations == 0"],
    }


class Recorder:
    """Every CloudAPI call, in order, with its arguments."""

    def __init__(self, inner: Any, log: list[tuple[Any, ...]]) -> None:
        self.inner, self.log = inner, log

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.log.append((name, args, tuple(sorted((k, repr(v)) for k, v in kwargs.items()))))
            return fn(*args, **kwargs)
        return call


def _simulated() -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    run = Run(parse_scenario(_doc()), eager_tick=True)
    run.cloud = Recorder(run.cloud, calls)
    env = run.env
    run.add_nodes(1)
    for key, at, life in PODS:
        env.timeout(at).callbacks.append(
            lambda _e, k=key, life=life: run.cluster.create(k, lifetime=life))
    env.run(until=run.scenario.duration)
    return calls


def _asyncio() -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    run = Run(parse_scenario(_doc()))            # only for the same world and settings
    loop = VirtualLoop()
    run.model._clock = loop.time
    iid = run.model.run_instances(run.scenario.instance_type, run.node_vsw, [run.sg_id], 1)[0]
    settings, _ = run._settings(iid, run.scenario.instance_type)
    core = IpamCore(settings, id_prefix="node-0001-g1", rng=random.Random("5:node-0001:1"))
    node = AsyncNode(loop, core, Recorder(run.cloud, calls), latency=0.2, setup=0.05)

    async def main() -> None:
        node.pump()
        tasks = []
        for key, at, life in PODS:
            await asyncio.sleep(at - loop.time())
            tasks.append(loop.create_task(node.pod(key, life)))
        await asyncio.sleep(600 - loop.time())
        for t in tasks:
            t.cancel()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return calls


def test_both_drivers_make_the_same_cloud_calls() -> None:
    # describe_instance_type is world building (node capacity), not the driver: left out
    sim = [c for c in _simulated() if c[0] != "describe_instance_type"]
    aio = _asyncio()
    kinds = {c[0] for c in sim}
    assert {"create_network_interface", "attach_network_interface",
            "unassign_private_ips"} <= kinds, "the scenario grows and shrinks the pool"
    assert len(sim) > 10
    assert sim == aio
