"""``terway-emulator``: serve the emulated cloud, inspect it, inject faults, validate worlds.

    terway-emulator serve --port 18080 [--world FILE] [--seed N] [--fabric netns]
    terway-emulator snapshot --endpoint http://127.0.0.1:18080
    terway-emulator fault add --endpoint URL '{"action": "AssignPrivateIpAddresses", ...}'
    terway-emulator fault list|clear --endpoint URL
    terway-emulator world validate FILE
    terway-emulator fabric up|down

Usage and input errors print one ``terway-emulator: error: …`` line and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

PROG = "terway-emulator"
# ``serve`` answers AttachNetworkInterface/DetachNetworkInterface as the real cloud does: the ENI
# is Attaching/Detaching for a seeded uniform draw from this range (seconds) before it is
# InUse/Available (attaching takes ~1-3 s; terway's drivers poll for it, terway/ipam/drive.py).
# The flags or a world file's ``cloud.attach_delay``/``detach_delay`` change it; ``0`` makes
# them synchronous.
SERVE_ATTACH_DELAY = (1.0, 3.0)
SERVE_DETACH_DELAY = (1.0, 3.0)
DEFAULT_PORT = 18080
DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"
ENDPOINT_ENV = "TERWAY_EMULATOR_ENDPOINT"


class UsageError(Exception):
    """A bad flag, file or endpoint: reported on one line, exit status 2."""


# -- serve --------------------------------------------------------------------------------------
def build_emulator(args: argparse.Namespace, clock: Any = None) -> Any:
    """The ``Emulator`` that ``serve`` runs for these arguments (``clock``: for tests)."""
    from emulator.server import Emulator

    if not args.access_key_id:
        raise UsageError("--access-key-id must not be empty")
    if not args.access_key_secret:
        raise UsageError("--access-key-secret must not be empty")
    options: dict[str, Any] = {
        "credentials": {str(args.access_key_id): str(args.access_key_secret)},
        "metadata_instance": args.metadata_instance,
        "allow_remote_control": args.allow_remote_control,
        "clock": clock,
    }
    spec = _world_spec(args.world) if args.world else {}
    if args.seed is not None:
        spec["seed"] = args.seed
    _serve_delays(spec, args)
    return _build_world(args.world or "(none)", lambda: Emulator.from_world(spec, **options))


def cmd_serve(args: argparse.Namespace) -> int:
    from emulator.wire import logfmt

    logfmt.configure(args.log_level)
    log = logfmt.get_logger("cli")
    emu = build_emulator(args)
    try:
        handle = emu.serve(port=args.port, host=args.host)
    except OSError as err:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {err.strerror}") from None
    try:
        fabric = _start_fabric(args.fabric, emu, handle.port, args.host) if args.fabric else None
    except UsageError:
        handle.stop()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("serving", extra={"fields": {
        "url": handle.url, "endpoint": handle.endpoint, "access_key_id": args.access_key_id,
        "seed": emu.seed, "world": args.world, "fabric": args.fabric,
        "attach_delay": _delay_text(emu.cloud.attach_delay),
        "detach_delay": _delay_text(emu.cloud.detach_delay),
    }})
    try:
        stop.wait()
    finally:
        if fabric is not None:
            fabric.stop()
        handle.stop()
        log.info("stopped", extra={"fields": {"url": handle.url}})
    return 0


def _serve_delays(spec: dict[str, Any], args: argparse.Namespace) -> None:
    """The flags win, then the world's ``cloud`` options, then serve's asynchronous defaults."""
    cloud = spec.setdefault("cloud", {})
    if not isinstance(cloud, dict):
        return   # the world's validation names the field
    for key, flag, default in (("attach_delay", args.attach_delay, SERVE_ATTACH_DELAY),
                               ("detach_delay", args.detach_delay, SERVE_DETACH_DELAY)):
        if flag is not None:
            cloud[key] = flag
        else:
            cloud.setdefault(key, list(default))


def _delay(text: str) -> float | list[float]:
    """``--attach-delay``: seconds, or ``LOW,HIGH`` for a seeded uniform draw."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not seconds or LOW,HIGH: {text!r}") from None
    if len(values) not in (1, 2) or any(v < 0 or v != v for v in values) or (
            len(values) == 2 and values[0] > values[1]):
        raise argparse.ArgumentTypeError(f"need seconds >= 0 or LOW,HIGH with LOW <= HIGH: "
                                         f"{text!r}")
    return values[0] if len(values) == 1 else values


