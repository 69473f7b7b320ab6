"""``terway-cli [--socket PATH] mapping|pool|config|metadata|show POD``: ask the running terwayd."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from terway import rpc
from terway.cli import admin, render


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="terway-cli", description="inspect the terway daemon")
    p.add_argument("--socket", default=rpc.DEFAULT_SOCKET,
                   help=f"daemon socket (default {rpc.DEFAULT_SOCKET})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the daemon")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("mapping", help="every resource: pods, idle addresses, errors")
    sub.add_parser("pool", help="pool counters and ENIs")
    sub.add_parser("config", help="the daemon's eni_conf (secrets redacted)")
    sub.add_parser("metadata", help="what the daemon knows of this instance")
    show = sub.add_parser("show", help="one pod's record")
    show.add_argument("pod", help="namespace/name, or a name")
    return p


def run(args: argparse.Namespace) -> int:
    client = admin.AdminClient(args.socket, timeout=args.timeout)
    out = sys.stdout
    if args.command == "mapping":
        reply: admin.MappingReply = client.call(admin.MappingRequest())
        out.write(render.mapping(reply.entries))
        if render.has_error(reply.entries):
            print("error exists in mapping", file=sys.stderr)
            return 1
        return 0
    if args.command == "pool":
        out.write(render.pool(client.call(admin.PoolRequest())))
    elif args.command == "config":
        cfg: admin.ConfigReply = client.call(admin.ConfigRequest())
        out.write(f"# {cfg.source}\n{cfg.eni_conf}\n")
        for w in cfg.warnings:
            out.write(f"# warning: {w}\n")
    elif args.command == "metadata":
        out.write(render.metadata(client.call(admin.MetadataRequest())))
    elif args.command == "show":
        out.write(render.show(client.call(admin.ShowRequest(args.pod))))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except rpc.RpcError as exc:
        print(f"terway-cli: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
