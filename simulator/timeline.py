"""The story of a run: its key moments and a one-line headline, from what the run collected.

Gauges (pods waiting, addresses left) are sampled every ``sample_interval``, so the moments read
from them are exact to one sample; log moments (first IpNotEnough) and events are exact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.engine import RunResult
from simulator.humanize import clock, count, duration, plural
from simulator.scenario import EventSpec

_VSWITCH_IN_LOG = re.compile(r'VSwitch \\*"(vsw-[0-9a-z]+)')
_LOG_TROUBLE = ("QuotaExceeded", "Throttling", "EniPerInstanceLimitExceeded")


@dataclass(frozen=True)
class Moment:
    t: float
    what: str          # a few words: "first IpNotEnough"
    detail: str        # one sentence with figures and units
    kind: str          # "start" | "trouble" | "remedy" | "recovered" | "end"


def first_at(result: RunResult, key: str, test: Callable[[float], bool],
             since: float = 0.0) -> float | None:
    """The first sample time ≥ ``since`` at which series ``key`` passes ``test``."""
    col = result.collector
    values = col.series.get(key, [])
    for t, v in zip(col.t, values, strict=False):
        if t >= since and not math.isnan(v) and test(v):
            return t
    return None


def capacities(result: RunResult) -> dict[str, int]:
    """Usable addresses per pod vSwitch label: the scenario's and those events add."""
    sc = result.scenario
    out = {v.vswitch_id: v.usable for v in sc.vswitches}
    for ev in sc.events:
        if ev.action == "add_vswitch":
            out[ev.params["vswitch"].vswitch_id] = ev.params["vswitch"].usable
    return out


def ip_not_enough_vswitch(result: RunResult) -> str | None:
    """The label of the vSwitch named by the first IpNotEnough log line."""
    labels = {vid: label for label, vid in result.vswitch_labels.items()}
    for line in result.log.lines:
        if "IpNotEnough" in line:
            match = _VSWITCH_IN_LOG.search(line)
            return labels.get(match.group(1), match.group(1)) if match else None
    return None


def describe_event(ev: EventSpec, short: bool = False) -> str:
    """What an event does, in words: "adding vsw-big (8,188 addresses)"."""
    p = ev.params
    if ev.action == "add_vswitch":
        v = p["vswitch"]
        if short:
            return f"adding {v.vswitch_id} ({count(v.usable)} addresses)"
        how = "; daemons restarted" if p.get("apply") == "restart" else ""
        return f"adding {v.vswitch_id} ({v.cidr}, {count(v.usable)} addresses{how})"
    if ev.action == "set_config":
        return "changing eni_conf (" + ", ".join(sorted(p.get("eni_conf", {}))) + ")"
    if ev.action == "restart_daemons":
        n = p.get("nodes", "all")
        return "restarting every daemon" if n == "all" else f"restarting {plural(n, 'daemon')}"
    if ev.action in ("add_nodes", "remove_nodes"):
        return f"{ev.action.split('_')[0].replace('add', 'adding').replace('remove', 'removing')}" \
               f" {plural(p['count'], 'node')}"
    if ev.action == "set_faults":
        return f"setting {plural(len(p['faults']), 'fault rule')}" if p.get("faults") \
            else "clearing the fault rules"
    if ev.action == "scale":
        return f"scaling {p['workload']} to {plural(p['replicas'], 'replica')}"
    return ev.action


def trouble_start(result: RunResult) -> tuple[float, str] | None:
    """When and what went wrong first: IpNotEnough, another cloud refusal, or a violation."""
    first = result.log.first
    if "IpNotEnough" in first:
        return first["IpNotEnough"], "IpNotEnough"
    found = [(first[k], k) for k in _LOG_TROUBLE if k in first]
    if found:
        return min(found)
    if result.violation is not None:
        return result.violation.now, "invariant violation"
    return None


def remedy(result: RunResult, since: float) -> EventSpec | None:
    """The first scheduled event at or after the trouble began (the operator's answer)."""
    later = [ev for ev in result.scenario.events if ev.at >= since]
    return min(later, key=lambda ev: ev.at) if later else None


