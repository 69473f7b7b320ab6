"""Where a simulation's time goes, by layer: how much of it no simulator change can remove.

Three layers, each timed at its outermost call (a call made from inside the same layer is not
counted twice):

- **core**: the pool code ``terwayd`` runs too (every ``IpamCore`` method the simulator calls,
  and ``feed``, which hands the core a command's result);
- **cloud**: the emulated cloud executing a command (``terway.ipam.execute`` on the model);
- **rest**: the simulator's own code (scheduler, kubelet, node driver, collectors) and simpy.

The timing wrapper's own cost is measured in the same run and taken out of ``rest``. Used by
``python -m bench.bench_sim --layers 10k|1k [--hours H] [--pypy ROOT]``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import simulator.node as sim_node
from bench.intercept import CallsThrough
from simulator.engine import Run, RunResult
from simulator.node import SimNode
from simulator.scenario import Scenario
from terway.ipam import execute, feed

LAYERS = ("core", "cloud")


class _Clock:
    """Seconds and calls per layer, counted at the outermost call only."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(LAYERS, 0.0)
        self.calls = dict.fromkeys(LAYERS, 0)
        self.inside = False

    def wrap(self, fn: Callable[..., Any], layer: str) -> Callable[..., Any]:
        clock = time.perf_counter

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.inside:
                return fn(*args, **kwargs)
            self.inside = True
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[layer] += clock() - t0
                self.calls[layer] += 1
                self.inside = False
        return timed


def _timed_core(core: Any, clock: _Clock) -> CallsThrough:
    """A node's core with each method the simulator calls timed as the core layer."""
    return CallsThrough(core, lambda _name, fn: clock.wrap(fn, "core"))


def _wrapper_cost(n: int = 200_000) -> float:
    """Seconds a timed call through ``_timed_core`` adds to a direct one."""
    class Nothing:
        def call(self) -> None:
            return None

    direct, timed = Nothing(), _timed_core(Nothing(), _Clock())
    t0 = time.perf_counter()
    for _ in range(n):
        timed.call()
    through = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        direct.call()
    return max(0.0, through - (time.perf_counter() - t0) / n)


def measure(sc: Scenario) -> tuple[dict[str, Any], RunResult]:
    """Run ``sc`` with the layers timed: the figures (seconds, calls, pod events) and the
    run's result."""
    clock = _Clock()
    start = SimNode.start
    saved: dict[str, tuple[Callable[..., Any], str]] = {   # the names node.py calls
        "feed": (feed, "core"), "execute": (execute, "cloud")}

    def timed_start(node: SimNode, restore_from_cloud: bool = False) -> None:
        start(node, restore_from_cloud)
        node.core = _timed_core(node.core, clock)  # type: ignore[assignment]

    try:
        SimNode.start = timed_start  # type: ignore[method-assign, assignment]
        for name, (fn, layer) in saved.items():
            setattr(sim_node, name, clock.wrap(fn, layer))
        t0 = time.perf_counter()
        result = Run(sc).execute()
        wall = time.perf_counter() - t0
    finally:
        SimNode.start = start  # type: ignore[method-assign]
        for name, (fn, _layer) in saved.items():
            setattr(sim_node, name, fn)
    overhead = _wrapper_cost() * sum(clock.calls.values())
    rest = wall - sum(clock.seconds.values()) - overhead
    return {"wall": wall, "events": int(result.scalars()["pod_events"]),
            "seconds": {**clock.seconds, "rest": rest}, "calls": clock.calls,
            "wrapper_seconds": overhead}, result


def report(figures: dict[str, Any], runtime: str, goal: float | None,
           untimed: dict[str, Any] | None = None) -> list[str]:
    """Lines for the terminal: each layer's share and time per pod event (against what the
    goal, seconds for the whole run, allows per event). With the ``untimed`` run's figures
    (``bench_sim --child``): what the timing added, the core's floor were all of it inside the
    core, and whether both runs gave the same metrics."""
    events, wall = figures["events"], figures["wall"]
    allows = "" if goal is None else f"; {goal:.0f} s allows {goal / events * 1e6:.1f} us"
    lines = [f"{runtime}: {wall:.1f}s wall timed, {events:,} pod events "
             f"({wall / events * 1e6:.1f} us each{allows}); the timing wrappers' own "
             f"{figures['wrapper_seconds']:.1f}s left out"]
    names = {"core": "pool core (terwayd's code)", "cloud": "cloud model",
             "rest": "simulator + simpy"}
    for layer, seconds in figures["seconds"].items():
        calls = figures["calls"].get(layer)
        per_call = f", {calls / events:.2f} calls per pod event" if calls else ""
        lines.append(f"  {names[layer]:28s} {seconds:8.1f}s {seconds / wall:5.0%}  "
                     f"{seconds / events * 1e6:5.1f} us per pod event{per_call}")
    if untimed is not None:
        added = wall - untimed["wall"]
        floor = figures["seconds"]["core"] - max(0.0, added)
        same = "the same" if untimed["metrics_sha256"] == figures["metrics_sha256"] \
            else "DIFFERENT"
        lines.append(f"  untimed: {untimed['wall']:.1f}s ({same} metrics); the timing added "
                     f"{added:.1f}s; were all of it inside the core, the core took >= "
                     f"{floor:.1f}s")
    return lines
