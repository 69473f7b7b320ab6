"""The cloud client's limits and retries, measured against the emulator. Prints ratios; no asserts.

(a) Rate: SdkCloud with a configured per-minute limit calls the emulator over HTTP as fast as the
    limiter allows (real clock, real sleeps); observed calls/min ÷ configured → ideally 1.00
    (≤ 1.00 means the limiter never lets more through than configured).
(b) Retries: AssignPrivateIpAddresses under an emulator fault rule that throttles a fraction of
    calls; virtual sleeps (no wall time) so upstream's 5 s backoffs cost nothing. Reports
    successes, give-ups, attempts per call and the backoff time a real daemon would have waited.
(c) Limiter arithmetic at upstream's defaults, in virtual time (the simulator's view).

    python -m bench.bench_cloud [--per-minute N] [--calls N] [--throttle P] [--retry-calls N]
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from typing import Any

from terway.cloud.credentials import StaticProvider
from terway.cloud.errors import CloudError
from terway.cloud.ratelimit import UPSTREAM_PER_MINUTE, RateLimits
from terway.cloud.sdk import SdkCloud, SdkConfig

TAGS = {"creator": "terway"}


def _world(emu: Any) -> dict[str, str]:
    cloud = emu.cloud
    vpc = cloud.create_vpc("10.0.0.0/8")
    vsw = cloud.create_vswitch(vpc.vpc_id, "cn-hangzhou-i", "10.1.0.0/16")
    sg = cloud.create_security_group(vpc.vpc_id)
    (inst,) = cloud.run_instances("ecs.g6.8xlarge", vsw.vswitch_id, [sg.security_group_id])
    return {"vsw": vsw.vswitch_id, "sg": sg.security_group_id, "instance": inst}


def _credentials() -> StaticProvider:
    from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

    return StaticProvider(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


def bench_rate(per_minute: int, calls: int, burst: int) -> None:
    from emulator.server import Emulator

    emu = Emulator.create(seed=1)
    w = _world(emu)
    with emu.serve(port=0) as srv:
        limits = RateLimits({"DescribeVSwitches": per_minute}, burst=burst)
        cloud = SdkCloud(SdkConfig(region_id="cn-hangzhou", endpoint=srv.url), _credentials(),
                         limits=limits)
        cloud.describe_vswitches([w["vsw"]])        # warm up: import + connection
        limits = RateLimits({"DescribeVSwitches": per_minute}, burst=burst,
                            now=time.monotonic())
        cloud.limits = limits
        start = time.monotonic()
        for _ in range(calls):
            cloud.describe_vswitches([w["vsw"]])
        elapsed = time.monotonic() - start
    # The first ``burst`` calls are free; the rest are paced: compare the paced part.
    paced = calls - burst
    observed = paced / elapsed * 60.0 if elapsed > 0 else float("inf")
    print(f"(a) rate: configured {per_minute}/min burst {burst}, {calls} calls in "
          f"{elapsed:.2f}s → observed {observed:.1f}/min, ratio {observed / per_minute:.3f}")


class _VirtualTime:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def bench_retry(probability: float, calls: int, seed: int) -> None:
    from emulator import mock_aliyun
    from emulator.server import Emulator

    emu = Emulator.create(seed=seed)
    w = _world(emu)
    vt = _VirtualTime()
    attempts: list[int] = []
    per_call = [0]

    def on_call(api: str, seconds: float, error: str) -> None:
        if api == "AssignPrivateIpAddresses":
            per_call[0] += 1

    with mock_aliyun(emu, endpoint="ecs-bench.example"):
        cloud = SdkCloud(SdkConfig(region_id="cn-hangzhou", endpoint="http://ecs-bench.example"),
                         _credentials(), sleep=vt.sleep, clock=vt.now, on_call=on_call,
                         rng=random.Random(seed))
        eni = cloud.create_network_interface(
            vswitch_id=w["vsw"], security_group_ids=[w["sg"]], secondary_ip_count=0,
            tags=TAGS, client_token="bench-retry")
        emu.add_fault({"kind": "error", "action": "AssignPrivateIpAddresses",
                       "code": "Throttling.User", "http_status": 400,
                       "message": "Request was denied due to user flow control.",
                       "probability": probability})
        ok = gave_up = 0
        waited_before = vt.t
        for _ in range(calls):
            per_call[0] = 0
            try:
                ips = cloud.assign_private_ips(eni.eni_id, 1)
                cloud.unassign_private_ips(eni.eni_id, ips)
                ok += 1
            except CloudError:
                gave_up += 1
            attempts.append(per_call[0])
        waited = vt.t - waited_before
    mean = sum(attempts) / len(attempts)
    expect_give_up = probability ** 6
    print(f"(b) retries: throttle p={probability:.2f} on Assign, {calls} calls: ok {ok}, "
          f"gave up {gave_up} (ratio {gave_up / calls:.4f} vs p^6 {expect_give_up:.4f}), "
          f"attempts/call {mean:.2f} (expected {(1 - probability ** 6) / (1 - probability):.2f}), "
          f"virtual backoff {waited:.0f}s ({waited / calls:.1f}s per call)")


def bench_limiter_virtual() -> None:
    rows = []
    for api, per_minute in sorted(UPSTREAM_PER_MINUTE.items()):
        limits = RateLimits(now=0.0)
        t, n = 0.0, 0
        while t < 600.0:          # ten virtual minutes of callers that honour every delay
            t += limits.reserve(api, t)
            n += 1
        steady = (n - per_minute) / 10.0
        rows.append(f"{api or '<default>'} {steady / per_minute:.3f}")
    print("(c) virtual 10 min at upstream defaults, (calls - burst)/min ÷ limit: "
          + ", ".join(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_cloud", description=__doc__.splitlines()[0])
    ap.add_argument("--per-minute", type=int, default=600)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--burst", type=int, default=5)
    ap.add_argument("--throttle", type=float, default=0.3)
    ap.add_argument("--retry-calls", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    logging.getLogger("terway.cloud").setLevel(logging.ERROR)   # give-ups are expected here
    bench_rate(args.per_minute, args.calls, args.burst)
    bench_retry(args.throttle, args.retry_calls, args.seed)
    bench_limiter_virtual()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
