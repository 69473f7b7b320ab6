"""The daemon's attach/detach wait (terway/daemon/executor.py) on the shared WaitPolicy schedule,
against a scripted CloudAPI double (no real sleeps; a fake clock moved by the sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from terway.cloud.api import Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.daemon.executor import Executor
from terway.ipam.drive import ERR_ATTACH_TIMEOUT, WaitPolicy


class Statuses:
    """describe_network_interfaces answers the scripted statuses in turn (the last repeats)."""

    def __init__(self, *statuses: str | None) -> None:
        self.statuses = list(statuses)
        self.detached: list[str] = []

    def describe_network_interfaces(self, **kw: Any) -> list[Eni]:
        s = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if s is None:
            return []
        return [Eni("eni-1", "m", "vsw", "z", s, "10.0.0.1", ("10.0.0.1",), instance_id="i-1")]

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self.detached.append(eni_id)


def _executor(cloud: Statuses, timeout: float = 60.0) -> tuple[Executor, list[float]]:
    sleeps: list[float] = []
    executor = Executor(cloud, sleep=sleeps.append, now=lambda: sum(sleeps),  # type: ignore[arg-type]
                        wait=WaitPolicy(timeout=timeout))
    return executor, sleeps


def test_returns_once_in_use_after_the_policys_pauses() -> None:
    executor, sleeps = _executor(Statuses("Attaching", "Attaching", "InUse"))
    assert executor.wait_attached("eni-1", "i-1").status == "InUse"
    assert sleeps == [0.2, 0.4]


def test_times_out_as_a_transient_error_naming_the_wait() -> None:
    executor, sleeps = _executor(Statuses("Attaching"), timeout=3.0)
    with pytest.raises(CloudError) as info:
        executor.wait_attached("eni-1", "i-1")
    assert info.value.code == ERR_ATTACH_TIMEOUT
    assert info.value.error_class is ErrorClass.TRANSIENT
    assert "eni-1 to be InUse on i-1" in info.value.message
    assert sleeps == [0.2, 0.4, 0.8, 1.6]          # 3.0 s: the deadline is passed at the check


def test_an_eni_that_vanishes_while_attaching_is_not_found() -> None:
    executor, _ = _executor(Statuses(None))
    with pytest.raises(CloudError) as info:
        executor.wait_attached("eni-1", "i-1")
    assert info.value.error_class is ErrorClass.NOT_FOUND


def test_a_detach_ends_when_available_or_gone() -> None:
    executor, sleeps = _executor(Statuses("Detaching", "Available"))
    executor.detach("eni-1", "i-1")
    assert sleeps == [0.2]
    executor, sleeps = _executor(Statuses(None))
    executor.detach("eni-1", "i-1")
    assert sleeps == []
