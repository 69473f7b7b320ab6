"""terwayd's memory: RSS of the real daemon (emulator node, real datapath) after N pods, against
a bare interpreter that only imports what terwayd imports (the part no design change removes).

    python -m bench.bench_daemon [-n 30]

Prints both RSS figures and their ratio; asserts nothing. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What terwayd imports with --datapath real: entry point, datapath adapter, and the cloud SDK
# clients it imports at its first cloud call.
DAEMON_IMPORTS = (
    "terway.daemon.main, terway.daemon.dataplane, terway.datapath, "
    "alibabacloud_ecs20140526.client, alibabacloud_vpc20160428.client, "
    "alibabacloud_tea_openapi.utils_models, alibabacloud_credentials.models"
)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def baseline_rss_kib() -> int:
    code = (
        f"import {DAEMON_IMPORTS}\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS:')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="pods to add before measuring")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_daemon: needs root (network namespaces)")
        return 0
    from emulator.fabric.testbed import NodeBed

    workdir = Path(tempfile.mkdtemp(prefix="terway-bench-d-"))
    bed = NodeBed(workdir, seed=4343, vswitch_cidr="10.88.1.0/24",
                  conf={"min_pool_size": 4, "max_pool_size": args.n + 8}).up()
    try:
        bed.start_daemon()
        assert bed.daemon is not None
        pid = bed.daemon.pid  # `ip netns exec` execs terwayd in place: same pid
        idle = rss_kib(pid)
        started = time.perf_counter()
        for i in range(args.n):
            outcome = bed.add_pod(f"rss{i}")
            if not outcome.ok:
                print(f"pod rss{i}: ADD failed: {outcome.msg}")
                return 1
        took = time.perf_counter() - started
        time.sleep(1.0)  # let the pool refill settle
        loaded = rss_kib(pid)
    finally:
        bed.down()
        shutil.rmtree(workdir, ignore_errors=True)
    base = baseline_rss_kib()
    print(f"terwayd RSS: {idle / 1024:.1f} MiB idle, {loaded / 1024:.1f} MiB after {args.n} pods "
          f"({took:.1f} s to add them)")
    print(f"bare python importing the same modules: {base / 1024:.1f} MiB")
    print(f"ratio terwayd/bare: x{loaded / base:.2f} "
          f"(terwayd's own state: {(loaded - base) / 1024:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
