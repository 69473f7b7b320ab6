"""Simulator speed: simulated pod events per second, against references measured in the same run.

- reference 1: a bare simpy loop of timeouts with callbacks (the floor any simpy engine pays);
- reference 2: the same scenario with the no-op pool policy (the core still serves every pod,
  but never tops up or releases): the ratio isolates what pool upkeep costs;
- the large runs (skip: --quick): ``bench/large-cluster-10k.yaml`` (10,000 nodes x 24 h, about
  ten million pod events; the goal is <= 60 s on one core) and/or ``large-cluster`` (1,000 nodes
  x 24 h), each in a fresh child process so that its peak RSS (``ru_maxrss``) is its own.

Run: ``python -m bench.bench_sim [--quick] [--large 10k|1k|both] [--hours H] [--pypy ROOT]
[--profile [WHAT]] [--layers 10k|1k] [--replay 10k|1k]``. ``--layers`` times a large run by
layer (``bench.layers``); ``--replay`` times its pool core alone (``bench.replay``).
``--profile`` (cProfile, own time) profiles the 200-node run; ``--profile 10k --hours 2`` a
2-hour slice of the 10k run instead. ``--pypy ROOT`` (as root)
runs each large run a second time under the PyPy that ``scripts/pypy.sh`` prepares in ROOT, this
checkout mounted read-only into it; each child measures the bare simpy loop on its own runtime,
so every ratio is against a reference of the same interpreter, in the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import simpy

from bench import layers as bench_layers, replay as bench_replay
from simulator.engine import Run, RunResult
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
LARGE = {
    "10k": os.path.join(os.path.dirname(os.path.abspath(__file__)), "large-cluster-10k.yaml"),
    "1k": "large-cluster",
}
GOAL = {"10k": 60.0, "1k": 60.0}       # seconds of wall on one core, as the issues set them


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


def large_scenario(which: str, hours: float | None) -> Scenario:
    sc = load_scenario(LARGE[which])
    return sc if hours is None else sc.with_overrides(duration=hours * 3600.0)


def runtime() -> str:
    """This interpreter, as the figures name it."""
    py = "Python {}.{}".format(*sys.version_info[:2])
    if sys.implementation.name == "pypy":
        return "PyPy {}.{}.{} ({})".format(*sys.pypy_version_info[:3], py)  # type: ignore[attr-defined]
    return f"C{py}"


def metrics_digest(result: RunResult) -> str:
    """SHA-256 of the run's metrics.json content: equal digests, the same simulation."""
    text = json.dumps(result.metrics(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def child(which: str, hours: float | None, layers: bool = False,
          record_to: str | None = None, replay_from: str | None = None) -> int:
    """In a fresh process: the bare simpy loop and one large run on this interpreter; prints
    the figures as one JSON line (``layers``: the run timed by layer, ``bench.layers``;
    ``record_to``: the run with its core calls recorded into that file; ``replay_from``: those
    calls replayed, ``bench.replay``, and the file removed)."""
    if replay_from is not None:
        try:
            every = bench_replay.replay(replay_from)
            fewer = bench_replay.replay(replay_from, bench_replay.OBSERVATIONS)
        finally:
            os.unlink(replay_from)
        print(json.dumps({"all": every, "minimal": fewer, "runtime": runtime()}))
        return 0
    sc = large_scenario(which, hours)
    if record_to is not None:
        figures, result = bench_replay.record(sc, record_to)
        print(json.dumps({**figures, "metrics_sha256": metrics_digest(result)}))
        return 0
    if layers:
        figures, result = bench_layers.measure(sc)
        print(json.dumps({**figures, "runtime": runtime(),
                          "metrics_sha256": metrics_digest(result)}))
        return 0
    simpy_rate = bare_simpy()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    result = Run(sc).execute()
    wall = time.perf_counter() - t0
    print(json.dumps({"wall": wall, "cpu": time.process_time() - cpu0,
                      "events": int(result.scalars()["pod_events"]),
                      "nodes": sc.nodes, "hours": sc.duration / 3600.0,
                      "runtime": runtime(), "simpy_rate": simpy_rate,
                      "metrics_sha256": metrics_digest(result),
                      "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    return 0


def pypy_command(root: str, args: Sequence[str]) -> list[str]:
    """``args`` under the PyPy in ``root`` (``scripts/pypy.sh``): in a mount namespace of its
    own (the mounts go with the process), this checkout bind-mounted read-only at
    ``root/src`` and /proc mounted, then chroot."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = ('set -e; repo=$1 root=$2; shift 2; mount --bind "$repo" "$root/src"; '
              'mount -o remount,bind,ro "$root/src"; mount -t proc proc "$root/proc"; '
              'exec chroot "$root" env PYTHONPATH=/src:/opt/site pypy3 "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            repo, root, *args]


def _child(cmd: list[str]) -> dict[str, Any]:
    """Run one child (``--child``) and return the figures of its JSON line."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"bench_sim: a child failed (exit {done.returncode}): "
                         f"{' '.join(cmd[-6:])}\n{tail}")
    out = done.stdout
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def run_large(which: str, hours: float | None, pypy: str | None, layers: bool = False,
              replay: bool = False) -> None:
    """One large run per runtime, each in a fresh process (``layers``: timed by layer too;
    ``replay``: its core calls recorded, then replayed alone in another)."""
    args = ["-m", "bench.bench_sim", "--child", which]
    if hours is not None:
        args += ["--hours", str(hours)]
    runtimes: list[Callable[[list[str]], list[str]]] = [lambda a: [sys.executable, *a]]
    if pypy is not None:
        runtimes.append(lambda a: pypy_command(pypy, a))
    walls: dict[str, float] = {}
    digests = set()
    for command in runtimes:
        r = _child(command(args))
        whole = GOAL[which] if hours is None else None
        if replay:
            path = f"/tmp/terway-core-calls-{os.getpid()}.pickle"   # /tmp of the runtime
            rec = _child(command([*args, "--record-to", path]))
            rep = _child(command([*args, "--replay-from", path]))
            print("\n".join(bench_replay.report(rec, rep, rep["runtime"], whole, r)))
            continue
        if layers:
            timed = _child(command([*args, "--layers", which]))
            print("\n".join(bench_layers.report(timed, timed["runtime"], whole, r)))
            continue
        rate = r["events"] / r["wall"]
        goal = f" (goal: <= {GOAL[which]:.0f} s)" if hours is None else ""
        print(f"{which} ({r['nodes']:,} nodes x {r['hours']:g}h) on {r['runtime']}: "
              f"{r['wall']:8.1f}s wall ({r['cpu']:.1f}s CPU){goal}, {r['events']:,} pod "
              f"events, {rate:,.0f} events/s, ratio to bare simpy on the same runtime "
              f"{rate / r['simpy_rate']:.4f} (loop {r['simpy_rate']:,.0f}/s), "
              f"peak RSS {r['max_rss_kib'] / 1024:,.0f} MiB")
        walls[r["runtime"]] = r["wall"]
        digests.add(r["metrics_sha256"])
    if len(walls) == 2:
        first, second = walls.values()
        same = "identical" if len(digests) == 1 else "DIFFERENT"
        print(f"{which}: wall ratio {' / '.join(walls)} = {first / second:.2f}; "
              f"metrics.json {same} on both")


def profile(sc: Scenario) -> None:
    prof = cProfile.Profile()
    prof.enable()
    rate, wall, n = pod_events_per_s(sc)
    prof.disable()
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    print(f"profiled: {n:,} pod events in {wall:.1f}s ({rate:,.0f} events/s under cProfile)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_sim")
    ap.add_argument("--quick", action="store_true", help="skip the large runs")
    ap.add_argument("--large", choices=("10k", "1k", "both"), default="10k",
                    help="which large run(s): 10,000 or 1,000 nodes x 24 h (default: 10k)")
    ap.add_argument("--hours", type=float, default=None,
                    help="simulate only this many hours of the large run(s)")
    ap.add_argument("--profile", nargs="?", const="mid", choices=("mid", "10k", "1k"),
                    help="cProfile the 200-node run (or a large one, in process) and stop")
    ap.add_argument("--pypy", metavar="ROOT",
                    help="also run the large run(s) under the PyPy in ROOT (scripts/pypy.sh; "
                         "needs root)")
    ap.add_argument("--layers", choices=tuple(LARGE),
                    help="time a large run by layer (pool core, cloud model, simulator + "
                         "simpy; with --pypy on both runtimes) and stop")
    ap.add_argument("--replay", choices=tuple(LARGE),
                    help="record a large run's calls into its pool cores, replay them alone "
                         "into fresh cores and time that (with --pypy on both runtimes); stop")
    ap.add_argument("--child", choices=tuple(LARGE), help=argparse.SUPPRESS)
    ap.add_argument("--record-to", help=argparse.SUPPRESS)
    ap.add_argument("--replay-from", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pypy is not None:
        why = pypy_unusable(args.pypy)
        if why:
            ap.error(f"--pypy {args.pypy}: {why}")
    if args.child:
        return child(args.child, args.hours, args.layers is not None, args.record_to,
                     args.replay_from)
    if args.layers:
        run_large(args.layers, args.hours, args.pypy, layers=True)
        return 0
    if args.replay:
        run_large(args.replay, args.hours, args.pypy, replay=True)
        return 0
    if args.profile:
        profile(parse_scenario(MID) if args.profile == "mid"
                else large_scenario(args.profile, args.hours))
        return 0
    simpy_rate = bare_simpy()
    print(f"bare simpy loop          : {simpy_rate:12,.0f} events/s (reference)")
    mid = parse_scenario(MID)
    rate, wall, n = pod_events_per_s(mid)
    noop_rate, noop_wall, _ = pod_events_per_s(mid, PolicySpec("noop", "noop"))
    print(f"200 nodes x 2h, terway    : {rate:12,.0f} pod events/s ({n:,} events, {wall:.1f}s)")
    print(f"200 nodes x 2h, no-op pool: {noop_rate:12,.0f} pod events/s ({noop_wall:.1f}s)")
    print(f"ratio terway / no-op pool : {rate / noop_rate:12.2f}")
    print(f"ratio terway / bare simpy : {rate / simpy_rate:12.4f}")
    if not args.quick:
        for which in ("1k", "10k") if args.large == "both" else (args.large,):
            run_large(which, args.hours, args.pypy)
    return 0


def pypy_unusable(root: str) -> str | None:
    """Why ``--pypy root`` cannot run (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (a mount namespace and chroot)"
    if not os.path.isfile(os.path.join(root, ".done")):
        return "not a root scripts/pypy.sh finished (run it: it prints the root to pass)"
    return None


if __name__ == "__main__":
    sys.exit(main())
