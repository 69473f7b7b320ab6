"""SDK → emulator round trip against SDK → no-op HTTP server, measured in the same run.

The no-op server (``http.server``, the plain Python HTTP/1.1 server) reads each request and
answers, canned, the exact body the emulator gave for the same call, so the SDK does identical
client-side work (signing, requests, JSON parsing) on both sides: the ratio is what the emulator
costs a user over a server that does nothing. Goal: ratio ≤ 1.2, for both signature styles the
SDK speaks: ACS3-HMAC-SHA256 (its default) and RPC (``signature_algorithm='v2'``: HMAC-SHA1 in a
``Signature`` parameter, as the Go SDK upstream Terway uses and the old Python SDK sign). Both
styles are timed in the same interleaved rounds, each over its own no-op reference.

The emulator reads requests with its own lean HTTP/1.1 reader (emulator/wire/http1.py), cheaper
than ``http.server``'s, which pays back part of its API work. So a second reference isolates that
work: the emulator's own HTTP server with a gateway that answers the canned body at once (same
reader, same one-write replies); its ratio is the price of the signature check, fault engine,
model and encoding alone (reported, no goal). Also reports 32 concurrent SDK clients.

By default every server runs in its own process (``terway-emulator serve`` as users run it, and
one child per reference), so the clients' GIL is not shared with any server; ``--in-process``
serves them from threads of the benchmark process instead.

    python -m bench.bench_emulator [--calls N] [--rounds R] [--threads T] [--in-process]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from emulator.server import Emulator
from emulator.wire.envelope import WireResponse
from emulator.wire.gateway import WireRequest
from emulator.wire.http import EmulatorHTTPServer
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

GOAL = 1.2
# signature styles: the new SDK's Config.signature_algorithm for each (None = its default)
STYLES = {"acs3": None, "rpc": "v2"}
STYLE_NAMES = {"acs3": "ACS3-HMAC-SHA256", "rpc": "RPC HMAC-SHA1 (v2)"}


class _Noop(BaseHTTPRequestHandler):
    """Reads the request, answers the canned body: the cheapest honest HTTP/1.1 server."""

    protocol_version = "HTTP/1.1"
    body = b"{}"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode()
        self.wfile.write(head + self.body)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Canned:
    """A gateway that does nothing: every request gets the same response."""

    def __init__(self, body: bytes) -> None:
        self.response = WireResponse(200, body)

    def handle(self, req: WireRequest) -> WireResponse:
        return self.response


REFERENCES = ("noop", "bare")  # http.server no-op (the goal's); the emulator's HTTP, canned


def _reference_server(kind: str, body: bytes, port: int = 0) -> ThreadingHTTPServer:
    if kind == "bare":
        return EmulatorHTTPServer(("127.0.0.1", port), _Canned(body))
    server = ThreadingHTTPServer(("127.0.0.1", port), type("Canned", (_Noop,), {"body": body}))
    server.daemon_threads = True
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up")


@contextlib.contextmanager
def _child(args: list[str], url: str) -> Iterator[None]:
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, *args], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(url, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


WORLD = """
seed: 1
vpcs:
  - name: bench
    cidr: 10.0.0.0/8
    vswitches:
