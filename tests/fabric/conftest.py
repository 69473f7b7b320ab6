"""Fixtures: a small emulated VPC (a /28 vSwitch, two ecs.g6.2xlarge), served, with a fabric."""

from __future__ import annotations

import types
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.model import Cloud

ZONE = "cn-hangzhou-h"


class _NoFaults:
    """Stand-in while ``emulator.faults`` is absent: never delays, never fails."""

    def decide(self, *_args: Any) -> Any:
        return types.SimpleNamespace(latency=0.0, error=None)


def make_emulator(cloud: Cloud, seed: int) -> Any:
    from emulator.server import Emulator

    try:
        from emulator.faults import FaultEngine
        faults: Any = FaultEngine(seed)
    except ImportError:
        faults = _NoFaults()
    return Emulator(cloud, faults, seed=seed)


@dataclass
class World:
    cloud: Cloud
    vpc_id: str
    vswitch_id: str
    gateway: str
    sg_id: str
    nodes: list[str]


def build_world(seed: int, nodes: int = 2, cidr: str = "10.77.1.0/28") -> World:
    cloud = Cloud(seed=seed)
    vpc = cloud.create_vpc("10.77.0.0/16")
    vsw = cloud.create_vswitch(vpc.vpc_id, ZONE, cidr)
    sg = cloud.create_security_group(vpc.vpc_id)
    sg_id: str = sg.security_group_id
    ids = cloud.run_instances("ecs.g6.2xlarge", vsw.vswitch_id, [sg_id], nodes)
    return World(cloud, vpc.vpc_id, vsw.vswitch_id, vsw.gateway, sg_id, list(ids))


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep this test's fabric records apart from any other fabric running on the host."""
    import emulator.fabric.registry as registry

    path = tmp_path / "fabric-state"
    monkeypatch.setattr(registry, "STATE_DIR", path)
    return path


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    seed = 5100 + zlib.crc32(request.node.name.encode()) % 1000   # distinct ids per test
    return build_world(seed)


@pytest.fixture
def served(world: World) -> Iterator[Any]:
    emu = make_emulator(world.cloud, world.cloud.seed)
    handle = emu.serve(port=0)
    yield handle
    handle.stop()


@pytest.fixture
def fabric(world: World, served: Any, state_dir: Path) -> Iterator[Any]:
    from emulator import fabric as fabric_mod

    fab = fabric_mod.start(world.cloud, served.port)
    yield fab
    fab.stop()
