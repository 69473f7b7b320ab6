"""``terway-sim plan``: capacity answers from a small grid of simulations.

1. When does IpNotEnough hit? The workload on the given vSwitches with upstream's usual pool
   (min 0, max 5): the simulated time of the first IpNotEnough line, or "not within the horizon".
2. Which pool sizes keep p99 network-ready under the target with the fewest idle addresses? A grid
   of (min_pool_size, max_pool_size) on an ample vSwitch, so exhaustion does not blur the answer.
3. How large must the vSwitch be? The peak of addresses held (used + idle) under the chosen pool
   sizes, plus 25 % headroom, rounded up to a CIDR prefix.
Every run behind an answer is listed in plan.json and plan.html.
"""

from __future__ import annotations

import argparse
import html
import ipaddress
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from simulator.sweep import execute
from simulator.units import SpecError, format_duration, parse_duration

POOL_GRID: tuple[tuple[int, int], ...] = ((0, 0), (0, 5), (1, 5), (2, 5), (2, 10), (5, 10),
                                          (5, 20), (10, 20))
AMPLE_CIDR = "10.64.0.0/16"
HEADROOM = 1.25


def preset_workload(name: str, nodes: int) -> list[dict[str, Any]]:
    """Workload presets scaled to the cluster size."""
    if name == "steady":
        return [{"kind": "deployment", "name": "services", "replicas": nodes * 6},
                {"kind": "churn", "name": "jobs", "rate": f"{nodes * 0.6:g}/min",
                 "lifetime": {"dist": "exp", "mean": "15m"}}]
    if name == "bursty":
        return [{"kind": "deployment", "name": "services", "replicas": nodes * 4}] + [
            {"kind": "burst", "name": f"batch-{h}", "at": f"{h}h", "count": nodes * 6,
             "lifetime": {"dist": "uniform", "low": "5m", "high": "20m"}} for h in range(1, 6)]
    if name == "web":
        return [{"kind": "deployment", "name": "web", "replicas": nodes * 5,
                 "schedule": [{"at": "1h", "replicas": nodes * 12},
                              {"at": "4h", "replicas": nodes * 5}]},
                {"kind": "churn", "name": "cron", "rate": f"{nodes * 0.2:g}/min",
                 "lifetime": {"dist": "exp", "mean": "5m"}}]
    raise SpecError("--workload", f"unknown preset {name!r} (presets: steady, bursty, web; "
                                  "or a YAML file with a 'workload' list)")


