"""One registry of pool policies (terway/ipam/policies.py): eni_conf, the core, the simulator's
peers and docs/config.md all read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.policies import KINDS, policy_problems, runtime_for
from terway.cloud.api import InstanceTypeLimits
from terway.config import ConfigError, parse_eni_conf
from terway.ipam import IpamSettings, NodeIdentity, make_policy
from terway.ipam.policies import POLICIES
from terway.limits import compute_capacity

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def _settings(policy: str, params: dict[str, int]) -> IpamSettings:
    conf = parse_eni_conf({"version": "1", "pool_policy": policy, "pool_policy_params": params,
                           "max_pool_size": 5, "min_pool_size": 1})
    limits = InstanceTypeLimits("ecs.g6.xlarge", 3, 10)
    return IpamSettings.from_config(conf, compute_capacity(limits, conf), NodeIdentity("i-1", "z"))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_builds_with_its_defaults(name: str) -> None:
    policy = make_policy(_settings(name, {}))
    for param in POLICIES[name].params:
        if param.default is not None and hasattr(policy, param.name):
            assert getattr(policy, param.name) == param.default


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_eni_conf_takes_exactly_the_registry_parameters(name: str) -> None:
    params = {p: 1 for p in POLICIES[name].param_names}
    assert parse_eni_conf({"pool_policy": name, "pool_policy_params": params})
    with pytest.raises(ConfigError, match=r"pool_policy_params\.bogus: not a parameter"):
        parse_eni_conf({"pool_policy": name, "pool_policy_params": {"bogus": 1}})


def test_a_misspelt_policy_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        parse_eni_conf({"pool_policy": "adaptiv"})
    assert info.value.problems == ("eni_conf.pool_policy: must be one of terway, adaptive, "
                                   "aws, cilium, got 'adaptiv' (did you mean 'adaptive'?)",)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_simulator_peers_are_the_registry_policies(name: str) -> None:
    assert name in KINDS
    params = {p: 1 for p in POLICIES[name].param_names}
    assert policy_problems(name, params, "policy") == []
    conf = runtime_for(name, params).conf_patch
    assert parse_eni_conf({"version": "1", **conf})


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_docs_name_every_policy_and_parameter(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"`{name}`" in text
    for param in POLICIES[name].params:
        assert f"`{param.name}`" in text
