"""CNI ADD/DEL latency: our ``terway`` plugin vs Debian's reference Go ``ptp`` + ``host-local``.

Same run, same machine, real network namespaces. Our plugin talks to a daemon over the unix
socket: by default a fake one in this process that wires the pod with terway.datapath (veth
policy routing on an emulated node) — the work terwayd does — or, with ``--socket PATH``, a real
terwayd you started (hook for end-to-end numbers). Prints medians and ratios; asserts nothing.

    python bench/bench_cni.py [-n 30] [--socket /var/run/eni/eni.socket] [--no-datapath]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cni.fakedaemon import FakeDaemon  # noqa: E402
from datapath.topology import Node  # noqa: E402

from terway.cni.launcher import write_launcher  # noqa: E402

REF_DIR = "/usr/lib/cni"


def timed(cmd: list[str], env: dict[str, str], stdin: bytes) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {env['CNI_COMMAND']}: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def cni_env(command: str, netns: str, i: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": f"bench{i}",
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": REF_DIR,
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod{i};"
        f"K8S_POD_INFRA_CONTAINER_ID=b{i}",
    }


def run_plugin(name: str, cmd: list[str], conf: dict[str, object], node: Node, n: int) -> dict:
    adds, dels = [], []
    stdin = json.dumps(conf).encode()
    for i in range(n):
        netns = node.pod_ns(f"{name[:3]}{i}")
        adds.append(timed(cmd, cni_env("ADD", netns, i), stdin))
        dels.append(timed(cmd, cni_env("DEL", netns, i), stdin))
    return {"add": statistics.median(adds), "del": statistics.median(dels)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="iterations per plugin")
    ap.add_argument("--socket", help="use a running terwayd at this socket instead of the fake")
    ap.add_argument("--no-datapath", action="store_true", help="fake daemon replies at once")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_cni: needs root (network namespaces)")
        return 0
    node = Node(f"b{os.getpid() % 10000}").build()
    results: dict[str, dict] = {}
    try:
        tmp = tempfile.mkdtemp(prefix="terway-bench-")
        launcher = write_launcher(os.path.join(tmp, "terway"))
        fake = FakeDaemon(None if args.no_datapath else node.node)
        with fake:
            sock = args.socket or fake.socket
            conf = {
                "cniVersion": "1.0.0",
                "name": "terway",
                "type": "terway",
                "daemon_socket": sock,
            }
            results["terway (launcher, python -S)"] = run_plugin(
                "tl", [launcher], conf, node, args.n
            )
            script = shutil.which("terway")
            if script and "pyenv/shims" not in script:
                results["terway (pip console script)"] = run_plugin(
                    "ts", [script], conf, node, args.n
                )
            results["terway (python -m terway.cni)"] = run_plugin(
                "tm", [sys.executable, "-m", "terway.cni"], conf, node, args.n
            )
        if os.path.exists(f"{REF_DIR}/ptp"):
            ref_conf = {
                "cniVersion": "1.0.0",
                "name": "bench",
                "type": "ptp",
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.77.0.0/16",
                    "dataDir": os.path.join(tmp, "ipam"),
                },
            }
            results["go ptp + host-local"] = run_plugin(
                "gp", [f"{REF_DIR}/ptp"], ref_conf, node, args.n
            )
        else:
            print("reference plugins missing: apt-get install -y containernetworking-plugins")
    finally:
        node.destroy()
    ref = results.get("go ptp + host-local")
    daemon = f"real at {args.socket}" if args.socket else "fake"
    if not args.socket and not args.no_datapath:
        daemon += " + datapath"
    print(f"CNI ADD/DEL medians over {args.n} runs (daemon: {daemon})")
    for name, r in results.items():
        line = f"  {name:34s} ADD {r['add'] * 1e3:7.1f} ms  DEL {r['del'] * 1e3:7.1f} ms"
        if ref:
            line += f"  ADD x{r['add'] / ref['add']:.2f}  DEL x{r['del'] / ref['del']:.2f} vs Go"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
