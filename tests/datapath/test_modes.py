"""The datapath mode registry (terway/datapath/modes.py): one entry per mode, each naming a module
that wires it, and the rules callers read instead of comparing names (no root needed)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from terway import datapath
from terway.datapath import modes
from terway.datapath.types import DatapathError, PodNetwork, PodSpec

ROOT = str(Path(__file__).resolve().parents[2])


def test_every_mode_is_registered_once_under_upstreams_name() -> None:
    assert modes.NAMES == ("veth", "ipvlan", "exclusive")
    assert [m.name for m in modes.REGISTRY.values()] == list(modes.NAMES)
    assert len({m.module for m in modes.REGISTRY.values()}) == len(modes.NAMES)
    assert datapath.MODES == modes.NAMES
    assert (datapath.VETH, datapath.IPVLAN, datapath.EXCLUSIVE) == modes.NAMES


def test_registering_a_mode_twice_is_refused() -> None:
    veth = modes.REGISTRY[modes.VETH]
    with pytest.raises(ValueError, match="'veth' registered twice"):
        modes._table(veth, modes.REGISTRY[modes.IPVLAN], veth)


@pytest.mark.parametrize("name", modes.NAMES)
def test_each_modes_module_sets_up_tears_down_and_checks(name: str) -> None:
    impl = importlib.import_module(f"terway.datapath.{modes.get(name).module}")
    assert all(callable(getattr(impl, f, None)) for f in ("setup", "teardown", "check"))


def test_an_unknown_mode_names_the_known_ones() -> None:
    with pytest.raises(modes.UnknownMode) as err:
        modes.get("datapathv2")
    assert str(err.value) == "unknown datapath mode 'datapathv2' (known: veth, ipvlan, exclusive)"
    assert isinstance(err.value, ValueError)


def test_the_datapath_refuses_an_unknown_mode_before_touching_anything() -> None:
    pod, net = PodSpec("default", "web", "/nonexistent"), PodNetwork("10.0.0.2", "10.0.0.1", "")
    with pytest.raises(DatapathError, match=r"known: veth, ipvlan, exclusive"):
        datapath.setup_pod("macvlan", pod, net)


def test_the_rules_of_each_mode() -> None:
    veth, ipvlan, excl = (modes.get(n) for n in modes.NAMES)
    assert [m.pod_prefix_len(24) for m in (veth, ipvlan, excl)] == [32, 24, 32]
    assert [m.pod_gateway("10.0.0.253") for m in (veth, ipvlan, excl)] == \
        ["169.254.1.1", "10.0.0.253", "10.0.0.253"]
    assert [m.host_veth for m in (veth, ipvlan, excl)] == [True, False, False]
    assert [m.whole_eni for m in (veth, ipvlan, excl)] == [False, False, True]


@pytest.mark.parametrize(("exclusive", "virtual_type", "mode"), [
    (False, "Veth", "veth"), (False, "IPVlan", "ipvlan"), (False, "ipvlan", "ipvlan"),
    (False, None, "veth"), (False, "datapathv2", "veth"), (True, "IPVlan", "exclusive"),
])
def test_the_mode_a_config_selects(exclusive: bool, virtual_type: object, mode: str) -> None:
    assert modes.from_config(exclusive, virtual_type).name == mode


def test_a_mode_is_read_only() -> None:
    with pytest.raises(AttributeError, match="read-only"):
        modes.REGISTRY[modes.VETH].host_veth = False


def test_importing_the_registry_loads_nothing_else() -> None:
    """The CNI plugin imports it on every ADD (terway/cni/launcher.py HOT_MODULES)."""
    code = ("import sys; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); "
            "import terway.datapath.modes; print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, ROOT], capture_output=True,
                         text=True, check=True).stdout.split()
    # __future__: every module of the package imports it (``annotations``), the plugin's too
    assert out == ["__future__", "terway", "terway.datapath", "terway.datapath.modes"]