def _delay_text(bounds: tuple[float, float]) -> str:
    low, high = bounds
    return f"{low:g}" if low == high else f"{low:g},{high:g}"


def _world_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"--world {path}: {err.strerror or err}") from None


def _world_spec(path: str) -> dict[str, Any]:
    import yaml

    try:
        spec = yaml.safe_load(_world_text(path))
    except yaml.YAMLError as err:
        raise UsageError(f"world {path}: not valid YAML: {err}") from None
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise UsageError(f"world {path}: top level must be a mapping, got {type(spec).__name__}")
    return spec


def _build_world(path: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except ValueError as err:  # WorldError / FaultRuleError name the offending field
        raise UsageError(f"world {path}: {err}") from None


def _start_fabric(kind: str, emu: Any, port: int, host: str) -> Any:
    import emulator.fabric as fabric_mod

    start = getattr(fabric_mod, "start", None)
    if start is None:
        raise UsageError("fabric not available yet (emulator.fabric has no start())")
    try:
        return start(emu.cloud, port, http_host=host)
    except RuntimeError as err:
        raise UsageError(f"--fabric {kind}: {err}") from None


# -- talking to a running emulator --------------------------------------------------------------
def control(endpoint: str, method: str, name: str, body: Any = None) -> Any:
    """Call ``/_emulator/<name>`` on a running emulator; UsageError with its message on failure."""
    url = endpoint.rstrip("/") + "/_emulator/" + name
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        raise UsageError(f"{method} {url}: HTTP {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UsageError(f"cannot reach emulator at {endpoint}: {reason}") from None


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_snapshot(args: argparse.Namespace) -> int:
    _print(control(args.endpoint, "GET", "snapshot"))
    return 0


def cmd_fault_add(args: argparse.Namespace) -> int:
    text = Path(args.file).read_text(encoding="utf-8") if args.file else args.rule
    if not text:
        raise UsageError("fault add needs a JSON rule argument or --file")
    try:
        rule = json.loads(text)
    except ValueError as err:
        raise UsageError(f"fault rule is not valid JSON: {err}") from None
    from emulator.faults import FaultRuleError, build_rules  # the server's own check, sooner

    try:
        build_rules(rule)
    except FaultRuleError as err:
        raise UsageError(f"fault rule: {err}") from None
    _print(control(args.endpoint, "POST", "faults", rule))
    return 0


def cmd_fault_list(args: argparse.Namespace) -> int:
    _print(control(args.endpoint, "GET", "faults"))
    return 0


def cmd_fault_clear(args: argparse.Namespace) -> int:
    name = f"faults/{args.id}" if args.id else "faults"
    _print(control(args.endpoint, "DELETE", name))
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    _print(control(args.endpoint, "POST", "reset"))
    return 0


def cmd_world_validate(args: argparse.Namespace) -> int:
    from emulator.server import Emulator

    spec = _world_spec(args.file)
    emu = _build_world(args.file, lambda: Emulator.from_world(spec))
    snap = emu.snapshot()
    counts = ", ".join(f"{len(snap[k])} {k}" for k in ("vpcs", "vswitches", "instances"))
    print(f"{args.file}: ok ({counts})")
    return 0


def cmd_fabric(args: argparse.Namespace) -> int:
    try:
        from emulator import fabric
    except ImportError:
        raise UsageError("fabric not available yet") from None
    if args.fabric_cmd == "up":
        up = getattr(fabric, "cli_up", None)
        if up is None:
            raise UsageError("fabric not available yet (no cli_up)")
        return int(up(args.world, args.port, args.seed))
    down = getattr(fabric, "cli_down", None)
    if down is None:
        raise UsageError("fabric not available yet (no cli_down)")
    return int(down())


# -- parser -------------------------------------------------------------------------------------
def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0..65535: {port}")
    return port


def _add_endpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoint", default=os.environ.get(ENDPOINT_ENV, DEFAULT_ENDPOINT),
        help=f"emulator base URL (default ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Emulated Alibaba Cloud ECS/VPC.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the cloud API, metadata and control over HTTP")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="0 picks a free port")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--world", metavar="FILE",
                       help="YAML/JSON world file to load at start (default: an empty world)")
    serve.add_argument("--seed", type=int, default=None,
                       help="generator seed (default 0, or the world's own seed)")
    low, high = SERVE_ATTACH_DELAY
    serve.add_argument("--attach-delay", type=_delay, default=None, metavar="S|LOW,HIGH",
                       help="seconds an ENI stays Attaching (default: the world's, else "
                            f"{low:g},{high:g}; 0: synchronous)")
    low, high = SERVE_DETACH_DELAY
    serve.add_argument("--detach-delay", type=_delay, default=None, metavar="S|LOW,HIGH",
                       help="seconds an ENI stays Detaching (default: the world's, else "
                            f"{low:g},{high:g}; 0: synchronous)")
    serve.add_argument("--access-key-id", default=DEFAULT_ACCESS_KEY_ID,
                       help="the AccessKey id the API accepts")
    serve.add_argument("--access-key-secret", default=DEFAULT_ACCESS_KEY_SECRET,
                       help="its secret (default: the built-in test secret; not printed)")
    serve.add_argument("--metadata-instance", metavar="ID",
                       help="instance served at /latest/meta-data/ (default: none)")
    serve.add_argument("--fabric", choices=["netns"],
                       help="make the VPC real (needs root; default: model only)")
    serve.add_argument("--allow-remote-control", action="store_true",
                       help="accept /_emulator/ control calls from non-loopback clients")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"], help="log verbosity")
    serve.set_defaults(func=cmd_serve)

    snap = sub.add_parser("snapshot", help="print the model's state as JSON")
    _add_endpoint(snap)
    snap.set_defaults(func=cmd_snapshot)

    reset = sub.add_parser("reset", help="forget every resource and fault rule")
    _add_endpoint(reset)
    reset.set_defaults(func=cmd_reset)

    fault = sub.add_parser("fault", help="manage fault rules")
    fsub = fault.add_subparsers(dest="fault_cmd", required=True)
    add = fsub.add_parser("add", help="add a rule (JSON object)")
    add.add_argument("rule", nargs="?", help="the rule as JSON")
    add.add_argument("--file", metavar="FILE",
                     help="read the rule (or a list of rules) from a JSON file (default: the "
                          "rule argument)")
    add.set_defaults(func=cmd_fault_add)
    lst = fsub.add_parser("list", help="list rules")
    lst.set_defaults(func=cmd_fault_list)
    clear = fsub.add_parser("clear", help="remove every rule, or one with --id")
    clear.add_argument("--id", help="the rule to remove (default: every rule)")
    clear.set_defaults(func=cmd_fault_clear)
    for p in (add, lst, clear):
        _add_endpoint(p)

    world = sub.add_parser("world", help="world files")
    wsub = world.add_subparsers(dest="world_cmd", required=True)
    validate = wsub.add_parser("validate", help="check a world file loads")
    validate.add_argument("file", help="the world file (YAML or JSON)")
    validate.set_defaults(func=cmd_world_validate)

    fab = sub.add_parser("fabric", help="bring the emulated VPC up as network namespaces")
    fabsub = fab.add_subparsers(dest="fabric_cmd", required=True)
    up = fabsub.add_parser("up", help="serve + fabric in the foreground")
    up.add_argument("--world", metavar="FILE",
                    help="YAML/JSON world file to load at start (default: an empty world)")
    up.add_argument("--port", type=_port, default=DEFAULT_PORT,
                    help="the API port (0 picks a free port)")
    up.add_argument("--seed", type=int, default=None,
                    help="generator seed (default 0, or the world's own seed)")
    fabsub.add_parser("down", help="remove every namespace and link the fabric made")
    fab.set_defaults(func=cmd_fabric)
    return _finish(parser)


def _finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The project's CLI conventions (--version, defaults shown) when terway is installed beside
    the emulator; a plain argparse parser when the emulator is used on its own."""
    try:
        from terway import cliargs
    except ImportError:
        return parser
    return cliargs.finish(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