def recovered(result: RunResult, since: float) -> Moment | None:
    """Every waiting pod Running again (or every one a vSwitch can serve), after ``since``."""
    t = first_at(result, "pending_pods", lambda v: v == 0, since)
    if t is not None:
        running = _at(result, "running_pods", t)
        return Moment(t, "all pods Running", f"no pod waits for an address; "
                      f"{plural(running, 'pod')} Running", "recovered")
    t = first_at(result, "pending_pods_with_room", lambda v: v == 0, since)
    if t is not None:
        stuck = _at(result, "stuck_pods", t)
        return Moment(t, "every pod a vSwitch can serve Running",
                      f"{plural(stuck, 'pod')} still {'waits' if stuck == 1 else 'wait'} on "
                      "nodes whose ENI slots all sit on a vSwitch with no address left",
                      "recovered")
    return None


def _at(result: RunResult, key: str, t: float) -> float:
    col = result.collector
    return col.series[key][col.t.index(t)]


def _peak(result: RunResult, key: str, since: float = 0.0,
          until: float = math.inf) -> tuple[float, float]:
    """(time, value) of the highest sample of ``key`` in [since, until]; (nan, 0) if none."""
    col = result.collector
    best = (math.nan, 0.0)
    for t, v in zip(col.t, col.series.get(key, []), strict=False):
        if since <= t <= until and not math.isnan(v) and v > best[1]:
            best = (t, v)
    return best


def moments(result: RunResult) -> list[Moment]:
    """The key moments of the run, in time order."""
    out = [_start(result)]
    out += _log_moments(result)
    out += _dry_moments(result)
    out += _event_moments(result)
    out += _waiting_moments(result)
    if result.violation is not None:
        out.append(Moment(result.violation.now, "invariant violation", result.violation.what,
                          "trouble"))
    out.append(_end(result))
    return sorted(out, key=lambda m: m.t)


def _start(result: RunResult) -> Moment:
    sc = result.scenario
    caps = ", ".join(f"{v.vswitch_id} ({count(v.usable)} addresses)" for v in sc.vswitches)
    return Moment(0.0, "start", f"{plural(sc.nodes, 'node')} ({sc.instance_type}), pool policy "
                  f"{result.policy.name}; pod vSwitches: {caps}", "start")


def _log_moments(result: RunResult) -> list[Moment]:
    counts = result.log.counts
    out = []
    for key, t in sorted(result.log.first.items(), key=lambda kv: kv[1]):
        where = ip_not_enough_vswitch(result) if key == "IpNotEnough" else None
        detail = (f"the cloud refused addresses on {where}" if where else
                  f"the cloud answered {key}") + f"; {plural(counts[key], 'such log line')} in all"
        out.append(Moment(t, f"first {key}", detail, "trouble"))
    return out


def _dry_moments(result: RunResult) -> list[Moment]:
    out = []
    caps = capacities(result)
    for label in result.vswitch_labels:
        t = first_at(result, f"available_ips[{label}]", lambda v: v == 0)
        if t is not None:
            out.append(Moment(t, f"{label} dry", f"no address left on {label} "
                              f"({count(caps.get(label, math.nan))} of "
                              f"{count(caps.get(label, math.nan))} taken)", "trouble"))
    return out


def _event_moments(result: RunResult) -> list[Moment]:
    start = trouble_start(result)
    fix = remedy(result, start[0]) if start else None
    out = []
    for ev in result.scenario.events:
        if ev.at > result.sim_seconds:
            continue
        out.append(Moment(ev.at, ev.name or ev.action, describe_event(ev),
                          "remedy" if ev is fix else "event"))
        if ev.action == "add_vswitch":
            label = ev.params["vswitch"].vswitch_id
            t = first_at(result, f"used_ips[{label}]", lambda v: v > 0, ev.at)
            if t is not None:
                out.append(Moment(t, f"first pod on {label}",
                                  f"a pod got an address from {label}", "remedy"))
    return out


