"""``python -m emulator.cluster up|down``: the Kubernetes test bed by hand (as root).

    python -m emulator.cluster up [--nodes 2] [--workdir DIR]   # foreground; Ctrl-C tears down
    source /var/lib/terway-testbed/demo/env                      # KUBECONFIG, PATH (kubectl) …
    python -m emulator.cluster down [--workdir DIR]              # after a crash: kill, clean up
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .cluster import STATE_FILE, Cluster, cleanup_crashed
from .procs import ClusterError

DEFAULT_WORKDIR = Path("/var/lib/terway-testbed/demo")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulator.cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring a cluster up and keep it until SIGINT/SIGTERM")
    up.add_argument("--nodes", type=int, default=2)
    up.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    up.add_argument("--eni-conf", default="{}", metavar="JSON",
                    help="eni_conf fields over the test bed's defaults")
    down = sub.add_parser("down", help="clean up after a cluster whose process died")
    down.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = p.parse_args(argv)
    if args.command == "down":
        try:
            done = cleanup_crashed(args.workdir)
        except ClusterError as exc:
            print(f"cluster: {exc}", file=sys.stderr)
            return 1
        print("\n".join(done))
        return 0
    return _up(args.nodes, args.workdir, json.loads(args.eni_conf))


def _up(nodes: int, workdir: Path, eni_conf: dict[str, object]) -> int:
    try:
        if (workdir / STATE_FILE).exists():
            cleanup_crashed(workdir)                  # refuses while its owner runs
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    (workdir / "ready").unlink(missing_ok=True)       # a killed owner's marker is not ours
    os.environ.setdefault("TERWAY_CLUSTER_VERBOSE", "1")
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        if not (workdir / "ready").exists():
            raise KeyboardInterrupt      # during bring-up: up() tears down what it started
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    cluster = Cluster(workdir=workdir, nodes=nodes, eni_conf=eni_conf)
    try:
        cluster.up()
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted during bring-up; torn down", file=sys.stderr)
        return 130
    env = cluster.env_file()
    (workdir / "ready").write_text("")
    print(f"cluster: up in {cluster.timings['total']:.1f} s; `source {env}` to use it; "
          "Ctrl-C to tear down", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        (workdir / "ready").unlink(missing_ok=True)
        cluster.down()
        print("cluster: down", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
