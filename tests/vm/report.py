"""Which datapath ran where, for the end-of-run summary (tests/vm/conftest.py prints it)."""

from __future__ import annotations

RAN: dict[str, str] = {}


def record(datapath: str, where: str) -> None:
    RAN[datapath] = where


def lines() -> list[str]:
    return [f"{dp}: {where}" for dp, where in sorted(RAN.items())]
