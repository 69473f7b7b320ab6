"""Shared helpers: small scenario documents built in code, so each test states what it needs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from simulator.scenario import resolve_scenario_path

MINI: dict[str, Any] = {
    "name": "mini",
    "seed": 3,
    "duration": "10m",
    "sample_interval": "10s",
    "cluster": {"zone": "cn-hangzhou-k", "nodes": 2, "instance_type": "ecs.g6.xlarge",
                "vswitches": [{"id": "vsw-a", "cidr": "10.0.0.0/24"}]},
    "eni_conf": {"min_pool_size": 1, "max_pool_size": 4,
                 "vswitches": {"cn-hangzhou-k": ["vsw-a"]}},
    "workload": [{"kind": "churn", "name": "c", "rate": "6/min",
                  "lifetime": {"dist": "exp", "mean": "2m"}}],
    "expectations": ["invariant_violations == 0"],
}


@pytest.fixture
def mini() -> dict[str, Any]:
    return copy.deepcopy(MINI)


def load_doc(name: str) -> dict[str, Any]:
    with open(resolve_scenario_path(name), encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data
