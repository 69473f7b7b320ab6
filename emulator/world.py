"""World files: a YAML description of a cloud (VPCs, vSwitches, security groups, instances,
faults, seed) built through the model's own typed methods, as the SDK would build it.

Everything is validated before anything is built; a ``WorldError`` lists every problem, each
naming its path (``vpcs[0].vswitches[1].cidr: 10.0.0.0/33 is not a CIDR``), unknown keys with a
"did you mean" (emulator/problems.py), and leaves the target untouched.
Schema: docs/emulator-model.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.faults import FaultEngine, FaultRuleError, build_rule
from emulator.model import CATALOG, ApiError, Cloud
from emulator.model.regions import REGIONS
from emulator.problems import InputError, Problems, did_you_mean, join

_TOP = {"seed", "region", "cloud", "vpcs", "instances", "faults"}
_CLOUD_OPTS = {"attach_delay", "detach_delay", "metadata_lag", "unattached_ip_limit"}


class WorldError(InputError):
    """A world file that cannot be built; ``problems`` lists every ``"path: why"`` found and
    ``path`` names the first."""

    @property
    def path(self) -> str:
        return self.field


@dataclass
class BuiltWorld:
    cloud: Cloud
    faults: FaultEngine
    vpcs: dict[str, str] = field(default_factory=dict)              # name → vpc id
    vswitches: dict[str, str] = field(default_factory=dict)         # name → vsw id
    security_groups: dict[str, str] = field(default_factory=dict)   # name → sg id
    instances: dict[str, list[str]] = field(default_factory=dict)   # name → instance ids


# -- validation: every problem recorded, then raised together --------------------------------
_VSwitches = dict[str, tuple[str, int, str]]   # name → (zone, usable addresses, VPC name)


def _mapping(p: Problems, value: Any, path: str, allowed: set[str],
             required: tuple[str, ...] = ()) -> Mapping[str, Any] | None:
    """``value`` if it is a mapping (its unknown and missing keys recorded), else None."""
    if not isinstance(value, Mapping):
        p.add(path or "world", f"must be a mapping, got {type(value).__name__}")
        return None
    p.unknown_keys(value, allowed, path)
    for key in required:
        if key not in value:
            p.add(join(path, key), "required")
    return value


def _list(p: Problems, value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        p.add(path, f"must be a list, got {type(value).__name__}")
        return []
    return value


def _name(p: Problems, value: Any, path: str, taken: Collection[str], what: str) -> str | None:
    """A non-empty name not yet taken, else None (recorded)."""
    if not isinstance(value, str) or not value:
        p.add(path, f"must be a non-empty string, got {value!r}")
        return None
    if value in taken:
        p.add(path, f"duplicate {what} name {value!r}")
        return None
    return value


def _cidr(p: Problems, value: Any, path: str, low: int, high: int
          ) -> ipaddress.IPv4Network | None:
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        p.add(path, f"{value} is not a CIDR")
        return None
    if not low <= net.prefixlen <= high:
        p.add(path, f"{value}: prefix must be /{low} to /{high}")
        return None
    return net


def _check_delay(p: Problems, value: Any, path: str) -> None:
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, list) and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in value)
        and value[0] <= value[1])
    if not ok:
        p.add(path, f"must be seconds >= 0 or [low, high], got {value!r}")


def validate_world(spec: Any) -> None:
    """Raise WorldError listing every problem found; returns quietly when the world is sound."""
    p = Problems()
    top = _mapping(p, spec, "", _TOP)
    if top is not None:
        region = _check_top(p, top)
        vswitches, sgs = _validate_vpcs(p, top, region)
        _validate_instances(p, top, vswitches, sgs)
        _validate_faults(p, top)
    p.raise_as(WorldError)


def _check_top(p: Problems, top: Mapping[str, Any]) -> str:
    """seed, region and cloud options; returns the region (the default if it is unknown)."""
    seed = top.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        p.add("seed", f"must be an integer, got {seed!r}")
    region = top.get("region", "cn-hangzhou")
    if region not in REGIONS:
        p.add("region", f"unknown region {region!r}{did_you_mean(region, REGIONS)} "
                        f"(known: {', '.join(REGIONS)})")
        region = "cn-hangzhou"
    opts = _mapping(p, top.get("cloud", {}), "cloud", _CLOUD_OPTS) or {}
    for key in ("attach_delay", "detach_delay"):
        if key in opts:
            _check_delay(p, opts[key], f"cloud.{key}")
    for key in ("metadata_lag", "unattached_ip_limit"):
        value = opts.get(key, 0)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            p.add(f"cloud.{key}", f"must be a number >= 0, got {value!r}")
    return str(region)


def _validate_faults(p: Problems, top: Mapping[str, Any]) -> None:
    """Each rule on its own, by the fault engine's one builder."""
    for i, rule in enumerate(_list(p, top.get("faults"), "faults")):
        try:
            build_rule(rule, f"faults[{i}]")
        except FaultRuleError as exc:
            path, _, why = str(exc).partition(": ")
            p.add(path, why or str(exc))


