"""``terway-sim``: run scenarios, check their expectations, plan capacity, sweep parameters.

Exit status: 0 all expectations hold, 1 an expectation failed or an invariant broke, 2 bad input.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Callable, Sequence

from simulator.humanize import count, duration
from simulator.units import SpecError
from terway import cliargs

# the wall clock of a whole ``run`` (peers, report and plots included); tests replace it
clock: Callable[[], float] = time.monotonic


def _cmd_run(args: argparse.Namespace) -> int:
    from simulator.report import write_outputs
    from simulator.runner import run_scenario
    from simulator.scenario import load_scenario
    if args.jobs < 1:
        raise SpecError("--jobs", f"must be at least 1, got {args.jobs}")
    wall0 = clock()
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = scenario.with_overrides(seed=args.seed)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    outcome = run_scenario(scenario, progress=progress, with_peers=not args.no_peers,
                           jobs=args.jobs)
    paths = write_outputs(outcome, args.out, plots=not args.no_plots)
    main = outcome.main
    extra = [f"{len(outcome.peers)} peer{'s' if len(outcome.peers) != 1 else ''}"] \
        if outcome.peers else []
    extra += [] if args.no_plots else ["plots"]
    print(f"{scenario.name}: simulated {duration(main.sim_seconds)} in {clock() - wall0:.2f}s wall "
          f"(main {main.wall_seconds:.2f}s{''.join(', ' + e for e in extra)}, report); "
          f"{count(main.scalars()['pod_events'])} pod events; report {paths['report']}")
    for v in outcome.verdicts:
        print(f"  [{'pass' if v.passed else 'FAIL'}] {v.expectation.text}  -> {v.observed}")
    if main.violation is not None:
        print(main.violation.report(), file=sys.stderr)
    if not outcome.passed:
        print(f"{scenario.name}: FAILED:", file=sys.stderr)
        for f in outcome.failures:
            print(f"  {f.splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from simulator.scenario import load_scenario
    bad = 0
    for path in args.scenarios:
        try:
            sc = load_scenario(path)
            print(f"ok  {path}: {sc.name} ({len(sc.expectations)} expectations)")
        except SpecError as e:
            bad += 1
            count = len(e.problems)
            print(f"BAD {path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
            for problem in e.problems:
                print(f"  {problem}", file=sys.stderr)
    return 2 if bad else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from simulator.scenario import load_scenario, scenarios_dir
    for path in sorted(glob.glob(os.path.join(scenarios_dir(), "*.yaml"))):
        sc = load_scenario(path)
        first = sc.description.strip().splitlines()[0] if sc.description.strip() else ""
        print(f"{sc.name:<20} {first}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from simulator.planner import main_plan
    return main_plan(args)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from simulator.sweep import main_sweep
    return main_sweep(args)


def _cmd_leads(args: argparse.Namespace) -> int:
    """record / check / table: the gate on the adaptive policy's standing (simulator/leads.py);
    each writes DIR/rankings.md, every scenario's ranking table."""
    from simulator import leads
    runs = leads.load_runs(args.dir)
    if args.verb == "record":
        previous = leads.load_leads(args.leads) if os.path.exists(args.leads) else None
        doc = leads.record(runs, previous)
        leads.write_leads(doc, args.leads)
        print(f"recorded {len(doc['scenarios'])} scenarios in {args.leads}")
    elif args.verb == "check":
        failures, notes = leads.check(runs, leads.load_leads(args.leads), args.only or ())
        for line in notes:
            print(line)
        for line in failures:
            print(f"REGRESSION {line}", file=sys.stderr)
    print(f"rankings: {leads.write_markdown(runs, args.dir)}")
    return 1 if args.verb == "check" and failures else 0


def _add_leads(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ld = sub.add_parser("leads", help="rank every scenario's runs; record or check where the "
                                      "adaptive policy leads")
    verbs = ld.add_subparsers(dest="verb", required=True)
    for verb, what in (("check", "fail (exit 1) where the adaptive policy no longer leads on an "
                                 "axis the leads file records"),
                       ("record", "rewrite the leads file from the runs (other scenarios in it "
                                  "are kept)"),
                       ("table", "only write DIR/rankings.md")):
        v = verbs.add_parser(verb, help=what)
        v.add_argument("dir", metavar="DIR", help="where the scenarios ran (DIR/*/metrics.json)")
        if verb != "table":
            v.add_argument("leads", metavar="LEADS", help="the leads file "
                                                          "(scenarios/leads.json)")
        if verb == "check":
            v.add_argument("--only", action="append", metavar="SCENARIO",
                           help="check only this scenario (repeat for more; default: every "
                                "scenario of the leads file)")
    ld.set_defaults(fn=_cmd_leads)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="terway-sim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a scenario and check its expectations")
    r.add_argument("scenario", help="a scenario file, or a name from scenarios/")
    r.add_argument("--out", required=True, metavar="DIR", help="output directory")
    r.add_argument("--seed", type=int, default=None,
                   help="override the scenario's seed (default: the scenario's)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress on stderr: a bar redrawn in place on a terminal, one line "
                        "per tenth of the run elsewhere (default: on when stderr is a "
                        "terminal)")
    r.add_argument("--no-peers", action="store_true", help="skip the peer policies")
    r.add_argument("--no-plots", action="store_true", help="skip PNG plots")
    r.add_argument("--jobs", type=int, default=1, metavar="N", help="run peers in N processes")
    r.set_defaults(fn=_cmd_run)
    v = sub.add_parser("validate", help="check scenario files against the schema")
    v.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                   help="scenario files, or names from scenarios/")
    v.set_defaults(fn=_cmd_validate)
    ls = sub.add_parser("list", help="the scenario library")
    ls.set_defaults(fn=_cmd_list)
    from simulator.planner import add_plan_arguments
    from simulator.sweep import add_sweep_arguments
    add_plan_arguments(sub.add_parser("plan", help="capacity planning from simulations"))
    sub.choices["plan"].set_defaults(fn=_cmd_plan)
    add_sweep_arguments(sub.add_parser("sweep", help="a scenario over seeds and parameters"))
    sub.choices["sweep"].set_defaults(fn=_cmd_sweep)
    _add_leads(sub)
    return cliargs.finish(p)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except SpecError as e:
        for problem in e.problems:
            print(f"terway-sim: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
