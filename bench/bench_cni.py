"""CNI ADD/DEL latency: our ``terway`` plugin vs Debian's reference Go ``ptp`` + ``host-local``.

Same run, same machine, real network namespaces, runs interleaved (ours, Go, ours, Go…) so
load spikes on the shared VM hit both alike. Our plugin in both installed forms: the native
front (``terway``, what a node runs: it hands the command to the daemon's ExecCNI) and the
Python plugin alone (``terway-python``, its fallback). Three daemons behind them:

- ``fake``: a stand-in answering at once (the plugin process alone: start-up + one RPC);
- ``fake+datapath``: the stand-in also wires the pod with terway.datapath (veth policy
  routing on an emulated node), the work terwayd does on AllocIP;
- ``terwayd``: the real daemon on the emulator (``emulator.fabric.testbed.NodeBed``: cloud
  API + metadata served, terwayd in the node's netns) with a warm pool (min_pool_size 8, so
  every ADD is a pool hit and every DEL returns the address to the pool).

Also times ``python -I -S -c pass`` (the interpreter's start, the floor of any Python plugin).
Prints medians, p90 and ours/Go ratios; asserts nothing.

    python -m bench.bench_cni [-n 30] [--only fake,fake+datapath,terwayd]
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
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from terway.cni.launcher import FALLBACK_SUFFIX, write_plugin  # noqa: E402
from tests.cni.fakedaemon import FakeDaemon  # noqa: E402
from tests.datapath.topology import Node  # noqa: E402

REF_DIR = "/usr/lib/cni"
Samples = dict[str, list[float]]


def timed(cmd: list[str], env: dict[str, str], stdin: bytes) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {env.get('CNI_COMMAND')}: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def cni_env(command: str, netns: str, pod: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": f"bench-{pod}",
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": REF_DIR,
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={pod};"
        f"K8S_POD_INFRA_CONTAINER_ID={pod}",
    }


class Plugin:
    """One CNI plugin under test: command, netconf, where its pods' namespaces come from."""

    def __init__(self, name: str, cmd: list[str], conf: Mapping[str, object],
                 new_netns: Callable[[str], str]) -> None:
        self.name, self.cmd, self.new_netns = name, cmd, new_netns
        self.stdin = json.dumps(conf).encode()
        self.samples: Samples = {"ADD": [], "DEL": []}

    def cycle(self, i: int) -> None:
        pod = f"{self.name[:2]}{i}"
        netns = self.new_netns(pod)
        for command in ("ADD", "DEL"):
            self.samples[command].append(timed(self.cmd, cni_env(command, netns, pod), self.stdin))


def interleave(plugins: list[Plugin], n: int, warmup: int = 2) -> None:
    for i in range(-warmup, n):
        for p in plugins:
            p.cycle(i + 1000 if i < 0 else i)
    for p in plugins:  # drop the warm-up runs
        for key in p.samples:
            p.samples[key] = p.samples[key][warmup:]


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.9 + 0.5) - 1)]


def report(title: str, ours: list[Plugin], ref: Plugin | None, floor: float) -> None:
    print(f"\n{title}")
    for p in [*ours, *([ref] if ref else [])]:
        line = f"  {p.name:28s}"
        for cmd in ("ADD", "DEL"):
            xs = p.samples[cmd]
            line += f"  {cmd} med {statistics.median(xs) * 1e3:6.1f} p90 {p90(xs) * 1e3:6.1f} ms"
        print(line)
    if ref is not None:
        med = statistics.median
        for p in ours:
            ratios = [f"{cmd} x{med(p.samples[cmd]) / med(ref.samples[cmd]):.2f}"
                      for cmd in ("ADD", "DEL")]
            print(f"  ratio {p.name} / Go (median): {'  '.join(ratios)}   (goal <= 1.0)")
    print(f"  interpreter floor (python -I -S -c pass): {floor * 1e3:.1f} ms")


def ours(plugin: str, conf: Mapping[str, object],
         new_netns: Callable[[str], str]) -> list[Plugin]:
    """The installed plugin (native front, when built) and the Python plugin alone."""
    python = plugin + FALLBACK_SUFFIX
    kinds = [("n", "terway (native front)", plugin)] if _is_native(plugin) else []
    kinds.append(("p", "terway-python (launcher -IS)", python))
    return [Plugin(name, [path], conf, _prefixed(new_netns, key)) for key, name, path in kinds]