def _validate_vpcs(p: Problems, top: Mapping[str, Any], region: str
                   ) -> tuple[_VSwitches, dict[str, str]]:
    """Returns vswitch name → (zone, capacity, vpc name) and sg name → vpc name."""
    vswitches: _VSwitches = {}
    sgs: dict[str, str] = {}
    vpc_names: set[str] = set()
    for i, raw in enumerate(_list(p, top.get("vpcs"), "vpcs")):
        path = f"vpcs[{i}]"
        vpc = _mapping(p, raw, path, {"name", "cidr", "vswitches", "security_groups"}, ("cidr",))
        if vpc is None:
            continue
        name = _name(p, vpc.get("name", f"vpc{i}"), f"{path}.name", vpc_names, "VPC")
        name = name or f"vpc{i}"
        vpc_names.add(name)
        vpc_net = _cidr(p, vpc["cidr"], f"{path}.cidr", 8, 28) if "cidr" in vpc else None
        nets: list[ipaddress.IPv4Network] = []
        for j, raw_vsw in enumerate(_list(p, vpc.get("vswitches"), f"{path}.vswitches")):
            _validate_vswitch(p, raw_vsw, f"{path}.vswitches[{j}]", (name, j, region),
                              vpc_net, nets, vswitches)
        for j, raw_sg in enumerate(_list(p, vpc.get("security_groups"),
                                         f"{path}.security_groups")):
            spath = f"{path}.security_groups[{j}]"
            sg = _mapping(p, raw_sg, spath, {"name"})
            sname = _name(p, sg.get("name", f"{name}-sg{j}"), f"{spath}.name", sgs,
                          "security group") if sg is not None else None
            if sname:
                sgs[sname] = name
    return vswitches, sgs


def _validate_vswitch(p: Problems, raw: Any, path: str, where: tuple[str, int, str],
                      vpc_net: ipaddress.IPv4Network | None, nets: list[ipaddress.IPv4Network],
                      vswitches: _VSwitches) -> None:
    """One vSwitch of VPC ``where[0]`` (its ``where[1]``-th, in region ``where[2]``)."""
    vpc_name, j, region = where
    vsw = _mapping(p, raw, path, {"name", "zone", "cidr"}, ("zone", "cidr"))
    if vsw is None:
        return
    vname = _name(p, vsw.get("name", f"{vpc_name}-vsw{j}"), f"{path}.name", vswitches,
                  "vSwitch")
    zone = vsw.get("zone")
    if "zone" in vsw and zone not in REGIONS[region]:
        p.add(f"{path}.zone", f"{zone!r} is not a zone of {region}"
                              f"{did_you_mean(zone, REGIONS[region])} "
                              f"({', '.join(REGIONS[region])})")
    net = _cidr(p, vsw["cidr"], f"{path}.cidr", 16, 29) if "cidr" in vsw else None
    if net is not None and vpc_net is not None and not net.subnet_of(vpc_net):
        p.add(f"{path}.cidr", f"{net} is not inside the VPC's {vpc_net}")
        net = None
    clash = next((other for other in nets if net is not None and other.overlaps(net)), None)
    if clash is not None:
        p.add(f"{path}.cidr", f"{net} overlaps {clash}")
    elif net is not None:
        nets.append(net)
    if vname:
        vswitches[vname] = (str(zone), net.num_addresses - 4 if net else 0, vpc_name)


