#!/usr/bin/env python3
"""The single-node demo: the seeds' IpNotEnough story on real network namespaces.

    sudo python3 demo/node-demo.py [--workdir DIR] [--seed N] [--keep]

1. fabric up: an emulated VPC with one /28 vSwitch and one ecs.g6.2xlarge node, the node a
   network namespace named after its instance id (eth0 = its primary ENI);
2. terwayd started inside the node (`ip netns exec <instance-id> terwayd …`);
3. three pods (fresh namespaces) set up by executing the `terway` CNI plugin; each pings its
   vSwitch gateway and the node;
4. `terway-cli mapping`;
5. more pods until the vSwitch runs out: the CNI error, the daemon's log line, CNI STATUS;
6. the remedy: CreateVSwitch in the same zone with the official VPC SDK, added to eni_conf; the
   next pod gets an address from it through a new ENI (no daemon restart);
7. teardown (everything removed; `--keep` leaves it up until Enter is pressed).

Needs root. Takes about half a minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.fabric import probe
from emulator.fabric.netns import ip, netns_list
from emulator.fabric.testbed import NodeBed

REMEDY_CIDR = "10.88.32.0/19"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(text: str) -> None:
    print("   " + text.replace("\n", "\n   "), flush=True)


def run(bed: NodeBed) -> None:
    say("fabric up")
    bed.up()
    inst = bed.cloud.get_instance(bed.node)
    vsw = bed.cloud.get_vswitch(bed.vswitch_id)
    show(f"VPC {bed.vpc_id} (router netns), vSwitch {vsw.vswitch_id} {vsw.cidr_block} "
         f"gateway {vsw.gateway}, {vsw.available_ip_count} addresses free")
    show(f"node {bed.node} ({inst.instance_type}) primary IP {inst.primary_ip}")
    show(ip("-br", "addr", "show", "dev", "eth0", ns=bed.node).strip())
    status, body = probe.http_get(bed.node, "http://100.100.100.200/latest/meta-data/instance-id")
    show(f"inside the node, metadata instance-id -> {status} {body}")

    say("terwayd inside the node")
    bed.start_daemon()
    show(f"socket {bed.socket}, log {bed.log_file}")

    say("three pods")
    for pod in ("web-0", "web-1", "web-2"):
        outcome = bed.add_pod(pod)
        if not outcome.ok:
            raise SystemExit(f"ADD {pod} failed: {outcome.msg}")
        ns = bed.pods[pod]
        show(f"{pod}: {outcome.ip}  ping gateway: {probe.ping(ns, vsw.gateway)}  "
             f"ping node: {probe.ping(ns, inst.primary_ip)}")
    show(ip("-br", "link", "show", ns=bed.node).strip())

    say("terway-cli mapping")
    show(bed.cli("mapping").stdout.rstrip())

    say("exhausting the vSwitch")
    n = 0
    while True:
        pod = f"batch-{n}"
        outcome = bed.add_pod(pod)
        n += 1
        if not outcome.ok:
            show(f"{pod}: CNI error code {outcome.out.get('code')}: {outcome.msg}")
            break
        show(f"{pod}: {outcome.ip}")
    show(f"vSwitch now has {bed.cloud.get_vswitch(bed.vswitch_id).available_ip_count} free")
    lines = [line for line in bed.log_text().splitlines() if "IpNotEnough" in line]
    show("daemon log:\n" + "\n".join(lines[:2]))
    status_out = bed.status()
    show(f"CNI STATUS -> exit {status_out.rc}, code {status_out.out.get('code')}")

    say("remedy: a new vSwitch in the same zone, added to eni_conf (no restart)")
    new_vsw = bed.create_vswitch_with_sdk(REMEDY_CIDR)
    show(f"CreateVSwitch (official VPC SDK) -> {new_vsw} {REMEDY_CIDR}")
    bed.write_conf([bed.vswitch_id, new_vsw])
    for attempt in range(20):
        outcome = bed.add_pod(f"after-remedy-{attempt}")
        if outcome.ok:
            eni = next(e for e in bed.node_enis() if outcome.ip in e.private_ips)
            show(f"after-remedy-{attempt}: {outcome.ip} on {eni.eni_id} ({eni.vswitch_id})")
            break
        show(f"after-remedy-{attempt}: not yet ({outcome.msg[:80]}…)")
    show(bed.cli("mapping").stdout.rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where eni.json, socket, log go")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--keep", action="store_true", help="wait for Enter before teardown")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("node-demo: needs root (network namespaces)", file=sys.stderr)
        return 1
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="terway-node-demo-"))
    bed = NodeBed(workdir, seed=args.seed)
    try:
        run(bed)
        if args.keep:
            input("\n(press Enter to tear down) ")
    finally:
        say("teardown")
        mine = {bed.node, bed.vpc_id, *bed.pods.values()} - {""}
        bed.down()
        left = sorted(mine & set(netns_list()))
        show(f"namespaces left behind: {left or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
