"""World files: a YAML description of a cloud (VPCs, vSwitches, security groups, instances,
faults, seed) built through the model's own typed methods, as the SDK would build it.

Everything is validated before anything is built; an error names its path
(``vpcs[0].vswitches[1].cidr: 10.0.0.0/33 is not a CIDR``) and leaves the target untouched.
Schema: docs/emulator-model.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.faults import FaultEngine, FaultRuleError, build_rules
from emulator.model import CATALOG, ApiError, Cloud
from emulator.model.regions import REGIONS

_TOP = {"seed", "region", "cloud", "vpcs", "instances", "faults"}
_CLOUD_OPTS = {"attach_delay", "detach_delay", "metadata_lag", "unattached_ip_limit"}


class WorldError(ValueError):
    """A world file that cannot be built; ``path`` names the offending field."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


@dataclass
class BuiltWorld:
    cloud: Cloud
    faults: FaultEngine
    vpcs: dict[str, str] = field(default_factory=dict)              # name → vpc id
    vswitches: dict[str, str] = field(default_factory=dict)         # name → vsw id
    security_groups: dict[str, str] = field(default_factory=dict)   # name → sg id
    instances: dict[str, list[str]] = field(default_factory=dict)   # name → instance ids


# -- validation ----------------------------------------------------------------------------------
def _mapping(value: Any, path: str, allowed: set[str], required: tuple[str, ...] = ()
             ) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WorldError(path, f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise WorldError(f"{path}.{key}" if path else str(key),
                             f"unknown field (expected one of {', '.join(sorted(allowed))})")
    for key in required:
        if key not in value:
            raise WorldError(f"{path}.{key}" if path else key, "required")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorldError(path, f"must be a list, got {type(value).__name__}")
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise WorldError(path, f"must be a non-empty string, got {value!r}")
    return value


def _cidr(value: Any, path: str, low: int, high: int) -> ipaddress.IPv4Network:
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise WorldError(path, f"{value} is not a CIDR") from None
    if not low <= net.prefixlen <= high:
        raise WorldError(path, f"{value}: prefix must be /{low} to /{high}")
    return net


def _check_delay(value: Any, path: str) -> None:
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, list) and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in value)
        and value[0] <= value[1])
    if not ok:
        raise WorldError(path, f"must be seconds >= 0 or [low, high], got {value!r}")


def validate_world(spec: Any) -> None:
    """Raise WorldError for the first problem found; returns quietly when the world is sound."""
    top = _mapping(spec, "", _TOP)
    seed = top.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise WorldError("seed", f"must be an integer, got {seed!r}")
    region = top.get("region", "cn-hangzhou")
    if region not in REGIONS:
        raise WorldError("region", f"unknown region {region!r} (known: {', '.join(REGIONS)})")
    opts = _mapping(top.get("cloud", {}), "cloud", _CLOUD_OPTS)
    for key in ("attach_delay", "detach_delay"):
        if key in opts:
            _check_delay(opts[key], f"cloud.{key}")
    for key in ("metadata_lag", "unattached_ip_limit"):
        value = opts.get(key, 0)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise WorldError(f"cloud.{key}", f"must be a number >= 0, got {value!r}")
    vswitches, sgs = _validate_vpcs(top, region)
    _validate_instances(top, vswitches, sgs)
    try:
        build_rules(_list(top.get("faults"), "faults"), "faults")
    except FaultRuleError as exc:
        path, _, why = str(exc).partition(": ")
        raise WorldError(path, why or str(exc)) from None


