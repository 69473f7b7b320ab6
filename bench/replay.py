"""The pool core alone: a run's calls into its cores, recorded, then replayed with nothing else.

Why: ``bench.layers`` times the core inside a run, where its timers add cost and the
simulator's objects share the caches. This answers the same question without either: record
every call the simulator makes into each node's ``IpamCore`` (the constructor's arguments too),
then, in a fresh process, make exactly those calls, in the same order, into fresh cores, with
no simulator, cloud or simpy around them. A simulator that runs the daemon's pool code must make
at least these calls, so the replay's time is a floor for the whole run. The replay checks it
reproduced the run: each core's final state (counts, and every address with its owner) digests
the same.

Observation calls (``stats``, ``enis``, ``condition``, …: the driver and the collectors reading
the core) change nothing; a second replay leaves them out, the floor of a driver that never
looks. Used by ``python -m bench.bench_sim --replay 10k|1k [--hours H] [--pypy ROOT]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any

import simulator.node as sim_node
from bench.intercept import CallsThrough
from simulator.engine import Run, RunResult, _sparse_gc
from simulator.scenario import Scenario
from terway.ipam.pool import IpamCore

OBSERVATIONS = frozenset({"stats", "enis", "condition", "pending_keys", "mapping",
                          "allocation", "owner_keys", "pending_reason"})
NEW = "__new__"               # a record that makes core number ``idx``
CHUNK = 200_000               # calls per pickle in the record file

Record = tuple[int, str, tuple[Any, ...]]


class _Recorder:
    """Appends each call to a list; writes the list to ``out`` a chunk at a time."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.calls: list[Record] = []
        self.counts: Counter[str] = Counter()
        self.cores: list[IpamCore] = []

    def add(self, rec: Record) -> None:
        self.calls.append(rec)
        self.counts[rec[1]] += 1
        if len(self.calls) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.calls:
            pickle.dump(self.calls, self.out, protocol=pickle.HIGHEST_PROTOCOL)
            self.calls = []


def _recording_core(core: IpamCore, idx: int, rec: _Recorder) -> CallsThrough:
    """A node's core with every method call the simulator makes recorded, then made."""
    add = rec.add

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any) -> Any:
            add((idx, name, args))
            return fn(*args)
        return recorded
    return CallsThrough(core, wrap)


def digest(cores: list[IpamCore]) -> str:
    """SHA-256 of every core's final state: its counts and each address with its owner."""
    state = [[dataclasses.astuple(c.stats()),
              sorted((r.status, r.pod_key, r.eni_id, r.ip) for r in c.mapping())]
             for c in cores]
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()


def record(sc: Scenario, path: str) -> tuple[dict[str, Any], RunResult]:
    """Run ``sc`` with its cores' calls recorded into ``path`` (root-only): the run's pod
    events, the calls per method and the cores' final digest (also the file's last pickle),
    and the run's result."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        rec = _Recorder(out)
        names = vars(sim_node)               # the name node.py makes its cores with
        real = names["IpamCore"]

        def make(settings: Any, *, id_prefix: str, rng: random.Random | None = None,
                 policy: Any = None) -> Any:
            idx = len(rec.cores)
            state = rng.getstate() if rng is not None else None
            rec.add((idx, NEW, (settings, id_prefix, state, policy)))
            core = real(settings, id_prefix=id_prefix, rng=rng, policy=policy)
            rec.cores.append(core)
            return _recording_core(core, idx, rec)

        names["IpamCore"] = make
        try:
            result = Run(sc).execute()
        finally:
            names["IpamCore"] = real
        rec.flush()
        final = digest(rec.cores)
        pickle.dump(final, out)
    return {"events": int(result.scalars()["pod_events"]), "calls": dict(rec.counts),
            "digest": final, "cores": len(rec.cores), "bytes": os.path.getsize(path)}, result


def _chunks(path: str) -> Iterator[Any]:
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return


def _bind(chunk: list[Record], cores: list[IpamCore], skip: frozenset[str],
          ) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """The chunk's calls as (bound method, arguments); new cores made here, untimed."""
    calls = []
    for idx, name, args in chunk:
        if name == NEW:
            settings, prefix, state, policy = args
            rng = None
            if state is not None:
                rng = random.Random()
                rng.setstate(state)
            cores.append(IpamCore(settings, id_prefix=prefix, rng=rng, policy=policy))
        elif name not in skip:
            calls.append((getattr(cores[idx], name), args))
    return calls


def _nothing(*_args: Any) -> None:
    return None


def replay(path: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Make the recorded calls (less ``skip``) into fresh cores; seconds spent in them (file
    reading and binding left out), seconds the same loop takes calling a no-op instead, and
    whether the final state digests as the run's did."""
    cores: list[IpamCore] = []
    spent = loop = 0.0
    calls_made = 0
    final = None
    with _sparse_gc():                     # the collector as in a run
        for chunk in _chunks(path):
            if isinstance(chunk, str):
                final = chunk
                continue
            calls = _bind(chunk, cores, skip)
            calls_made += len(calls)
            t0 = time.perf_counter()
            for fn, args in calls:
                fn(*args)
            spent += time.perf_counter() - t0
            t0 = time.perf_counter()
            for _fn, args in calls:
                _nothing(*args)
            loop += time.perf_counter() - t0
    return {"seconds": spent, "loop_seconds": loop, "calls": calls_made,
            "same": final is not None and digest(cores) == final}


def report(rec: dict[str, Any], rep: dict[str, Any], runtime: str, goal: float | None,
           untimed: dict[str, Any] | None = None) -> list[str]:
    """Lines for the terminal: the replay's seconds and µs per pod event, with and without the
    observation calls, against the whole untimed run and what the goal allows per event."""
    events = rec["events"]
    every, fewer = rep["all"], rep["minimal"]
    same = "yes" if every["same"] and fewer["same"] else "NO"
    watched = sum(n for name, n in rec["calls"].items() if name in OBSERVATIONS)
    lines = [f"{runtime}: the pool core alone, {every['calls']:,} calls into {rec['cores']:,} "
             f"cores recorded from the run ({events:,} pod events) and replayed with nothing "
             f"else: {every['seconds']:.1f}s ({every['seconds'] / events * 1e6:.1f} us per pod "
             f"event; the replay loop's own {every['loop_seconds']:.2f}s included)",
             f"  without the {watched:,} observation calls: {fewer['seconds']:.1f}s; "
             f"final state as in the run: {same}"]
    if untimed is not None:
        share = every["seconds"] / untimed["wall"]
        lines.append(f"  the whole run, untimed: {untimed['wall']:.1f}s; the core alone is "
                     f"{share:.0%} of it")
    if goal is not None:                   # the faster of the two replays: a floor
        floor = min(every["seconds"], fewer["seconds"])
        lines.append(f"  the goal, {goal:.0f}s for the whole run, allows "
                     f"{goal / events * 1e6:.1f} us per pod event; the core alone takes "
                     f"{floor / goal:.1f}x that")
    return lines
