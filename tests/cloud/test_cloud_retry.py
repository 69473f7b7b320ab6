"""Backoff sequences (seeded) and the retry driver (fake clock, no real sleeps)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from terway.cloud import retry
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.ratelimit import TokenBucket
from terway.cloud.retry import Backoff, call_with_retry


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def failing(codes: list[str], result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    calls = [0]

    def fn() -> str:
        calls[0] += 1
        if codes:
            raise CloudError(codes.pop(0), "boom", request_id="rid", http_status=400)
        return result

    return fn, calls


def test_no_jitter_sequences_match_upstream_presets() -> None:
    rng = random.Random(1)
    ip_ops = Backoff(retry.ENI_IP_OPS.initial, retry.ENI_IP_OPS.factor, retry.ENI_IP_OPS.steps)
    eni_ops = Backoff(retry.ENI_OPS.initial, retry.ENI_OPS.factor, retry.ENI_OPS.steps)
    assert ip_ops.delays(rng) == [5.0, 5.0, 5.0, 5.0, 5.0]
    assert eni_ops.delays(rng) == [5.0, 10.0, 20.0, 40.0, 80.0]


def test_presets_values() -> None:
    assert (retry.ENI_IP_OPS.initial, retry.ENI_IP_OPS.factor, retry.ENI_IP_OPS.steps) == (5, 1, 6)
    assert (retry.ENI_OPS.initial, retry.ENI_OPS.factor, retry.ENI_OPS.steps) == (5, 2, 6)


def test_jitter_is_seeded_and_bounded() -> None:
    policy = Backoff(2.0, 2.0, 5, jitter=0.5)
    a = policy.delays(random.Random(42))
    b = policy.delays(random.Random(42))
    c = policy.delays(random.Random(43))
    assert a == b
    assert a != c
    for d, base in zip(a, [2.0, 4.0, 8.0, 16.0], strict=True):
        assert base <= d < base * 1.5


def test_cap_limits_growth() -> None:
    assert Backoff(1.0, 10.0, 4, cap=5.0).delays(random.Random(0)) == [1.0, 5.0, 5.0]


def test_single_step_means_no_retry() -> None:
    assert retry.NO_RETRY.delays(random.Random(0)) == []


def test_retries_throttled_then_succeeds() -> None:
    ft = FakeTime()
    fn, calls = failing(["Throttling", "Throttling.User", "InternalError"])
    seen: list[tuple[int, str, float]] = []
    result = call_with_retry(
        fn, Backoff(1.0, 2.0, 6), sleep=ft.sleep, now=ft.now,
        on_retry=lambda n, e, d: seen.append((n, e.code, d)),
    )
    assert result == "ok"
    assert calls[0] == 4
    assert ft.sleeps == [1.0, 2.0, 4.0]
    assert seen == [(1, "Throttling", 1.0), (2, "Throttling.User", 2.0), (3, "InternalError", 4.0)]


def test_gives_up_with_last_classified_error() -> None:
    ft = FakeTime()
    fn, calls = failing(["InternalError"] * 2 + ["Throttling"] * 10)
    with pytest.raises(CloudError) as info:
        call_with_retry(fn, Backoff(1.0, 1.0, 4), sleep=ft.sleep, now=ft.now)
    assert calls[0] == 4
    assert info.value.code == "Throttling"
    assert info.value.error_class is ErrorClass.THROTTLED
    assert ft.sleeps == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "code",
    ["InvalidVSwitchId.IpNotEnough", "QuotaExceeded.PrivateIpAddress",
     "InvalidOperation.Ipv4CountExceeded", "InvalidEniId.NotFound",
     "Forbidden.RAM", "InvalidParameter", "InvalidOperation.InvalidEniState", "Weird.Unknown"],
)
def test_non_retryable_raise_at_once(code: str) -> None:
    ft = FakeTime()
    fn, calls = failing([code])
    with pytest.raises(CloudError) as info:
        call_with_retry(fn, Backoff(1.0, 1.0, 6), sleep=ft.sleep, now=ft.now)
    assert info.value.code == code
    assert calls[0] == 1
    assert ft.sleeps == []


def test_other_exceptions_propagate_untouched() -> None:
    def fn() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_with_retry(fn, Backoff(1.0, 1.0, 6), sleep=lambda s: None)


def test_limiter_is_consulted_before_every_attempt() -> None:
    ft = FakeTime()
    bucket = TokenBucket(rate_per_s=1.0, burst=1, now=0.0)
    fn, calls = failing(["Throttling"])
    call_with_retry(fn, Backoff(0.25, 1.0, 3), sleep=ft.sleep, now=ft.now, limiter=bucket)
    # attempt 1 free; pause 0.25; attempt 2 waits the bucket's remaining 0.75.
    assert ft.sleeps == [0.25, 0.75]
    assert calls[0] == 2
