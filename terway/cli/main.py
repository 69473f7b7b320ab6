"""``terway-cli [--socket PATH] [-o table|json|yaml] mapping|list|eni|pool|config|metadata|show
POD``: ask the running terwayd. ``-o json`` / ``-o yaml`` print the daemon's reply as data, for
scripts (as kubectl's ``-o``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from terway import cliargs
from terway.cli import render
from terway.rpc import admin, messages as rpc

OUTPUTS = ("table", "json", "yaml")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="terway-cli", description="inspect the terway daemon")
    p.add_argument("--socket", default=rpc.DEFAULT_SOCKET, metavar="PATH",
                   help="the daemon's unix socket")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the daemon")
    p.add_argument("-o", "--output", choices=OUTPUTS, default="table",
                   help="table for people; json or yaml (the daemon's reply) for scripts")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("mapping", help="every resource: pods, idle addresses, errors")
    sub.add_parser("list", help="the pods holding addresses")
    sub.add_parser("eni", help="the ENIs the daemon manages")
    sub.add_parser("pool", help="pool counters and ENIs")
    sub.add_parser("config", help="the daemon's eni_conf (secrets redacted)")
    sub.add_parser("metadata", help="what the daemon knows of this instance")
    show = sub.add_parser("show", help="one pod's record")
    show.add_argument("pod", help="namespace/name, or a name")
    return cliargs.finish(p)


# command → the admin request it sends
REQUESTS: dict[str, Any] = {
    "mapping": admin.MappingRequest, "list": admin.MappingRequest, "pool": admin.PoolRequest,
    "eni": admin.PoolRequest, "config": admin.ConfigRequest, "metadata": admin.MetadataRequest,
}


def run(args: argparse.Namespace) -> int:
    client = admin.AdminClient(args.socket, timeout=args.timeout)
    request = admin.ShowRequest(args.pod) if args.command == "show" else \
        REQUESTS[args.command]()
    reply = client.call(request)
    if args.output == "json":
        json.dump(_json_of(args.command, reply), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    elif args.output == "yaml":
        import yaml  # PyYAML: a dependency of the node install (and of the kubernetes client)

        yaml.safe_dump(_json_of(args.command, reply), sys.stdout, sort_keys=True,
                       default_flow_style=False)
    else:
        sys.stdout.write(_table_of(args.command, reply))
    if args.command == "mapping" and render.has_error(reply.entries):
        print("error exists in mapping", file=sys.stderr)
        return 1
    return 0


def _json_of(command: str, reply: Any) -> Any:
    if command == "list":
        return [dataclasses.asdict(e) for e in render.pod_entries(reply.entries)]
    if command == "eni":
        return [dataclasses.asdict(e) for e in reply.enis]
    return dataclasses.asdict(reply)


def _table_of(command: str, reply: Any) -> str:
    match command:
        case "mapping":
            return render.mapping(reply.entries)
        case "list":
            return render.pods(reply.entries)
        case "eni":
            return render.enis(reply.enis)
        case "pool":
            return render.pool(reply)
        case "config":
            return f"# {reply.source}\n{reply.eni_conf}\n" + "".join(
                f"# warning: {w}\n" for w in reply.warnings)
        case "metadata":
            return render.metadata(reply)
    return render.show(reply)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except rpc.RpcError as exc:
        print(f"terway-cli: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
