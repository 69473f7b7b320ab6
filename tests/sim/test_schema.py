"""Scenario schema validation: every bad input is refused with an error naming the field."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

import pytest

from simulator.scenario import parse_scenario, scenarios_dir
from simulator.units import SpecError

Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


CASES: list[tuple[str, Mutation, str]] = [
    ("missing name", lambda d: d.pop("name"), "name"),
    ("unknown top key", _set(["colour"], "red"), "colour"),
    ("bad duration", _set(["duration"], "ten minutes"), "duration"),
    ("negative duration", _set(["duration"], -5), "duration"),
    ("bad cidr", _set(["cluster", "vswitches", 0, "cidr"], "10.0.0.0/33"),
     "cluster.vswitches[0].cidr"),
    ("too big vswitch", _set(["cluster", "vswitches", 0, "cidr"], "10.0.0.0/8"),
     "cluster.vswitches[0].cidr"),
    ("no vswitches", _set(["cluster", "vswitches"], []), "cluster.vswitches"),
    ("workload kind", _set(["workload", 0, "kind"], "cronjob"), "workload[0].kind"),
    ("churn rate", _set(["workload", 0, "rate"], "fast"), "workload[0].rate"),
    ("lifetime dist", _set(["workload", 0, "lifetime"], {"dist": "zipf"}),
     "workload[0].lifetime.dist"),
    ("lifetime mean missing", _set(["workload", 0, "lifetime"], {"dist": "exp"}),
     "workload[0].lifetime.mean"),
    ("expectation syntax", _set(["expectations", 0], "pods are happy"), "expectations[0]"),
    ("expectation unknown event", _set(["expectations", 0], "pending_pods == 0 before @nope"),
     "expectations[0]"),
    ("event action", _set(["events"], [{"at": "1m", "action": "reboot"}]), "events[0].action"),
    ("event at", _set(["events"], [{"action": "add_nodes", "count": 1}]), "events[0].at"),
    ("event apply", _set(["events"], [{"at": "1m", "action": "add_vswitch", "apply": "maybe",
                                       "vswitch": {"id": "v", "cidr": "10.1.0.0/24"}}]),
     "events[0].apply"),
    ("policy kind", _set(["policy"], "calico"), "policy.kind"),
    ("policy param", _set(["policy"], {"kind": "aws", "warm_ip_target": -1}),
     "policy.warm_ip_target"),
    ("peer param unknown", _set(["peers"], [{"kind": "cilium", "warm_ip_target": 3}]),
     "peers[0].warm_ip_target"),
    ("fault rule", _set(["faults"], [{"kind": "error", "action": "*"}]), "faults[0]"),
    ("eni_conf field", _set(["eni_conf", "max_pool_size"], "lots"), "eni_conf"),
    ("latency api", _set(["latency"], {"MakeCoffee": 1}), "latency.MakeCoffee"),
    ("kubelet field", _set(["kubelet"], {"cni_timeout": "soon"}), "kubelet.cni_timeout"),
]


@pytest.mark.parametrize(("case", "mutate", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_the_field(mini: dict[str, Any], case: str, mutate: Mutation,
                                   field: str) -> None:
    mutate(mini)
    with pytest.raises(SpecError) as info:
        parse_scenario(mini)
    assert str(info.value).startswith(field), f"{case}: {info.value}"


def test_the_mini_document_is_valid(mini: dict[str, Any]) -> None:
    sc = parse_scenario(mini)
    assert sc.name == "mini" and sc.duration == 600.0


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(scenarios_dir(), "*.yaml"))))
def test_library_scenarios_validate(path: str) -> None:
    from simulator.scenario import load_scenario
    sc = load_scenario(path)
    assert sc.expectations, f"{path} has no expectations"