def _validate_vpcs(top: Mapping[str, Any], region: str
                   ) -> tuple[dict[str, tuple[str, int, str]], dict[str, str]]:
    """Returns vswitch name → (zone, capacity, vpc name) and sg name → vpc name."""
    vswitches: dict[str, tuple[str, int, str]] = {}
    sgs: dict[str, str] = {}
    vpc_names: set[str] = set()
    for i, raw in enumerate(_list(top.get("vpcs"), "vpcs")):
        path = f"vpcs[{i}]"
        vpc = _mapping(raw, path, {"name", "cidr", "vswitches", "security_groups"}, ("cidr",))
        name = _name(vpc.get("name", f"vpc{i}"), f"{path}.name")
        if name in vpc_names:
            raise WorldError(f"{path}.name", f"duplicate VPC name {name!r}")
        vpc_names.add(name)
        vpc_net = _cidr(vpc["cidr"], f"{path}.cidr", 8, 28)
        nets: list[ipaddress.IPv4Network] = []
        for j, raw_vsw in enumerate(_list(vpc.get("vswitches"), f"{path}.vswitches")):
            vpath = f"{path}.vswitches[{j}]"
            vsw = _mapping(raw_vsw, vpath, {"name", "zone", "cidr"}, ("zone", "cidr"))
            vname = _name(vsw.get("name", f"{name}-vsw{j}"), f"{vpath}.name")
            if vname in vswitches:
                raise WorldError(f"{vpath}.name", f"duplicate vSwitch name {vname!r}")
            if vsw["zone"] not in REGIONS[region]:
                raise WorldError(f"{vpath}.zone", f"{vsw['zone']!r} is not a zone of {region} "
                                 f"({', '.join(REGIONS[region])})")
            net = _cidr(vsw["cidr"], f"{vpath}.cidr", 16, 29)
            if not net.subnet_of(vpc_net):
                raise WorldError(f"{vpath}.cidr", f"{net} is not inside the VPC's {vpc_net}")
            for other in nets:
                if other.overlaps(net):
                    raise WorldError(f"{vpath}.cidr", f"{net} overlaps {other}")
            nets.append(net)
            vswitches[vname] = (vsw["zone"], net.num_addresses - 4, name)
        for j, raw_sg in enumerate(_list(vpc.get("security_groups"), f"{path}.security_groups")):
            spath = f"{path}.security_groups[{j}]"
            sg = _mapping(raw_sg, spath, {"name"})
            sname = _name(sg.get("name", f"{name}-sg{j}"), f"{spath}.name")
            if sname in sgs:
                raise WorldError(f"{spath}.name", f"duplicate security group name {sname!r}")
            sgs[sname] = name
    return vswitches, sgs


def _validate_instances(top: Mapping[str, Any], vswitches: dict[str, tuple[str, int, str]],
                        sgs: dict[str, str]) -> None:
    used: dict[str, int] = {}
    names: set[str] = set()
    for i, raw in enumerate(_list(top.get("instances"), "instances")):
        path = f"instances[{i}]"
        inst = _mapping(raw, path, {"name", "type", "vswitch", "security_groups", "count"},
                        ("type", "vswitch"))
        name = _name(inst.get("name", f"node{i}"), f"{path}.name")
        if name in names:
            raise WorldError(f"{path}.name", f"duplicate instance name {name!r}")
        names.add(name)
        if inst["type"] not in CATALOG:
            raise WorldError(f"{path}.type", f"unknown instance type {inst['type']!r}")
        vsw = inst["vswitch"]
        if vsw not in vswitches:
            raise WorldError(f"{path}.vswitch", f"no vSwitch named {vsw!r}")
        vpc_name = vswitches[vsw][2]
        groups = _list(inst.get("security_groups"), f"{path}.security_groups")
        for k, sg in enumerate(groups):
            if sgs.get(sg) != vpc_name:
                raise WorldError(f"{path}.security_groups[{k}]",
                                 f"no security group {sg!r} in VPC {vpc_name!r}")
        if not groups and vpc_name not in sgs.values():
            raise WorldError(f"{path}.security_groups", f"VPC {vpc_name!r} has none to default to")
        count = inst.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
            raise WorldError(f"{path}.count", f"must be an integer 1-100, got {count!r}")
        used[vsw] = used.get(vsw, 0) + count
        if used[vsw] > vswitches[vsw][1]:
            raise WorldError(f"{path}.count", f"vSwitch {vsw!r} has only {vswitches[vsw][1]} "
                             "usable addresses")


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