def load_workload(arg: str, nodes: int) -> list[dict[str, Any]]:
    if os.path.exists(arg):
        with open(arg, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        items = data.get("workload") if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            raise SpecError("--workload", f"{arg}: expected a list or a mapping with 'workload'")
        return items
    return preset_workload(arg, nodes)


def base_document(args: argparse.Namespace) -> dict[str, Any]:
    vsws = [{"id": f"vsw-{i + 1}", "cidr": c} for i, c in enumerate(args.vswitch_cidr)]
    zone = "cn-hangzhou-k"
    return {
        "name": "plan",
        "seed": args.seed,
        "duration": args.duration,
        "sample_interval": "30s",
        "cluster": {"zone": zone, "nodes": args.nodes, "instance_type": args.instance_type,
                    "vswitches": vsws},
        "eni_conf": {"min_pool_size": 0, "max_pool_size": 5, "vswitch_selection_policy": "ordered",
                     "vswitches": {zone: [v["id"] for v in vsws]}},
        "workload": load_workload(args.workload, args.nodes),
        "latency": {"fast": False},
    }


def prefix_for(addresses: int) -> int:
    """The longest prefix (/16../29) whose usable addresses (size - 4) hold ``addresses``."""
    for prefix in range(29, 15, -1):
        if 2 ** (32 - prefix) - 4 >= addresses:
            return prefix
    return 16


def check_arguments(args: argparse.Namespace) -> float:
    """Every flag, before any simulation runs (a bad one must not cost minutes); the p99
    target in seconds. SpecError names the flag."""
    target = parse_duration(args.p99_target, "--p99-target")
    if not target > 0:
        raise SpecError("--p99-target", f"must be more than 0, got {args.p99_target!r}")
    if not parse_duration(args.duration, "--duration") > 0:
        raise SpecError("--duration", f"must be more than 0, got {args.duration!r}")
    for name in ("nodes", "workers"):
        if getattr(args, name) < 1:
            raise SpecError(f"--{name}", f"must be at least 1, got {getattr(args, name)}")
    for cidr in args.vswitch_cidr:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError as e:
            raise SpecError("--vswitch-cidr", f"not a CIDR: {cidr!r} ({e})") from None
        if net.version != 4:
            raise SpecError("--vswitch-cidr", f"expected an IPv4 CIDR, got {cidr!r}")
    return target


def plan(args: argparse.Namespace) -> dict[str, Any]:
    target = check_arguments(args)
    doc = base_document(args)
    from simulator.scenario import parse_scenario
    parse_scenario(doc)                         # validates the inputs, names the bad field
    zone = doc["cluster"]["zone"]
    ample = {"cluster.vswitches": [{"id": "vsw-ample", "cidr": AMPLE_CIDR}],
             "eni_conf.vswitches": {zone: ["vsw-ample"]}}
    pts: list[tuple[int, dict[str, Any]]] = [(args.seed, {})]
    for mn, mx in POOL_GRID:
        pts.append((args.seed, {**ample, "eni_conf.min_pool_size": mn,
                                "eni_conf.max_pool_size": mx}))
    results = execute(doc, pts, workers=args.workers)
    exhaustion, grid = results[0], results[1:]
    feasible = [r for r in grid if (r["scalars"].get("p99_network_ready") or math.inf) <= target
                and not r["scalars"].get("invariant_violations")]
    best = min(feasible, key=lambda r: (r["scalars"]["idle_ip_hours"],
                                        r["scalars"]["api_calls_per_pod"])) if feasible else None
    chosen = best or min(grid, key=lambda r: r["scalars"].get("p99_network_ready") or math.inf)
    peak = float(chosen["scalars"].get("peak_addresses") or 0)
    need = math.ceil(peak * HEADROOM)
    have = sum(ipaddress.ip_network(c).num_addresses - 4 for c in args.vswitch_cidr)
    first = exhaustion["scalars"].get("first_ip_not_enough")
    return {
        "inputs": {"vswitch_cidr": list(args.vswitch_cidr), "nodes": args.nodes,
                   "instance_type": args.instance_type, "workload": args.workload,
                   "p99_target": target, "duration": args.duration, "seed": args.seed},
        "ip_not_enough_at": first,
        "pool": None if best is None else {
            "min_pool_size": best["overrides"]["eni_conf.min_pool_size"],
            "max_pool_size": best["overrides"]["eni_conf.max_pool_size"]},
        "peak_addresses": peak,
        "addresses_needed": need,
        "addresses_available": have,
        "vswitch_prefix": prefix_for(need),
        "runs": results,
    }


def answers(p: Mapping[str, Any]) -> list[str]:
    first = p["ip_not_enough_at"]
    horizon = format_duration(parse_duration(p["inputs"]["duration"], "--duration"))
    out = [f"IpNotEnough: first at {format_duration(first)}" if first is not None
           else f"IpNotEnough: not within {horizon}"]
    if p["pool"]:
        out.append(f"pool sizes: min_pool_size={p['pool']['min_pool_size']} "
                   f"max_pool_size={p['pool']['max_pool_size']} keep p99 network-ready <= "
                   f"{p['inputs']['p99_target']:g}s with the fewest idle address-hours")
    else:
        out.append(f"pool sizes: none of the grid keeps p99 <= {p['inputs']['p99_target']:g}s")
    out.append(f"vSwitch size: peak {p['peak_addresses']:.0f} addresses held; with 25% headroom "
               f"{p['addresses_needed']} -> a /{p['vswitch_prefix']} or larger "
               f"(given: {p['addresses_available']} usable)")
    return out


def write_plan(p: Mapping[str, Any], out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "plan.json"), "w", encoding="utf-8") as fh:
        json.dump(p, fh, indent=1, sort_keys=True)
    cols = ("api_calls_per_pod", "idle_ip_hours", "p50_network_ready", "p99_network_ready",
            "first_ip_not_enough", "peak_addresses", "cni_failures")
    rows = []
    for r in p["runs"]:
        o = r["overrides"]
        what = ("given vSwitches, min 0 / max 5" if not o else
                f"ample vSwitch, min {o['eni_conf.min_pool_size']} / "
                f"max {o['eni_conf.max_pool_size']}")
        cells = "".join(f"<td>{_cell(r['scalars'].get(c))}</td>" for c in cols)
        rows.append(f"<tr><td>{html.escape(what)}</td>{cells}</tr>")
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "\n".join(rows)
    items = "".join(f"<li>{html.escape(a)}</li>" for a in answers(p))
    with open(os.path.join(out_dir, "plan.html"), "w", encoding="utf-8") as fh:
        fh.write(f"<!doctype html><meta charset='utf-8'><title>terway-sim plan</title>"
                 f"<style>td,th{{border:1px solid #ccc;padding:3px 6px}}table{{border-collapse:"
                 f"collapse}}</style><h1>Capacity plan</h1><ul>{items}</ul>"
                 f"<pre>{html.escape(json.dumps(p['inputs'], indent=1))}</pre>"
                 f"<h2>The runs behind the answers</h2><table><tr><th>run</th>{head}</tr>"
                 f"{body}</table>")


def _cell(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else html.escape(str(v))


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vswitch-cidr", action="append", required=True,
                   help="a vSwitch CIDR of the node's zone (repeatable)")
    p.add_argument("--nodes", type=int, required=True, help="nodes in the cluster")
    p.add_argument("--instance-type", required=True, help="the nodes' ECS instance type")
    p.add_argument("--workload", default="steady",
                   help="preset (steady, bursty, web) or a YAML file with a workload list")
    p.add_argument("--p99-target", default="5s", metavar="DURATION",
                   help="the p99 network-ready time the pool sizes must keep")
    p.add_argument("--duration", default="6h", metavar="DURATION",
                   help="simulated time of each run")
    p.add_argument("--seed", type=int, default=1, help="the runs' seed")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="runs in parallel processes (default: the number of CPUs)")
    p.add_argument("--out", default="out/plan", metavar="DIR",
                   help="where plan.json and plan.html go")


def main_plan(args: argparse.Namespace, printer: Callable[[str], None] = print) -> int:
    p = plan(args)
    write_plan(p, args.out)
    for line in answers(p):
        printer(line)
    printer(f"runs: {os.path.join(args.out, 'plan.html')}")
    return 0


__all__: Sequence[str] = ("add_plan_arguments", "main_plan", "plan")
