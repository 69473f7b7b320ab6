"""wait_eni_status against a scripted CloudAPI double (no real sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from terway.cloud.api import Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.retry import Backoff
from terway.cloud.waiters import WAIT_TIMEOUT, wait_eni_status


class Statuses:
    def __init__(self, *statuses: str | None) -> None:
        self.statuses = list(statuses)

    def describe_network_interfaces(self, **kw: Any) -> list[Eni]:
        s = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if s is None:
            return []
        return [Eni("eni-1", "m", "vsw", "z", s, "10.0.0.1", ("10.0.0.1",))]


def test_returns_when_status_reached() -> None:
    sleeps: list[float] = []
    eni = wait_eni_status(Statuses("Attaching", "Attaching", "InUse"), "eni-1", "InUse",  # type: ignore[arg-type]
                          policy=Backoff(1.0, 2.0, 5), sleep=sleeps.append)
    assert eni.status == "InUse"
    assert sleeps == [1.0, 2.0]


def test_times_out_transient() -> None:
    sleeps: list[float] = []
    with pytest.raises(CloudError) as info:
        wait_eni_status(Statuses("Attaching"), "eni-1", "InUse",  # type: ignore[arg-type]
                        policy=Backoff(1.0, 1.0, 3), sleep=sleeps.append)
    assert info.value.code == WAIT_TIMEOUT
    assert info.value.error_class is ErrorClass.TRANSIENT
    assert "Attaching" in info.value.message
    assert sleeps == [1.0, 1.0]


def test_vanished_eni_is_not_found() -> None:
    with pytest.raises(CloudError) as info:
        wait_eni_status(Statuses(None), "eni-1", "InUse", sleep=lambda s: None)  # type: ignore[arg-type]
    assert info.value.error_class is ErrorClass.NOT_FOUND
