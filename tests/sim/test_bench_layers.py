"""``bench_sim --layers``: timing a run by layer changes neither the run nor the code after it.

Why: docs/performance-sim.md argues from these figures what no simulator change can remove (the
pool core's share); they mean that only if the timed run is the same simulation, every core call
the simulator makes is counted, and the patched names are put back.
"""

from __future__ import annotations

import simulator.node as sim_node
from bench import layers
from bench.bench_sim import metrics_digest
from simulator.engine import Run
from simulator.node import SimNode
from simulator.scenario import load_scenario
from terway.ipam import execute, feed


def test_a_timed_run_is_the_same_run_and_the_patches_are_undone() -> None:
    sc = load_scenario("steady").with_overrides(duration=1800.0)
    start = SimNode.start
    figures, timed = layers.measure(sc)
    assert SimNode.start is start
    assert vars(sim_node)["feed"] is feed and vars(sim_node)["execute"] is execute
    plain = Run(sc).execute()
    assert metrics_digest(timed) == metrics_digest(plain)
    assert figures["events"] == int(plain.scalars()["pod_events"]) > 0
    assert figures["calls"]["core"] >= figures["events"]      # at least one call per pod event
    assert figures["calls"]["cloud"] > 0
    seconds = figures["seconds"]
    assert min(seconds.values()) >= 0.0
    assert abs(sum(seconds.values()) + figures["wrapper_seconds"] - figures["wall"]) < 1e-6
    lines = layers.report(figures, "CPython", 60.0)
    assert "pool core (terwayd's code)" in lines[1] and "simulator + simpy" in lines[3]


def test_the_report_bounds_the_core_by_what_the_timing_added() -> None:
    figures = {"wall": 10.0, "events": 1000, "wrapper_seconds": 0.5,
               "seconds": {"core": 4.0, "cloud": 1.0, "rest": 4.5},
               "calls": {"core": 4000, "cloud": 100}, "metrics_sha256": "a"}
    same = layers.report(figures, "CPython", None, {"wall": 8.5, "metrics_sha256": "a"})
    assert same[-1] == ("  untimed: 8.5s (the same metrics); the timing added 1.5s; were all "
                        "of it inside the core, the core took >= 2.5s")
    other = layers.report(figures, "CPython", None, {"wall": 8.5, "metrics_sha256": "b"})
    assert "(DIFFERENT metrics)" in other[-1]