""" + "".join(f"      - {{zone: cn-hangzhou-h, cidr: 10.{i}.0.0/16}}\n" for i in range(4))


def _client(endpoint: str, algorithm: str | None = None) -> Any:
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_vpc20160428.client import Client

    return Client(Config(
        endpoint=endpoint, protocol="http", region_id="cn-hangzhou",
        access_key_id=DEFAULT_ACCESS_KEY_ID, access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
        signature_algorithm=algorithm,
    ))


def _seed_world(emu: Emulator) -> str:
    vpc = emu.dispatch("vpc", "CreateVpc", {"RegionId": "cn-hangzhou", "CidrBlock": "10.0.0.0/8"})
    zone = "cn-hangzhou-h"
    for i in range(4):
        emu.dispatch("vpc", "CreateVSwitch", {
            "RegionId": "cn-hangzhou", "VpcId": vpc["VpcId"], "ZoneId": zone,
            "CidrBlock": f"10.{i}.0.0/16",
        })
    return str(vpc["VpcId"])


def _timed(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def _concurrent(make_call: Callable[[], Callable[[], Any]], threads: int, calls: int) -> float:
    """Calls per second with ``threads`` clients each doing ``calls`` calls."""
    workers = [make_call() for _ in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(lambda call: _timed(call, calls), workers))
        return threads * calls / (time.perf_counter() - start)


def _measure(emu_endpoint: str, refs: dict[str, str], calls: int, rounds: int,
             threads: int) -> dict[str, float]:
    from alibabacloud_vpc20160428 import models

    request = models.DescribeVSwitchesRequest(region_id="cn-hangzhou")

    def maker(endpoint: str, algorithm: str | None) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            client = _client(endpoint, algorithm)
            return lambda: client.describe_vswitches(request)
        return make

    endpoints = {"emulator": emu_endpoint, **refs}
    # keys "<style>_<server>": every style against every server, in the same rounds
    call = {f"{style}_{name}": maker(ep, algorithm)()
            for style, algorithm in STYLES.items() for name, ep in endpoints.items()}
    for fn in call.values():
        _timed(fn, 100)
    times: dict[str, list[float]] = {key: [] for key in call}
    for _ in range(rounds):  # interleaved rounds: drift on a shared box hits all alike
        for key, fn in call.items():
            times[key].append(_timed(fn, max(1, calls // rounds)))
    out = {f"{key}_us": statistics.median(ts) * 1e6 for key, ts in times.items()}
    for style in STYLES:
        for name in refs:
            # paired: each round's emulator time over the reference's measured right after
            # it, so drift on a shared machine (which moves both) cancels; the median of those
            out[f"ratio_{style}_{name}"] = statistics.median(
                e / r for e, r in zip(times[f"{style}_emulator"], times[f"{style}_{name}"],
                                      strict=True))
    per_thread = max(1, calls // threads)
    for name in ("emulator", "noop"):
        out[f"{name}_qps_concurrent"] = _concurrent(
            maker(endpoints[name], STYLES["acs3"]), threads, per_thread)
    return out


def _canned_body(endpoint: str) -> bytes:
    from alibabacloud_vpc20160428 import models

    resp = _client(endpoint).describe_vswitches(
        models.DescribeVSwitchesRequest(region_id="cn-hangzhou"))
    return json.dumps(resp.body.to_map()).encode()


def run_in_process(calls: int, rounds: int, threads: int) -> dict[str, float]:
    emu = Emulator.create(seed=1)
    _seed_world(emu)
    with emu.serve() as handle:
        body = _canned_body(handle.endpoint)
        servers = {kind: _reference_server(kind, body) for kind in REFERENCES}
        for server in servers.values():
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            refs = {k: f"127.0.0.1:{srv.server_address[1]}" for k, srv in servers.items()}
            return _measure(handle.endpoint, refs, calls, rounds, threads)
        finally:
            for server in servers.values():
                server.shutdown()
                server.server_close()


def run_processes(calls: int, rounds: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        world, body_file = Path(tmp, "world.yaml"), Path(tmp, "body.json")
        world.write_text(WORLD)
        emu_port = _free_port()
        emu_url = f"http://127.0.0.1:{emu_port}"
        serve = ["-m", "emulator.cli", "serve", "--port", str(emu_port), "--world", str(world),
                 "--log-level", "warning"]
        stack.enter_context(_child(serve, f"{emu_url}/_emulator/health"))
        body_file.write_bytes(_canned_body(f"127.0.0.1:{emu_port}"))
        refs = {}
        for kind in REFERENCES:
            port = _free_port()
            args = ["-m", "bench.bench_emulator", "--serve-reference", kind, "--port", str(port),
                    "--body-file", str(body_file)]
            stack.enter_context(_child(args, f"http://127.0.0.1:{port}/"))
            refs[kind] = f"127.0.0.1:{port}"
        return _measure(f"127.0.0.1:{emu_port}", refs, calls, rounds, threads)


def run(calls: int = 1000, rounds: int = 5, threads: int = 32,
        in_process: bool = False) -> dict[str, float]:
    return (run_in_process if in_process else run_processes)(calls, rounds, threads)


def _serve_reference(kind: str, port: int, body_file: str) -> int:
    _reference_server(kind, Path(body_file).read_bytes(), port).serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--in-process", action="store_true",
                        help="serve both from threads of this process (shares the GIL)")
    parser.add_argument("--serve-reference", choices=REFERENCES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--body-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_reference:
        return _serve_reference(args.serve_reference, args.port, args.body_file)
    r = run(args.calls, args.rounds, args.threads, args.in_process)
    where = "servers in this process" if args.in_process else "servers in child processes"
    print(f"bench_emulator: SDK DescribeVSwitches round trip ({where}; median of interleaved "
          "rounds, both signature styles in the same rounds)")
    for style in STYLES:
        print(f"  signature style {STYLE_NAMES[style]}:")
        print(f"    SDK -> emulator                      {r[f'{style}_emulator_us']:9.1f} us/call")
        print(f"    SDK -> no-op server (http.server)    {r[f'{style}_noop_us']:9.1f} us/call")
        print(f"    SDK -> emulator HTTP, canned answer  {r[f'{style}_bare_us']:9.1f} us/call")
        ratio = r[f"ratio_{style}_noop"]
        verdict = "ok" if ratio <= GOAL else "ABOVE GOAL"
        print(f"    ratio emulator / no-op server        {ratio:9.3f}  (goal <= {GOAL}: "
              f"{verdict})")
        print(f"    ratio emulator / its HTTP, canned    {r[f'ratio_{style}_bare']:9.3f}  "
              "(the API work alone)")
    print(f"  {args.threads} concurrent clients (ACS3): emulator "
          f"{r['emulator_qps_concurrent']:.0f} "
          f"calls/s, no-op {r['noop_qps_concurrent']:.0f} calls/s "
          f"(ratio {r['noop_qps_concurrent'] / r['emulator_qps_concurrent']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
