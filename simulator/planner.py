"""``terway-sim plan``: capacity answers from a small grid of simulations.

1. When does IpNotEnough hit? The workload on the given vSwitches with upstream's usual pool
   (min 0, max 5): the simulated time of the first IpNotEnough line, or "not within the horizon".
2. Which pool keeps p99 network-ready under the target with the fewest idle addresses? The
   candidates: a grid of (min_pool_size, max_pool_size) and the adaptive policy
   (terway/ipam/adaptive.py), each on an ample vSwitch so exhaustion does not blur the answer.
   The answer names the best p99 reached and by whom, what the pick costs (API calls per pod and
   in total, idle address-hours) and how the adaptive policy compares.
3. How large must the vSwitch be? The peak of addresses held (used + idle) under the pick, plus
   25 % headroom, rounded up to a CIDR prefix.

The workload summary (pods created, the most placed at once cluster-wide and on one node) says
what the answers are about. Every flag, and every document the runs will use, is checked before
the first simulation starts: a bad flag costs no minutes. Every run behind an answer is listed in
plan.json and plan.html (with its plots).
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

from simulator.humanize import clock, count, duration, number
from simulator.sweep import execute, point_document
from simulator.units import SpecError, parse_duration

POOL_GRID: tuple[tuple[int, int], ...] = ((0, 0), (0, 5), (1, 5), (2, 5), (2, 10), (5, 10),
                                          (5, 20), (10, 20))
ADAPTIVE = "adaptive"                 # the candidate's name, and its policy kind
AMPLE_CIDR = "10.64.0.0/16"
HEADROOM = 1.25
PRESETS = ("steady", "bursty", "web")
Candidate = dict[str, Any]


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
    raise SpecError("--workload", f"no preset or file {name!r} (presets: {', '.join(PRESETS)}; "
                                  "or a YAML file with a 'workload' list)")


def load_workload(arg: str, nodes: int) -> list[dict[str, Any]]:
    """A file's ``workload`` list (a file wins over a preset of the same name), or a preset.
    Every way of failing to read the file is a SpecError naming ``--workload``."""
    if not os.path.isfile(arg):
        if os.path.exists(arg):
            raise SpecError("--workload", f"{arg}: not a file")
        return preset_workload(arg, nodes)
    try:
        with open(arg, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as e:
        raise SpecError("--workload", f"{arg}: cannot read it: {e.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise SpecError("--workload", f"{arg}: not YAML: {' '.join(str(e).split())}") from None
    items = data.get("workload") if isinstance(data, Mapping) else data
    if not isinstance(items, list) or not items:
        raise SpecError("--workload", f"{arg}: expected a list or a mapping with 'workload'")
    return items


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


def candidates(zone: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, overrides) of every pool the planner weighs: the grid, then the adaptive policy."""
    ample = {"cluster.vswitches": [{"id": "vsw-ample", "cidr": AMPLE_CIDR}],
             "eni_conf.vswitches": {zone: ["vsw-ample"]}}
    grid = [(f"min {mn} / max {mx}", {**ample, "eni_conf.min_pool_size": mn,
                                      "eni_conf.max_pool_size": mx}) for mn, mx in POOL_GRID]
    return [*grid, (ADAPTIVE, {**ample, "policy": {"kind": ADAPTIVE, "name": ADAPTIVE}})]


def prefix_for(addresses: int) -> int:
    """The longest prefix (/16../29) whose usable addresses (size - 4) hold ``addresses``."""
    for prefix in range(29, 15, -1):
        if 2 ** (32 - prefix) - 4 >= addresses:
            return prefix
    return 16


# -- checks before any simulation -------------------------------------------------------------

# a scenario field → the flag it comes from, so a problem found in the document names the flag
FIELD_FLAGS = (("cluster.vswitches", "--vswitch-cidr"), ("vswitch ", "--vswitch-cidr"),
               ("cluster.instance_type", "--instance-type"), ("cluster.nodes", "--nodes"),
               ("workload", "--workload"), ("seed", "--seed"), ("duration", "--duration"))