def _prefixed(new_netns: Callable[[str], str], prefix: str) -> Callable[[str], str]:
    return lambda pod: new_netns(f"{prefix}{pod}")


def _is_native(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def go_plugin(node: Node, tmp: str, prefix: str) -> Plugin | None:
    if not os.path.exists(f"{REF_DIR}/ptp"):
        print("reference plugins missing: apt-get install -y containernetworking-plugins")
        return None
    conf = {
        "cniVersion": "1.0.0", "name": f"bench{prefix}", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.77.0.0/16",
                 "dataDir": os.path.join(tmp, f"ipam-{prefix}")},
    }
    return Plugin("go ptp + host-local", [f"{REF_DIR}/ptp"], conf,
                  lambda pod: node.pod_ns(f"g{prefix}{pod}"))


def interpreter_floor(n: int) -> float:
    return statistics.median(
        timed([sys.executable, "-I", "-S", "-c", "pass"], {}, b"") for _ in range(n)
    )


def bench_fake(node: Node, tmp: str, plugin: str, n: int, datapath: bool) -> None:
    label = "fake+datapath" if datapath else "fake"
    with FakeDaemon(node.node if datapath else None) as fake:
        conf = {"cniVersion": "1.0.0", "name": "terway", "type": "terway",
                "daemon_socket": fake.socket}
        mine = ours(plugin, conf, lambda pod: node.pod_ns(f"t{label[-1]}{pod}"))
        ref = go_plugin(node, tmp, label[-1])
        interleave(mine + ([ref] if ref else []), n)
    report(f"CNI over {n} pods, daemon: {label}", mine, ref, interpreter_floor(n))


def bench_terwayd(node: Node, tmp: str, plugin: str, n: int) -> None:
    from emulator.fabric.testbed import NodeBed

    bed = NodeBed(Path(tmp) / "bed", seed=4242, vswitch_cidr="10.88.1.0/24",
                  conf={"min_pool_size": 8, "max_pool_size": 16}).up()
    try:
        bed.start_daemon()
        deadline = time.monotonic() + 60
        while len(bed.mapping()) < 8 and time.monotonic() < deadline:
            time.sleep(0.5)  # the pool fills from the emulated cloud
        print(f"\nterwayd warm pool: {len(bed.mapping())} addresses before the first ADD")
        mine = ours(plugin, bed.netconf(), _bed_netns(bed))
        ref = go_plugin(node, tmp, "r")
        interleave(mine + ([ref] if ref else []), n)
        report(f"CNI over {n} pods, daemon: real terwayd (emulator, warm pool)", mine, ref,
               interpreter_floor(n))
    finally:
        bed.down()


def _bed_netns(bed: object) -> Callable[[str], str]:
    from emulator.fabric.netns import netns_add

    def make(pod: str) -> str:
        name = f"bench-{os.getpid()}-{pod}"
        netns_add(name)
        bed.pods[pod] = name  # type: ignore[attr-defined]  # removed by bed.down()
        return f"/var/run/netns/{name}"

    return make


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="pods per plugin and daemon")
    ap.add_argument("--only", default="fake,fake+datapath,terwayd",
                    help="comma-separated: fake, fake+datapath, terwayd")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_cni: needs root (network namespaces)")
        return 0
    which = set(args.only.split(","))
    node = Node(f"b{os.getpid() % 10000}").build()
    tmp = tempfile.mkdtemp(prefix="terway-bench-")
    plugin = os.path.join(tmp, "terway")
    if not write_plugin(plugin):
        print("no C compiler: measuring the Python plugin only")
    try:
        if "fake" in which:
            bench_fake(node, tmp, plugin, args.n, datapath=False)
        if "fake+datapath" in which:
            bench_fake(node, tmp, plugin, args.n, datapath=True)
        if "terwayd" in which:
            try:
                bench_terwayd(node, tmp, plugin, args.n)
            except Exception as exc:  # the emulator bed needs the whole plugin installed
                print(f"\nreal terwayd: not measured: {type(exc).__name__}: {exc}")
    finally:
        node.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
