"""Fixtures: one emulated node (ecs.g6.2xlarge on a /28 vSwitch) on the fabric, terwayd inside it.

eni_conf: min_pool_size 2, max_pool_size 5, ip_pool_sync_period 1s (compressed timings), the
other knobs at their defaults unless a test overrides them. Each test gets a fresh cloud, node and
daemon (exhaustion is destructive); the daemon's log stays in the test's tmp dir.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from emulator.fabric.testbed import BIN, NodeBed
from tests.e2e.waiting import wait_for as wait_for

T = TypeVar("T")
REQUIRED = ("terwayd", "terway", "terway-cli")


def plugin_missing() -> str | None:
    """Why the plugin cannot be run yet (its executables or modules absent), or None."""
    try:
        for module in ("terway.cni.main", "terway.daemon.main", "terway.cli.main"):
            importlib.import_module(module)
    except ImportError as exc:
        return f"plugin not importable: {exc}"
    missing = [name for name in REQUIRED if not (BIN / name).exists()]
    return f"executables missing from {BIN}: {missing}" if missing else None


def make_bed(tmp_path: Path, name: str, vswitch_cidr: str = "10.88.1.0/28",
             **conf: object) -> NodeBed:
    """A node up on the fabric (daemon not started); distinct seed, so ids, per test."""
    why = plugin_missing()
    if why is not None:
        pytest.fail(f"single-node e2e needs the plugin: {why}")
    seed = 7000 + zlib.crc32(name.encode()) % 1000
    return NodeBed(tmp_path / "node", seed=seed, vswitch_cidr=vswitch_cidr,
                   conf=dict(conf)).up()


@pytest.fixture
def bed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeBed]:
    node = make_bed(tmp_path, request.node.name)
    try:
        node.start_daemon()
        yield node
    finally:
        print(f"terwayd log tail (shown by pytest on failure):\n{node.log_tail(60)}")
        node.down()


@pytest.fixture
def churn_bed(tmp_path: Path, request: pytest.FixtureRequest) -> NodeBed:
    """A node on a /24 vSwitch (churn never runs out of addresses), daemon started; its log tail
    is printed (shown by pytest on failure) before the node goes down. A test module may set
    ``ENI_CONF`` (a dict) to override eni_conf knobs."""
    conf = getattr(request.module, "ENI_CONF", {})
    node = make_bed(tmp_path, request.node.name, vswitch_cidr="10.88.4.0/24", **conf)
    request.addfinalizer(node.down)
    request.addfinalizer(lambda: print(f"terwayd log tail:\n{node.log_tail(80)}"))
    node.start_daemon()
    return node