def _validate_instances(p: Problems, top: Mapping[str, Any], vswitches: _VSwitches,
                        sgs: dict[str, str]) -> None:
    used: dict[str, int] = {}
    names: set[str] = set()
    for i, raw in enumerate(_list(p, top.get("instances"), "instances")):
        path = f"instances[{i}]"
        inst = _mapping(p, raw, path, {"name", "type", "vswitch", "security_groups", "count"},
                        ("type", "vswitch"))
        if inst is None:
            continue
        name = _name(p, inst.get("name", f"node{i}"), f"{path}.name", names, "instance")
        names.add(name or "")
        if "type" in inst and inst["type"] not in CATALOG:
            p.add(f"{path}.type", f"unknown instance type {inst['type']!r}"
                                  f"{did_you_mean(inst['type'], CATALOG)}")
        count = inst.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
            p.add(f"{path}.count", f"must be an integer 1-100, got {count!r}")
            count = 0
        vsw = inst.get("vswitch")
        if "vswitch" not in inst:
            continue
        if vsw not in vswitches:
            p.add(f"{path}.vswitch", f"no vSwitch named {vsw!r}{did_you_mean(vsw, vswitches)}")
            continue
        _check_groups(p, inst, path, vswitches[vsw][2], sgs)
        used[vsw] = used.get(vsw, 0) + count
        if count and used[vsw] > vswitches[vsw][1]:
            p.add(f"{path}.count", f"vSwitch {vsw!r} has only {vswitches[vsw][1]} "
                                   "usable addresses")


def _check_groups(p: Problems, inst: Mapping[str, Any], path: str, vpc_name: str,
                  sgs: dict[str, str]) -> None:
    """An instance's security groups: each in its vSwitch's VPC, or a VPC default."""
    groups = _list(p, inst.get("security_groups"), f"{path}.security_groups")
    for k, sg in enumerate(groups):
        if sgs.get(sg) != vpc_name:
            p.add(f"{path}.security_groups[{k}]", f"no security group {sg!r} in VPC "
                                                  f"{vpc_name!r}")
    if not groups and vpc_name not in sgs.values():
        p.add(f"{path}.security_groups", f"VPC {vpc_name!r} has none to default to")


# -- building ------------------------------------------------------------------------------------
def build_world(spec: Any, cloud: Cloud | None = None, faults: FaultEngine | None = None,
                clock: Any = None) -> BuiltWorld:
    """Validate ``spec`` then build it. A given ``cloud`` is reset (to the world's seed) first;
    on a validation error it is not touched at all."""
    validate_world(spec)
    seed = spec.get("seed", 0)
    region = spec.get("region", "cn-hangzhou")
    opts = dict(spec.get("cloud", {}))
    for key in ("attach_delay", "detach_delay"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    if cloud is None:
        cloud = Cloud(seed=seed, clock=clock, region_id=region, **opts)
    else:
        cloud.reset(seed)
    faults = FaultEngine(seed) if faults is None else faults
    faults.clear()
    faults.reseed(seed)
    built = BuiltWorld(cloud, faults)
    try:
        _build(spec, built)
    except ApiError as exc:  # validation should have caught it; never leave half a world
        cloud.reset(seed)
        raise WorldError("world", f"building failed: {exc}") from exc
    faults.add_rules(list(spec.get("faults") or []))
    return built


def _build(spec: Mapping[str, Any], built: BuiltWorld) -> None:
    cloud = built.cloud
    first_sg: dict[str, str] = {}
    for i, vpc in enumerate(spec.get("vpcs") or []):
        name = vpc.get("name", f"vpc{i}")
        vpc_id = cloud.create_vpc(vpc["cidr"], name=name).vpc_id
        built.vpcs[name] = vpc_id
        for j, vsw in enumerate(vpc.get("vswitches") or []):
            vname = vsw.get("name", f"{name}-vsw{j}")
            built.vswitches[vname] = cloud.create_vswitch(vpc_id, vsw["zone"], vsw["cidr"],
                                                          name=vname).vswitch_id
        for j, sg in enumerate(vpc.get("security_groups") or []):
            sname = sg.get("name", f"{name}-sg{j}")
            sg_id = cloud.create_security_group(vpc_id, name=sname).security_group_id
            built.security_groups[sname] = sg_id
            first_sg.setdefault(vpc_id, sg_id)
    for i, inst in enumerate(spec.get("instances") or []):
        name = inst.get("name", f"node{i}")
        vsw_id = built.vswitches[inst["vswitch"]]
        vpc_id = cloud.get_vswitch(vsw_id).vpc_id
        groups = [built.security_groups[g] for g in inst.get("security_groups") or []]
        built.instances[name] = cloud.run_instances(
            inst["type"], vsw_id, groups or [first_sg[vpc_id]], inst.get("count", 1), name=name)


def load_world(path: str | Path, cloud: Cloud | None = None,
               faults: FaultEngine | None = None, clock: Any = None) -> BuiltWorld:
    """Read a YAML world file and build it (see ``build_world``)."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise WorldError(str(path), f"cannot read world file: {exc}") from None
    return build_world(spec or {}, cloud, faults, clock)
