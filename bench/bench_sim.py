"""Simulator speed: simulated pod events per second, against references measured in the same run.

- reference 1: a bare simpy loop of timeouts with callbacks (the floor any simpy engine pays);
- reference 2: the same scenario with the no-op pool policy (the core still serves every pod,
  but never tops up or releases): the ratio isolates what pool upkeep costs;
- the ``large-cluster`` scenario (1,000 nodes x 24 h): wall time and events/s (skip: --quick).

Run: ``python -m bench.bench_sim [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Sequence

import simpy

from simulator.engine import Run
from simulator.scenario import PolicySpec, Scenario, load_scenario, parse_scenario

MID = {
    "name": "bench-mid", "seed": 1, "duration": "2h", "sample_interval": "5m",
    "cluster": {"zone": "cn-hangzhou-k", "nodes": 200, "instance_type": "ecs.g6.2xlarge",
                "vswitches": [{"id": "vsw-a", "cidr": "10.0.0.0/17"}]},
    "eni_conf": {"min_pool_size": 2, "max_pool_size": 10,
                 "vswitches": {"cn-hangzhou-k": ["vsw-a"]}},
    "latency": {"fast": True},
    "workload": [{"kind": "churn", "name": "jobs", "rate": "6/s",
                  "lifetime": {"dist": "exp", "mean": "10m"}}],
    "invariants": {"check_interval": "30m"},
}


def bare_simpy(n: int = 300_000) -> float:
    """Events per second of simpy timeouts with one callback each."""
    env = simpy.Environment()
    count = 0

    def tick(_e: object) -> None:
        nonlocal count
        count += 1
        if count < n:
            env.timeout(1.0).callbacks.append(tick)

    env.timeout(1.0).callbacks.append(tick)
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def pod_events_per_s(sc: Scenario, policy: PolicySpec | None = None) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    result = Run(sc, policy).execute()
    wall = time.perf_counter() - t0
    events = int(result.scalars()["pod_events"])
    return events / wall, wall, events


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_sim")
    ap.add_argument("--quick", action="store_true", help="skip large-cluster")
    ap.add_argument("--profile", action="store_true", help="profile the mid run")
    args = ap.parse_args(argv)
    simpy_rate = bare_simpy()
    print(f"bare simpy loop          : {simpy_rate:12,.0f} events/s (reference)")
    mid = parse_scenario(MID)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
    rate, wall, n = pod_events_per_s(mid)
    if args.profile:
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    noop_rate, noop_wall, _ = pod_events_per_s(mid, PolicySpec("noop", "noop"))
    print(f"200 nodes x 2h, terway    : {rate:12,.0f} pod events/s ({n:,} events, {wall:.1f}s)")
    print(f"200 nodes x 2h, no-op pool: {noop_rate:12,.0f} pod events/s ({noop_wall:.1f}s)")
    print(f"ratio terway / no-op pool : {rate / noop_rate:12.2f}")
    print(f"ratio terway / bare simpy : {rate / simpy_rate:12.4f}")
    if not args.quick:
        sc = load_scenario("large-cluster")
        lrate, lwall, ln = pod_events_per_s(sc)
        print(f"large-cluster (1000 x 24h): {lwall:8.1f}s wall, {ln:,} pod events, "
              f"{lrate:,.0f} events/s (goal: <= 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
