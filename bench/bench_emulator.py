"""SDK → emulator round trip against SDK → no-op HTTP server, measured in the same run.

The no-op server speaks the same HTTP/1.1 keep-alive and returns, canned, the exact body the
emulator gave for the same call, so the SDK does identical client-side work (signing, requests,
JSON parsing) on both sides: the ratio is the price of the emulator itself (signature check,
fault engine, model, encoding). Goal: ratio ≤ 1.2. Also reports 32 concurrent SDK clients.

    python -m bench.bench_emulator [--calls N] [--rounds R] [--threads T]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def run(calls: int = 1000, rounds: int = 5, threads: int = 32) -> dict[str, float]:
    from alibabacloud_vpc20160428 import models

    emu = Emulator.create(seed=1)
    vpc_id = _seed_world(emu)
    request = models.DescribeVSwitchesRequest(region_id="cn-hangzhou", vpc_id=vpc_id)
    with emu.serve() as handle:
        emu_client = _client(handle.endpoint)
        canned = emu_client.describe_vswitches(request)
        body = canned.body.to_map()
        import json

        noop, noop_endpoint = _noop_server(json.dumps(body).encode())
        try:
            noop_client = _client(noop_endpoint)

            def emu_call() -> Any:
                return emu_client.describe_vswitches(request)

            def noop_call() -> Any:
                return noop_client.describe_vswitches(request)

            _timed(emu_call, 100)
            _timed(noop_call, 100)
            emu_times, noop_times = [], []
            for _ in range(rounds):  # interleaved rounds: drift on a shared box hits both
                emu_times.append(_timed(emu_call, calls // rounds))
                noop_times.append(_timed(noop_call, calls // rounds))

            def emu_maker() -> Callable[[], Any]:
                c = _client(handle.endpoint)
                return lambda: c.describe_vswitches(request)

            def noop_maker() -> Callable[[], Any]:
                c = _client(noop_endpoint)
                return lambda: c.describe_vswitches(request)

            emu_qps = _concurrent(emu_maker, threads, max(1, calls // threads))
            noop_qps = _concurrent(noop_maker, threads, max(1, calls // threads))
        finally:
            noop.shutdown()
            noop.server_close()
    emu_s, noop_s = statistics.median(emu_times), statistics.median(noop_times)
    return {
        "emulator_us": emu_s * 1e6, "noop_us": noop_s * 1e6, "ratio": emu_s / noop_s,
        "emulator_qps_concurrent": emu_qps, "noop_qps_concurrent": noop_qps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args(argv)
    r = run(args.calls, args.rounds, args.threads)
    print("bench_emulator: SDK DescribeVSwitches round trip (median of interleaved rounds)")
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
