"""``terwayd policy``: the DaemonSet's ``policy`` container.

Reads the mounted ``eni-config`` once at start and either runs Calico Felix (as its child: the
container exits with Felix, its probes and metrics are Felix's own; beside it a thread reports
policies asking for what is not enforced here, terway/policy/reporter.py) or idles:

- ``disable_network_policy: "true"`` (the default in deploy/kubernetes): nothing is enforced;
  an earlier Felix's rules are removed first, so switching policy off really opens traffic.
- a node whose pods do not cross a host veth (``daemon_mode: ENIOnly``, or
  ``eniip_virtual_type: IPVlan``): Felix could not see their traffic, so nothing is enforced
  and the node gets a Warning event ``NetworkPolicyNotEnforced`` saying why.

A change of ``disable_network_policy`` takes effect when the terway pods restart, as upstream.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from terway import cliargs
from terway.config.configmap import ConfigMapData, load_configmap_dir
from terway.config.errors import ConfigError
from terway.daemon import logfmt
from terway.datapath import modes
from terway.policy import cleanup, datastore, felix, idle, reporter

EXIT_CONFIG = 2
NOT_ENFORCED = "NetworkPolicyNotEnforced"
log = logfmt.get("policy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="terwayd policy",
                                description="run Calico Felix for NetworkPolicy, or idle when "
                                            "policy is off (docs/policy.md)")
    p.add_argument("--configmap-dir", default="/etc/eni", metavar="DIR",
                   help="the mounted eni-config ConfigMap")
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME", ""), metavar="NAME",
                   help="this node's Kubernetes name (default: $NODE_NAME)")
    p.add_argument("--felix", default=felix.FELIX_BINARY, metavar="PATH",
                   help="the calico-felix executable")
    p.add_argument("--health-port", type=int, default=felix.HEALTH_PORT, metavar="PORT",
                   help="probes: /liveness, /readiness on 127.0.0.1")
    p.add_argument("--metrics-port", type=int, default=felix.METRICS_PORT, metavar="PORT",
                   help="Felix's Prometheus metrics on 127.0.0.1")
    p.add_argument("--kubeconfig", default=None, metavar="FILE",
                   help="kubeconfig (default: the in-cluster service account)")
    return cliargs.finish(p)


WHY_NOT = {   # the datapath modes whose pods' traffic Felix cannot see (terway/datapath/modes.py)
    modes.EXCLUSIVE: "daemon_mode ENIOnly: pods own whole ENIs, their traffic never crosses a "
                     "host veth Felix could filter",
    modes.IPVLAN: "eniip_virtual_type IPVlan: pod traffic leaves through IPVLAN slaves, not "
                  "host veths Felix could filter",
}


def not_enforced_reason(conf: ConfigMapData) -> str:
    """Why this node enforces nothing, or "" when Felix should run: Felix filters on host veths,
    so only a mode where every pod's traffic crosses one (and no pod owns an ENI) is policed."""
    if conf.disable_network_policy:
        return 'disable_network_policy is "true"'
    mode = modes.from_config(conf.eni_conf.exclusive,
                             (conf.cni_conf or {}).get("eniip_virtual_type", "Veth"))
    if mode.host_veth and not mode.whole_eni:
        return ""
    return WHY_NOT.get(mode.name, f"datapath mode {mode.name}: pods bypass host veths")


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    logfmt.setup()
    try:
        conf = load_configmap_dir(args.configmap_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"terwayd policy: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if not args.node_name:
        print("terwayd policy: no node name (--node-name or $NODE_NAME)", file=sys.stderr)
        return EXIT_CONFIG
    reason = not_enforced_reason(conf)
    if reason:
        return _idle(args, reason, warn=not conf.disable_network_policy)
    _ensure_datastore(args.kubeconfig)
    env = felix.felix_env(felix.FelixSettings(args.node_name, args.health_port,
                                              args.metrics_port))
    return _run_felix(args, env)


def _run_felix(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Felix as a child, the policy reporter as a thread beside it; the container lives and
    dies with Felix (its exit status is ours), and SIGTERM/SIGINT are passed on to it."""
    log.info("starting Calico Felix", extra=logfmt.fields(binary=args.felix,
                                                          node=args.node_name))
    child = subprocess.Popen([args.felix], env=env)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    stop = threading.Event()
    threading.Thread(target=reporter.watch_forever, args=(args.node_name, stop),
                     name="policy-reporter", daemon=True).start()
    code = child.wait()
    stop.set()
    log.info("Calico Felix exited", extra=logfmt.fields(code=code))
    return code if code >= 0 else 128 - code


def _idle(args: argparse.Namespace, reason: str, *, warn: bool) -> int:
    try:
        removed = cleanup.remove_felix_state()
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("could not remove Felix's rules", extra=logfmt.fields(error=str(exc)))
        removed = 0
    (log.warning if warn else log.info)(
        "NetworkPolicy not enforced on this node",
        extra=logfmt.fields(reason=reason, felix_objects_removed=removed))
    if warn:
        _node_event(args, reason)
    idle.serve_idle(reason, "127.0.0.1", args.health_port)
    return 0


def _node_event(args: argparse.Namespace, reason: str) -> None:
    from terway.daemon.k8s import kube_from_env

    kube = kube_from_env(args.kubeconfig, args.node_name)
    kube.record_node_event(NOT_ENFORCED, f"NetworkPolicy is not enforced on this node: {reason}",
                           True)


def _ensure_datastore(kubeconfig: str | None) -> None:
    """Create Felix's two prerequisites, retrying while the API server is unreachable: until
    they exist Felix would only wait, and the rules of an earlier run stay in force."""
    from kubernetes import client, config

    delay = 1.0
    while True:
        try:
            if kubeconfig:
                config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            else:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            created = datastore.ensure_objects(client.CustomObjectsApi())
            if created:
                log.info("created Calico objects", extra=logfmt.fields(kinds=",".join(created)))
            return
        except Exception as exc:
            log.warning("Calico objects not ready; retrying",
                        extra=logfmt.fields(error=str(exc), retry_s=delay))
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
