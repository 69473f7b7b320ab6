"""SDK → emulator round trip against SDK → no-op HTTP server, measured in the same run.

The no-op server speaks the same HTTP/1.1 keep-alive and returns, canned, the exact body the
emulator gave for the same call, so the SDK does identical client-side work (signing, requests,
JSON parsing) on both sides: the ratio is the price of the emulator itself (signature check,
fault engine, model, encoding). Goal: ratio ≤ 1.2. Also reports 32 concurrent SDK clients.

By default both servers run in their own process (``terway-emulator serve`` as users run it, and
a child running the no-op server), so the clients' GIL is not shared with either server;
``--in-process`` serves both from threads of the benchmark process instead.

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
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

GOAL = 1.2


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


def _noop_server(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    handler = type("Canned", (_Noop,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


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


def _client(endpoint: str) -> Any:
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_vpc20160428.client import Client

    return Client(Config(
        endpoint=endpoint, protocol="http", region_id="cn-hangzhou",
        access_key_id=DEFAULT_ACCESS_KEY_ID, access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
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


def _measure(emu_endpoint: str, noop_endpoint: str, calls: int, rounds: int,
             threads: int) -> dict[str, float]:
    from alibabacloud_vpc20160428 import models

    request = models.DescribeVSwitchesRequest(region_id="cn-hangzhou")

    def maker(endpoint: str) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            client = _client(endpoint)
            return lambda: client.describe_vswitches(request)
        return make

    emu_call, noop_call = maker(emu_endpoint)(), maker(noop_endpoint)()
    _timed(emu_call, 100)
    _timed(noop_call, 100)
    emu_times, noop_times = [], []
    for _ in range(rounds):  # interleaved rounds: drift on a shared box hits both
        emu_times.append(_timed(emu_call, max(1, calls // rounds)))
        noop_times.append(_timed(noop_call, max(1, calls // rounds)))
    per_thread = max(1, calls // threads)
    emu_qps = _concurrent(maker(emu_endpoint), threads, per_thread)
    noop_qps = _concurrent(maker(noop_endpoint), threads, per_thread)
    emu_s, noop_s = statistics.median(emu_times), statistics.median(noop_times)
    # paired: each round's emulator time over the no-op time measured right after it, so drift
    # on a shared machine (which moves both) cancels; the median of those ratios is reported
    paired = statistics.median(e / n for e, n in zip(emu_times, noop_times, strict=True))
    return {
        "emulator_us": emu_s * 1e6, "noop_us": noop_s * 1e6, "ratio": paired,
        "emulator_qps_concurrent": emu_qps, "noop_qps_concurrent": noop_qps,
    }


def _canned_body(endpoint: str) -> bytes:
    from alibabacloud_vpc20160428 import models

    resp = _client(endpoint).describe_vswitches(
        models.DescribeVSwitchesRequest(region_id="cn-hangzhou"))
    return json.dumps(resp.body.to_map()).encode()


def run_in_process(calls: int, rounds: int, threads: int) -> dict[str, float]:
    emu = Emulator.create(seed=1)
    _seed_world(emu)
    with emu.serve() as handle:
        noop, noop_endpoint = _noop_server(_canned_body(handle.endpoint))
        try:
            return _measure(handle.endpoint, noop_endpoint, calls, rounds, threads)
        finally:
            noop.shutdown()
            noop.server_close()


def run_processes(calls: int, rounds: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        world, body_file = Path(tmp, "world.yaml"), Path(tmp, "body.json")
        world.write_text(WORLD)
        emu_port, noop_port = _free_port(), _free_port()
        emu_url = f"http://127.0.0.1:{emu_port}"
        serve = ["-m", "emulator.cli", "serve", "--port", str(emu_port), "--world", str(world),
                 "--log-level", "warning"]
        with _child(serve, f"{emu_url}/_emulator/health"):
            body_file.write_bytes(_canned_body(f"127.0.0.1:{emu_port}"))
            noop = ["-m", "bench.bench_emulator", "--serve-noop", str(noop_port),
                    "--body-file", str(body_file)]
            with _child(noop, f"http://127.0.0.1:{noop_port}/"):
                return _measure(f"127.0.0.1:{emu_port}", f"127.0.0.1:{noop_port}", calls,
                                rounds, threads)


def run(calls: int = 1000, rounds: int = 5, threads: int = 32,
        in_process: bool = False) -> dict[str, float]:
    return (run_in_process if in_process else run_processes)(calls, rounds, threads)


def _serve_noop(port: int, body_file: str) -> int:
    handler = type("Canned", (_Noop,), {"body": Path(body_file).read_bytes()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--in-process", action="store_true",
                        help="serve both from threads of this process (shares the GIL)")
    parser.add_argument("--serve-noop", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--body-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_noop:
        return _serve_noop(args.serve_noop, args.body_file)
    r = run(args.calls, args.rounds, args.threads, args.in_process)
    where = "servers in this process" if args.in_process else "servers in child processes"
    print(f"bench_emulator: SDK DescribeVSwitches round trip ({where}; median of interleaved "
          "rounds)")
    print(f"  SDK -> emulator      {r['emulator_us']:9.1f} us/call")
    print(f"  SDK -> no-op server  {r['noop_us']:9.1f} us/call")
    verdict = "ok" if r["ratio"] <= GOAL else "ABOVE GOAL"
    print(f"  ratio                {r['ratio']:9.3f}  (goal <= {GOAL}: {verdict})")
    print(f"  {args.threads} concurrent clients: emulator {r['emulator_qps_concurrent']:.0f} "
          f"calls/s, no-op {r['noop_qps_concurrent']:.0f} calls/s "
          f"(ratio {r['noop_qps_concurrent'] / r['emulator_qps_concurrent']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