def _waiting_moments(result: RunResult) -> list[Moment]:
    out = []
    t, peak = _peak(result, "pending_pods")
    if peak:
        out.append(Moment(t, "most pods waiting", f"{plural(peak, 'pod')} ContainerCreating, "
                          "waiting for an address", "trouble" if trouble_start(result) else
                          "event"))
    t_stuck = first_at(result, "stuck_pods", lambda v: v > 0)
    if t_stuck is not None:
        out.append(Moment(t_stuck, "first stuck pod", "a pod waits on a node no vSwitch can "
                          "help (every ENI slot on a vSwitch with no address left)", "trouble"))
    start = trouble_start(result)
    if start is not None:
        fix = remedy(result, start[0])
        back = recovered(result, fix.at if fix else start[0])
        if back is not None:
            out.append(back)
    return out


def _end(result: RunResult) -> Moment:
    col = result.collector
    running = col.series["running_pods"][-1] if col.t else 0
    waiting = col.series["pending_pods"][-1] if col.t else 0
    stuck = col.series["stuck_pods"][-1] if col.t else 0
    extra = f" ({count(stuck)} stuck: no vSwitch can help their node)" if stuck else ""
    return Moment(result.sim_seconds, "end", f"{plural(running, 'pod')} Running, "
                  f"{count(waiting)} waiting{extra}; {plural(col.pods_ready, 'pod')} became "
                  "Running in all", "end")


def headline(result: RunResult) -> str:
    """One line: what went wrong, how bad, the remedy and the recovery — or, on a quiet run,
    how many pods ran and how fast."""
    start = trouble_start(result)
    if start is None:
        return _quiet_headline(result)
    t0, what = start
    where = ip_not_enough_vswitch(result) if what == "IpNotEnough" else None
    lead = f"{what} at {clock(t0)}" + (f" on {where}" if where else "")
    fix = remedy(result, t0)
    back = recovered(result, fix.at if fix else t0)
    _, peak = _peak(result, "pending_pods", t0, back.t if back else math.inf)
    longest = result.collector.scalars()["max_network_ready"]
    if peak:
        lead += f": up to {plural(peak, 'pod')} waiting for an address, the longest " \
                f"{duration(longest)}"
    parts = [lead]
    if fix is not None:
        parts.append(f"{fix.name or fix.action} at {clock(fix.at)}: "
                     f"{describe_event(fix, short=True)}")
    parts.append(_recovery_words(result, back))
    return "; ".join(parts)


def _recovery_words(result: RunResult, back: Moment | None) -> str:
    col = result.collector
    if back is None:
        waiting = col.series["pending_pods"][-1] if col.t else 0
        return f"{count(waiting)} still waiting at the end ({clock(result.sim_seconds)})"
    if back.what == "all pods Running":
        return f"all {count(_at(result, 'running_pods', back.t))} Running by {clock(back.t)}"
    return f"every pod a vSwitch can serve Running by {clock(back.t)}; " + back.detail


def _quiet_headline(result: RunResult) -> str:
    s = result.collector.scalars()
    parts = [f"{plural(s['pods_ready'], 'pod')} Running over {duration(result.sim_seconds)}",
             f"network-ready p50 {duration(s['p50_network_ready'])}, "
             f"p99 {duration(s['p99_network_ready'])}"]
    events = [f"{ev.name or ev.action} at {clock(ev.at)}" for ev in result.scenario.events]
    if events:
        parts.append(", ".join(events))
    calls = result.collector.api_calls
    codes = sorted({code for (_, code) in calls if code != "OK"})
    if codes:
        errors = sum(n for (_, code), n in calls.items() if code != "OK")
        parts.append(f"{plural(errors, 'cloud API error')} ({', '.join(codes)})")
    parts.append("no IpNotEnough")
    return "; ".join(parts)


def verdict_words(passed: bool, verdicts: Sequence[bool], violation: bool) -> str:
    """"PASS: 6 of 6 expectations hold" / "FAIL: 1 of 6 expectations failed; invariant broken"."""
    failed = sum(1 for ok in verdicts if not ok)
    text = (f"{len(verdicts) - failed} of {len(verdicts)} expectations hold" if not failed else
            f"{failed} of {len(verdicts)} expectations failed")
    return f"{'PASS' if passed else 'FAIL'}: {text}" + ("; invariant broken" if violation else "")


__all__ = ["Moment", "capacities", "headline", "moments", "verdict_words"]