def check_arguments(args: argparse.Namespace) -> float:
    """Every flag on its own (a bad one must not cost minutes); the p99 target in seconds.
    SpecError names the flag."""
    target = parse_duration(args.p99_target, "--p99-target")
    if not target > 0:
        raise SpecError("--p99-target", f"must be more than 0, got {args.p99_target!r}")
    if not parse_duration(args.duration, "--duration") > 0:
        raise SpecError("--duration", f"must be more than 0, got {args.duration!r}")
    for name in ("nodes", "workers"):
        if getattr(args, name) < 1:
            raise SpecError(f"--{name}", f"must be at least 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise SpecError("--seed", f"must be 0 or more, got {args.seed}")
    _check_cidrs(args.vswitch_cidr)
    _check_instance_type(args.instance_type)
    return target


def _check_cidrs(cidrs: Sequence[str]) -> None:
    """Each an IPv4 /16../29 inside the simulated VPC, clear of the nodes' vSwitch and of each
    other (else the cloud would refuse it when the first run builds its world)."""
    from simulator.engine import VPC_CIDR
    from simulator.scenario import Scenario
    vpc, nodes = ipaddress.IPv4Network(VPC_CIDR), ipaddress.IPv4Network(Scenario.node_cidr)
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for cidr in cidrs:
        net = _cidr(cidr)
        if not net.subnet_of(vpc):
            raise SpecError("--vswitch-cidr", f"{cidr} is outside the simulated VPC {vpc}")
        if net.overlaps(nodes):
            raise SpecError("--vswitch-cidr", f"{cidr} overlaps the nodes' vSwitch {nodes}")
        for other, before in seen:
            if net.overlaps(before):
                raise SpecError("--vswitch-cidr", f"{cidr} overlaps {other}")
        seen.append((cidr, net))


def _cidr(cidr: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError as e:
        raise SpecError("--vswitch-cidr", f"not a CIDR: {cidr!r} ({e})") from None
    if not isinstance(net, ipaddress.IPv4Network) or not 16 <= net.prefixlen <= 29:
        raise SpecError("--vswitch-cidr", f"a vSwitch is an IPv4 /16../29, got {cidr!r}")
    return net


def _check_instance_type(name: str) -> None:
    from emulator.model.catalog import CATALOG
    from emulator.problems import did_you_mean
    if name not in CATALOG:
        raise SpecError("--instance-type", f"unknown instance type {name!r}"
                                           f"{did_you_mean(name, CATALOG)}")


def _check_out(out: str) -> None:
    """The output directory exists (made now) and is writable: found out before, not after."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise SpecError("--out", f"{out} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise SpecError("--out", f"cannot create {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise SpecError("--out", f"cannot write in {out}")


def _as_flags(e: SpecError, cidrs: Sequence[str]) -> SpecError:
    """A problem in a run's document, reworded to name the flag it came from."""
    pairs = []
    for fld, why in e.pairs:
        flag = next((f for prefix, f in FIELD_FLAGS if fld.startswith(prefix)), None)
        if fld.startswith("vswitch vsw-") and fld[12:].isdigit() and int(fld[12:]) <= len(cidrs):
            fld = cidrs[int(fld[12:]) - 1]        # "vswitch vsw-2" → the CIDR given second
        pairs.append((flag, f"{fld}: {why}") if flag else (fld, why))
    return SpecError.many(pairs)


def check_documents(doc: Mapping[str, Any], points: Sequence[tuple[int, dict[str, Any]]],
                    cidrs: Sequence[str]) -> None:
    """Every run's document parsed and its cloud world built (vSwitches created: overlaps and
    CIDRs outside the VPC are refused here), without simulating a second."""
    from simulator.engine import Run
    from simulator.scenario import parse_scenario
    for seed, overrides in points:
        try:
            Run(parse_scenario(point_document(doc, seed, overrides)))
        except SpecError as e:
            raise _as_flags(e, cidrs) from None


def preflight(args: argparse.Namespace
              ) -> tuple[float, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Everything checked before the first simulation: the p99 target in seconds, the base
    document and the candidates."""
    target = check_arguments(args)
    doc = base_document(args)
    named = candidates(doc["cluster"]["zone"])
    check_documents(doc, [(args.seed, {}), *((args.seed, o) for _, o in named)],
                    args.vswitch_cidr)
    _check_out(args.out)
    return target, doc, named


# -- the answers ------------------------------------------------------------------------------

def plan(args: argparse.Namespace) -> dict[str, Any]:
    target, doc, named = preflight(args)
    pts = [(args.seed, {}), *((args.seed, o) for _, o in named)]
    results = execute(doc, pts, workers=args.workers)
    cands = [candidate(i + 1, name, r, target)
             for i, ((name, _), r) in enumerate(zip(named, results[1:], strict=True))]
    pick, met = recommend(cands)
    chosen = results[pick["run"]]
    peak = float(chosen["scalars"].get("peak_addresses") or 0)
    need = math.ceil(peak * HEADROOM)
    best = min(cands, key=_p99_key)
    return {
        "inputs": {"vswitch_cidr": list(args.vswitch_cidr), "nodes": args.nodes,
                   "instance_type": args.instance_type, "workload": args.workload,
                   "p99_target": target, "duration": args.duration, "seed": args.seed},
        "ip_not_enough_at": results[0]["scalars"].get("first_ip_not_enough"),
        "workload": workload_summary(chosen, args.nodes, pick["name"]),
        "candidates": cands,
        "best_p99": {"seconds": best["p99_network_ready"], "by": best["name"], "target_met": met,
                     "candidates_meeting": sum(c["meets_target"] for c in cands)},
        "recommendation": {**pick, "meets_target": met},
        "pool": _pool(pick) if met else None,
        "adaptive": adaptive_verdict(cands, pick, met, target),
        "peak_addresses": peak,
        "addresses_needed": need,
        "addresses_available": sum(ipaddress.ip_network(c).num_addresses - 4
                                   for c in args.vswitch_cidr),
        "vswitch_prefix": prefix_for(need),
        "runs": results,
    }


def candidate(index: int, name: str, run: Mapping[str, Any], target: float) -> Candidate:
    """One pool's figures; it meets the target when p99 <= target and no invariant broke."""
    s, o = run["scalars"], run["overrides"]
    p99 = s.get("p99_network_ready")
    calls = {k[10:-1]: v for k, v in s.items() if k.startswith("api_calls[")}
    return {"name": name, "run": index, "policy": ADAPTIVE if "policy" in o else "terway",
            "min_pool_size": o.get("eni_conf.min_pool_size"),
            "max_pool_size": o.get("eni_conf.max_pool_size"),
            "p99_network_ready": p99, "idle_ip_hours": s.get("idle_ip_hours") or 0.0,
            "api_calls": s.get("api_calls") or 0, "api_calls_per_pod": s.get("api_calls_per_pod"),
            "api_calls_by_action": calls, "pods_ready": s.get("pods_ready") or 0,
            "meets_target": p99 is not None and p99 <= target
            and not s.get("invariant_violations"),
            "violation": run.get("violation")}


def _p99_key(c: Candidate) -> tuple[float, float]:
    p99 = c["p99_network_ready"]
    return (math.inf if p99 is None else p99, c["idle_ip_hours"])


def recommend(cands: Sequence[Candidate]) -> tuple[Candidate, bool]:
    """The candidate meeting the target with the fewest idle address-hours (then the fewest API
    calls per pod), and True; when none meets it, the one nearest it (lowest p99), and False."""
    feasible = [c for c in cands if c["meets_target"]]
    if feasible:
        return min(feasible, key=lambda c: (c["idle_ip_hours"],
                                            c["api_calls_per_pod"] or math.inf)), True
    return min(cands, key=_p99_key), False


def _pool(c: Candidate) -> dict[str, Any]:
    if c["policy"] == ADAPTIVE:
        return {"pool_policy": ADAPTIVE}
    return {"min_pool_size": c["min_pool_size"], "max_pool_size": c["max_pool_size"]}


def workload_summary(run: Mapping[str, Any], nodes: int, under: str) -> dict[str, Any]:
    """What the workload asked of the cluster, as the chosen run saw it (pods placed at once
    are sampled with the run, every 30 s)."""
    pods = run.get("pods") or {}
    return {"pods_created": run["scalars"].get("pods_created") or 0, "nodes": nodes,
            "peak_pods": pods.get("peak", 0), "peak_pods_per_node": pods.get("peak_per_node", 0),
            "max_pods_per_node": pods.get("max_per_node", 0), "run": under}


def adaptive_verdict(cands: Sequence[Candidate], pick: Candidate, met: bool,
                     target: float) -> dict[str, Any]:
    """How the adaptive policy compares with the best fixed pool, in one sentence."""
    ad = next(c for c in cands if c["policy"] == ADAPTIVE)
    fixed = [c for c in cands if c["policy"] != ADAPTIVE]
    rival, _ = recommend(fixed)
    return {"meets_target": ad["meets_target"], "recommended": ad is pick,
            "p99_network_ready": ad["p99_network_ready"], "idle_ip_hours": ad["idle_ip_hours"],
            "api_calls_per_pod": ad["api_calls_per_pod"], "best_fixed": rival["name"],
            "verdict": _adaptive_sentence(ad, rival, ad is pick, met, target)}


def _adaptive_sentence(ad: Candidate, rival: Candidate, chosen: bool, met: bool,
                       target: float) -> str:
    p99, idle = duration(ad["p99_network_ready"]), number(ad["idle_ip_hours"])
    theirs = (f"{rival['name']} ({number(rival['idle_ip_hours'])} idle address-hours, "
              f"p99 {duration(rival['p99_network_ready'])})")
    if ad["violation"]:
        return f"not recommended: an invariant broke in its run ({ad['violation']})"
    if chosen and met:
        return (f"recommended: it meets the target (p99 {p99}) with {idle} idle address-hours, "
                + (f"fewer than the best fixed pool, {theirs}" if rival["meets_target"]
                   else "and no fixed pool meets it"))
    if met and ad["meets_target"]:
        return (f"not recommended: it meets the target (p99 {p99}) but holds {idle} idle "
                f"address-hours, more than {theirs}")
    if met:
        return (f"not recommended: its p99 misses the {duration(target)} target by "
                f"{duration(ad['p99_network_ready'] - target)} ({p99}), which {theirs} meets")
    if chosen:
        return f"nearest the target of all (p99 {p99}, {idle} idle address-hours), but misses it"
    more = "fewer" if ad["idle_ip_hours"] < rival["idle_ip_hours"] else "more"
    return (f"misses the target as every candidate does: p99 {p99} with {idle} idle "
            f"address-hours, {more} than the nearest fixed pool, {theirs}")


def answers(p: Mapping[str, Any]) -> list[str]:
    """The plan as a person reads it, one line per answer."""
    horizon = duration(parse_duration(p["inputs"]["duration"], "--duration"))
    target = duration(p["inputs"]["p99_target"])
    first = p["ip_not_enough_at"]
    w, best, rec = p["workload"], p["best_p99"], p["recommendation"]
    have, need = p["addresses_available"], p["addresses_needed"]
    n = len(p["candidates"])
    out = [f"workload: {count(w['pods_created'])} pods created in {horizon}; at most "
           f"{count(w['peak_pods'])} at once cluster-wide, {count(w['peak_pods_per_node'])} on "
           f"the busiest node (of the {count(w['max_pods_per_node'])} a node holds)",
           "IpNotEnough on the given vSwitches (min 0 / max 5): "
           + (f"first at {clock(first)}" if first is not None else f"not within {horizon}"),
           f"best p99 network-ready: {duration(best['seconds'])} by {best['by']}; the "
           f"{target} target is "
           + (f"met by {_of(best['candidates_meeting'], n)} candidates" if best["target_met"]
              else f"missed by all {n} candidates")]
    if best["target_met"]:
        out.append(f"pool: {rec['name']}: the fewest idle address-hours of those keeping p99 "
                   f"network-ready <= {target} (p99 {duration(rec['p99_network_ready'])})")
    else:
        out.append(f"pool: none of the {n} candidates keeps p99 <= {target}; nearest: "
                   f"{rec['name']} (p99 {duration(rec['p99_network_ready'])})")
    out += [f"its cost: {number(rec['api_calls_per_pod'])} API calls per pod, "
            f"{count(rec['api_calls'])} API calls in total, {number(rec['idle_ip_hours'])} idle "
            f"address-hours in {horizon}",
            f"adaptive: {p['adaptive']['verdict']}",
            f"vSwitch size for {rec['name']}: peak {p['peak_addresses']:.0f} addresses held; "
            f"with 25% headroom "
            f"{p['addresses_needed']} -> a /{p['vswitch_prefix']} or larger "
            f"(given: {count(have)} usable, " + ("enough)" if have >= need
                                                  else f"{count(need - have)} short)")]
    return out


def _of(k: int, n: int) -> str:
    return f"all {n}" if k == n else f"{k} of {n}"


# -- plan.json and plan.html ------------------------------------------------------------------

RUN_COLUMNS = ("api_calls_per_pod", "api_calls", "idle_ip_hours", "p50_network_ready",
               "p99_network_ready", "first_ip_not_enough", "peak_addresses", "cni_failures")
ACTION_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")
PAGE_STYLE = ("body{font:14px sans-serif;max-width:960px;margin:1em auto}td,th{border:1px solid "
              "#ccc;padding:3px 6px}table{border-collapse:collapse}svg.scatter{width:100%;"
              "height:auto;font:11px sans-serif}.keys span{display:inline-block;width:10px;"
              "height:10px;margin:0 4px 0 10px}")


def write_plan(p: Mapping[str, Any], out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "plan.json"), "w", encoding="utf-8") as fh:
        json.dump(p, fh, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, "plan.html"), "w", encoding="utf-8") as fh:
        fh.write(page(p))


def page(p: Mapping[str, Any]) -> str:
    """plan.html: the answers, two plots (inline SVG, offline), the inputs and every run."""
    from simulator.svgchart import STYLE
    items = "".join(f"<li>{html.escape(a)}</li>" for a in answers(p))
    return (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>terway-sim plan</title>"
            f"<style>{STYLE}{PAGE_STYLE}</style><h1>Capacity plan</h1><ul>{items}</ul>"
            f"<h2>p99 network-ready against idle address-hours</h2>{pareto_plot(p)}"
            f"<p>Each dot a candidate (green: meets the target); the dashed line through the "
            f"lower left is the Pareto front; the ringed dot is the answer.</p>"
            f"<h2>API calls per pod</h2>{api_plot(p)}"
            f"<h2>Inputs</h2><pre>{html.escape(json.dumps(p['inputs'], indent=1))}</pre>"
            f"<h2>The runs behind the answers</h2>{runs_table(p)}</html>")


def pareto_plot(p: Mapping[str, Any]) -> str:
    from simulator.svgchart import Dot, Level, scatter_chart
    rec = p["recommendation"]["name"]
    dots = [Dot(c["name"], c["idle_ip_hours"], c["p99_network_ready"] or 0.0,
                "#2ca02c" if c["meets_target"] else "#d62728", c["name"] == rec)
            for c in p["candidates"] if c["p99_network_ready"] is not None]
    target = p["inputs"]["p99_target"]
    return scatter_chart("plan-pareto", dots, x_label="idle address-hours",
                         y_label="p99 network-ready",
                         levels=[Level(target, f"target {duration(target)}", "#555")], front=True)


def api_plot(p: Mapping[str, Any]) -> str:
    from simulator.svgchart import Bar, value_bar_chart
    actions = sorted({a for c in p["candidates"] for a in c["api_calls_by_action"]})
    color = {a: ACTION_COLORS[i % len(ACTION_COLORS)] for i, a in enumerate(actions)}
    bars = [Bar(c["name"], [(a, n / c["pods_ready"], color[a])
                            for a, n in sorted(c["api_calls_by_action"].items())])
            for c in p["candidates"] if c["pods_ready"]]
    keys = "".join(f"<span style='background:{color[a]}'></span>{html.escape(a)}"
                   for a in actions)
    return value_bar_chart("plan-api", bars, "calls/pod") + f"<p class='keys'>{keys}</p>"


def runs_table(p: Mapping[str, Any]) -> str:
    names = ["given vSwitches, min 0 / max 5"] + [f"ample vSwitch, {c['name']}"
                                                   for c in p["candidates"]]
    rows = []
    for name, r in zip(names, p["runs"], strict=True):
        cells = "".join(f"<td>{_cell(r['scalars'].get(c))}</td>" for c in RUN_COLUMNS)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    head = "".join(f"<th>{c}</th>" for c in RUN_COLUMNS)
    return f"<table><tr><th>run</th>{head}</tr>{''.join(rows)}</table>"


def _cell(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else html.escape(str(v))


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vswitch-cidr", action="append", required=True,
                   help="a vSwitch CIDR of the node's zone, IPv4 /16../29 inside 10.0.0.0/8 "
                        "(repeatable)")
    p.add_argument("--nodes", type=int, required=True, help="nodes in the cluster")
    p.add_argument("--instance-type", required=True, help="the nodes' ECS instance type")
    p.add_argument("--workload", default="steady",
                   help=f"preset ({', '.join(PRESETS)}) or a YAML file with a workload list")
    p.add_argument("--p99-target", default="5s", metavar="DURATION",
                   help="the p99 network-ready time the pool must keep")
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
    printer(f"plots and every run: {os.path.join(args.out, 'plan.html')}")
    return 0


__all__: Sequence[str] = ("add_plan_arguments", "main_plan", "plan")
