"""Token bucket arithmetic and the per-API defaults (pure: time is passed in)."""

from __future__ import annotations

import pytest

from terway.cloud.ratelimit import (
    DEFAULT_KEY,
    UPSTREAM_PER_MINUTE,
    RateLimits,
    TokenBucket,
    validate_rate_limit,
)


def test_burst_is_free_then_reservations_queue_at_the_rate() -> None:
    b = TokenBucket(rate_per_s=2.0, burst=3, now=0.0)
    assert [b.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # 4th waits 1/rate, 5th twice that: reservations queue up in order.
    assert b.reserve(0.0) == pytest.approx(0.5)
    assert b.reserve(0.0) == pytest.approx(1.0)


def test_refill_is_capped_at_burst() -> None:
    b = TokenBucket(rate_per_s=1.0, burst=2, now=0.0)
    b.reserve(0.0)
    b.reserve(0.0)
    assert b.tokens(1000.0) == pytest.approx(2.0)


def test_try_take_never_goes_into_debt() -> None:
    b = TokenBucket(rate_per_s=1.0, burst=1, now=0.0)
    assert b.try_take(0.0) is True
    assert b.try_take(0.5) is False
    assert b.tokens(0.5) == pytest.approx(0.5)
    assert b.try_take(1.0) is True


def test_debt_is_repaid_by_time() -> None:
    b = TokenBucket(rate_per_s=10.0, burst=1, now=0.0)
    b.reserve(0.0)
    assert b.reserve(0.0) == pytest.approx(0.1)
    # At t=0.1 the debt is cleared and the bucket is empty: the next waits a full period.
    assert b.reserve(0.1) == pytest.approx(0.1)


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    b = TokenBucket(rate_per_s=1.0, burst=1, now=10.0)
    b.reserve(10.0)
    assert b.try_take(5.0) is False


def test_steady_rate_over_simulated_minute() -> None:
    """Callers that honour the delays achieve exactly the configured rate after the burst."""
    limits = RateLimits({"AssignPrivateIpAddresses": 600}, burst=1)
    t, calls = 0.0, 0
    while t < 60.0:
        t += limits.reserve("AssignPrivateIpAddresses", t)
        calls += 1
    assert calls in (600, 601)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bad_bucket_parameters_rejected(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_upstream_defaults() -> None:
    assert UPSTREAM_PER_MINUTE[DEFAULT_KEY] == 500
    expected = {
        "CreateNetworkInterface": 500, "AttachNetworkInterface": 500,
        "DeleteNetworkInterface": 500, "DescribeNetworkInterfaces": 800,
        "DetachNetworkInterface": 400, "AssignPrivateIpAddresses": 400,
        "UnassignPrivateIpAddresses": 400, "DescribeInstanceTypes": 400,
        "DescribeVSwitches": 300,
    }
    limits = RateLimits()
    for api, per_minute in expected.items():
        bucket = limits.bucket(api)
        assert bucket.rate_per_s == pytest.approx(per_minute / 60.0), api
        assert bucket.burst == per_minute, api


def test_unknown_api_shares_the_default_bucket() -> None:
    limits = RateLimits()
    assert limits.bucket("SomethingElse") is limits.bucket("AnotherThing")
    assert limits.bucket("SomethingElse") is limits.bucket(DEFAULT_KEY)


def test_overrides_apply_and_leave_others_alone() -> None:
    limits = RateLimits({"DescribeVSwitches": 60, "NewApi": 120})
    assert limits.bucket("DescribeVSwitches").rate_per_s == pytest.approx(1.0)
    assert limits.bucket("NewApi").rate_per_s == pytest.approx(2.0)
    assert limits.bucket("DetachNetworkInterface").rate_per_s == pytest.approx(400 / 60)


def test_buckets_are_independent() -> None:
    limits = RateLimits({"A": 60, "B": 60}, burst=1)
    assert limits.try_take("A", 0.0) is True
    assert limits.try_take("A", 0.0) is False
    assert limits.try_take("B", 0.0) is True


@pytest.mark.parametrize("bad", [0, -5, 1.5, "10", True, None])
def test_bad_rate_limit_value_names_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match=r"rate_limit\.AssignPrivateIpAddresses"):
        validate_rate_limit({"AssignPrivateIpAddresses": bad})


def test_rate_limit_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        validate_rate_limit([("A", 1)])  # type: ignore[arg-type]
