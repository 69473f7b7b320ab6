"""The action registry: every documented action registered exactly once, by its resource module;
a name registered twice refused. The model's mixins are siblings over CloudBase."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import emulator.actions as actions_pkg
from emulator.actions import REGISTRY, dispatch
from emulator.actions.registry import Action, DuplicateActionError, Registry
from emulator.model import ApiError, Cloud, codes
from emulator.model.base import CloudBase
from emulator.model.compute import ComputeOps
from emulator.model.enis import EniOps
from emulator.model.metadata import MetadataOps
from emulator.model.network import NetworkOps

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "emulator" / "actions"


def documented() -> dict[str, set[str]]:
    """The action lists of docs/emulator-model.md ("ECS (2014-05-26): …", "VPC (2016-04-28): …")."""
    text = " ".join((ROOT / "docs" / "emulator-model.md").read_text().split())
    ecs = re.search(r"ECS \(2014-05-26\): (.*?) VPC \(2016-04-28\): (.*?)\. Response", text)
    assert ecs, "docs/emulator-model.md lost its action lists"
    ecs_names = set(re.findall(r"\b[A-Z][A-Za-z]+\b", ecs.group(1))) - {"VPC"}
    vpc_names = set(re.findall(r"\b[A-Z][A-Za-z]+\b", ecs.group(2)))
    assert "the VPC actions below" in ecs.group(1)
    return {"ecs": ecs_names | vpc_names, "vpc": vpc_names}


def decorated() -> list[str]:
    """Every ``@action("Name", ...)`` in the package's modules, as written."""
    names = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name)
                            and deco.func.id == "action"):
                        first = deco.args[0]
                        assert isinstance(first, ast.Constant)
                        names.append(str(first.value))
    return names


@pytest.mark.parametrize("product", ["ecs", "vpc"])
def test_every_documented_action_is_registered(product: str) -> None:
    assert set(actions_pkg.actions(product)) == documented()[product]
    assert actions_pkg.actions(product.upper()) == actions_pkg.actions(product)


def test_every_action_is_registered_exactly_once() -> None:
    names = decorated()
    assert sorted(names) == sorted(set(names)), "an @action name written twice"
    assert set(names) == {e.name for e in REGISTRY.entries()}
    handlers = [e.handler for e in REGISTRY.entries()]
    assert len(handlers) == len(set(handlers))
    for entry in REGISTRY.entries():   # the VPC basics: one registration, both products
        assert [p for p in ("ecs", "vpc") if REGISTRY.get(p, entry.name) is entry] == sorted(
            entry.products)
        assert entry.handler.__module__.startswith("emulator.actions.")


def test_registering_a_name_twice_raises_and_changes_nothing() -> None:
    reg = Registry()

    @reg.decorator("DescribeThings", products=("ecs", "vpc"))
    def first(cloud: Cloud, p: object) -> dict[str, object]:
        return {}

    with pytest.raises(DuplicateActionError, match="DescribeThings is already registered"):
        reg.decorator("DescribeThings", products=("vpc",))(lambda cloud, p: {})
    assert reg.get("vpc", "DescribeThings") is not None
    assert reg.get("vpc", "DescribeThings").handler is first  # type: ignore[union-attr]

    # the real registry refuses too, and keeps its entry
    existing = REGISTRY.get("ecs", "CreateNetworkInterface")
    with pytest.raises(DuplicateActionError):
        REGISTRY.register(Action("CreateNetworkInterface", lambda cloud, p: {}, ("ecs",)))
    # a clash on the second product adds nothing for the first
    with pytest.raises(DuplicateActionError):
        REGISTRY.register(Action("DescribeVpcs", lambda cloud, p: {}, ("ecs",)))
    assert REGISTRY.get("ecs", "CreateNetworkInterface") is existing
    with pytest.raises(ValueError, match="unknown product"):
        reg.register(Action("X", lambda cloud, p: {}, ("ec2",)))


def test_decorator_metadata_drives_dispatch() -> None:
    regionless = {"DescribeRegions", "DescribeInstanceTypes", "DeleteInstance"}
    assert regionless == actions_pkg.REGIONLESS
    cloud = Cloud(seed=1)
    assert "Regions" in dispatch(cloud, "vpc", "DescribeRegions", {})
    with pytest.raises(ApiError) as info:
        dispatch(cloud, "ecs", "DescribeVSwitches", {"RegionId": "cn-hangzhou",
                                                     "RouteTableId": "vtb-1"})
    assert info.value.code == codes.UNSUPPORTED_PARAMETER.code
    with pytest.raises(ApiError) as info:   # a VPC-only product answers no ENI action
        dispatch(cloud, "vpc", "CreateNetworkInterface", {"RegionId": "cn-hangzhou"})
    assert info.value.code == codes.ACTION_NOT_FOUND.code


def test_model_mixins_are_siblings() -> None:
    for mixin in (NetworkOps, EniOps, ComputeOps, MetadataOps):
        assert mixin.__bases__ == (CloudBase,), mixin
    assert Cloud.__bases__ == (NetworkOps, EniOps, ComputeOps, MetadataOps)
    # what one mixin calls on another is declared on CloudBase and implemented by exactly one
    for name in ("_meta_changed", "_drop_eni"):
        assert hasattr(CloudBase, name)
        owners = [m for m in (NetworkOps, EniOps, ComputeOps, MetadataOps) if name in vars(m)]
        assert len(owners) == 1 and getattr(Cloud, name) is vars(owners[0])[name]
